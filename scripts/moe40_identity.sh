#!/usr/bin/env bash
# Issue 16: `forge verify --identity`, 8 prompts x 64 tokens at depth 1, end to end on a Qwen3.5-35B-A3B-shaped
# checkpoint with all 40 layers, 4-bit (scripts/make_synthetic.py --quantize affine4: forge's exact 4-bit
# layout, 20.9 GB, written directly because the bf16 source, 72 GB, fits neither machine's disk beside it).
# From the repository root, on the GPU machine with the real-size bundle carried (.rs-bundle, made by
# `scripts/real_size_check.sh bundle`), or here with FORGE=build/forge/cli/forge ROOFLINE=build/bench/decoder_roofline:
#   scripts/moe40_identity.sh [THREADS]      # default: all cores
# Writes identity.json, time.txt (GNU time -v), roofline.txt and summary.txt to ${OUT:-$WORK}. Never asserts
# a time; exits non-zero only when a command fails or the identity does not hold.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${WORK:-/tmp/moe40}
R=${OUT:-$W}
T=${1:-0}
mkdir -p "$W" "$R"
if [ -z "${FORGE:-}" ]; then
  rm -rf "$W/bundle" && tar xJf .rs-bundle/bundle.tar.xz -C "$W"
  B="$W/bundle"
  for tool in forge decoder_roofline; do
    printf '#!/bin/sh\nexec "%s/lib/ld-linux-x86-64.so.2" --library-path "%s/lib" "%s/bin/%s" "$@"\n' "$B" "$B" "$B" "$tool" >"$W/$tool"
    chmod +x "$W/$tool"
  done
  FORGE="$W/forge" ROOFLINE="$W/decoder_roofline"
fi
L=${LAYERS:-40}  # LAYERS=4 for a quick try of the script itself
M="$W/qwen35-35b-a3b-${L}l-affine4"
if [ ! -f "$M/config.json" ]; then
  python3 scripts/make_synthetic.py --model 35B-A3B --format mlx --quantize affine4 --layers "$L" --out "$M" 2>&1 | tail -1
fi
python3 - "$W/prompts.jsonl" <<'EOF'
import json, random, sys
rng = random.Random(16)  # 8 prompts of 8-40 token ids below the text vocabulary's specials
with open(sys.argv[1], "w") as f:
    for i in range(8):
        f.write(json.dumps({"tokens": [rng.randrange(248000) for _ in range(8 + 4 * i)]}) + "\n")
EOF
cat "$M"/*.safetensors >/dev/null  # page cache warm: the run measures the decoder, not the disk
/usr/bin/time -v -o "$R/time.txt" "$FORGE" verify --identity --model "$M" --prompts "$W/prompts.jsonl" \
  --max-tokens 64 --ignore-eos --depth 1 --threads "$T" --json >"$R/identity.json"
"$ROOFLINE" "$M" 16 "$T" >"$R/roofline.txt" 2>&1 || true
python3 - "$R" <<'EOF' | tee "$R/summary.txt"
import json, re, sys
r = sys.argv[1]
j = json.load(open(f"{r}/identity.json"))
t = open(f"{r}/time.txt").read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
keys = ("identical", "acceptance", "mean_accepted_length", "rounds", "tokens_per_s")
print("identity:", {k: j[k] for k in keys if k in j}, f"prompts {len(j['prompts'])}")
print(f"wall {wall}, peak RSS {rss:.0f} MB")
print(open(f"{r}/roofline.txt").read())
sys.exit(0 if j["identical"] else 5)
EOF
