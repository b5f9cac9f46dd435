#!/usr/bin/env bash
# Whole-process benchmark on a synthetic real-shaped checkpoint (scripts/make_synthetic.py): the same bytes
# copied with `cat`, then forge convert, quantize in every mode, graft with and without --link, inspect.
# Prints wall time, throughput over the source bytes, the ratio to the copy's throughput and peak RSS
# (/usr/bin/time), plus RSS against the number of layers. Never asserts a time: it reports.
#
# Environment: MODEL (default 35B-A3B), LAYERS (4: ~11 GB with vision and MTP), SWEEP_MODEL (4B),
# SWEEP_LAYERS ("4 8 16"), WORK (/tmp/forge-bench, needs ~3x the checkpoint), THREADS (all cores).
# On the 2-core, 24 GB build machine the whole run takes about 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-35B-A3B}
LAYERS=${LAYERS:-4}
SWEEP_MODEL=${SWEEP_MODEL:-4B}
SWEEP_LAYERS=${SWEEP_LAYERS:-"4 8 16"}
WORK=${WORK:-/tmp/forge-bench}
THREADS=${THREADS:-0}
scripts/install_deps.sh >/dev/null && scripts/build.sh >/dev/null
FORGE=$PWD/build/forge/cli/forge
rm -rf "$WORK" && mkdir -p "$WORK"
ROWS="$WORK/rows.tsv"
: >"$ROWS"

bytes_of() { du -sb --apparent-size "$1" | cut -f1; }
largest_tensor() { "$FORGE" inspect tensors --json "$1" | python3 -c '
import json, sys
print(max(t["bytes"] for t in json.load(sys.stdin)["tensors"]))'; }

# measure LABEL SOURCE_BYTES CMD...: one row "label seconds source_bytes peak_rss_kb"
measure() {
  local label=$1 src_bytes=$2
  shift 2
  sync
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    echo "failed: $label" >&2
    cat "$WORK/stderr.txt" >&2
    exit 1
  }
  read -r secs rss <"$WORK/time.txt"
  printf '%s\t%s\t%s\t%s\n' "$label" "$secs" "$src_bytes" "$rss" >>"$ROWS"
  printf '  %-34s %8.1f s  peak RSS %6d MB\n' "$label" "$secs" "$((rss / 1024))" >&2
}

echo "generating Qwen3.5-$MODEL x $LAYERS layers (HF raw, MTP, vision)..." >&2
python3 scripts/make_synthetic.py --model "$MODEL" --layers "$LAYERS" --out "$WORK/src" 2>/dev/null
SRC_BYTES=$(bytes_of "$WORK/src")
BIG=$(largest_tensor "$WORK/src")

measure "cat > copy (baseline)" "$SRC_BYTES" sh -c "cat '$WORK'/src/*.safetensors > '$WORK/copy.bin'"
rm -f "$WORK/copy.bin"
measure "convert hf -> mlx" "$SRC_BYTES" "$FORGE" convert -q --threads "$THREADS" --src "$WORK/src" --out "$WORK/mlx"
rm -rf "$WORK/mlx"
for mode in "affine --bits 4" "affine --bits 8" mxfp4 mxfp8 nvfp4; do
  measure "quantize ${mode/ --bits /}" "$SRC_BYTES" "$FORGE" quantize -q --threads "$THREADS" --src "$WORK/src" --out "$WORK/q" --mode $mode
  rm -rf "$WORK/q"
done
"$FORGE" strip-mtp -q --link --src "$WORK/src" --out "$WORK/finetune" >/dev/null
measure "graft (copy trunk)" "$SRC_BYTES" "$FORGE" graft -q --threads "$THREADS" --src "$WORK/finetune" --mtp-from "$WORK/src" --out "$WORK/g"
rm -rf "$WORK/g"
measure "graft --link" "$SRC_BYTES" "$FORGE" graft -q --link --threads "$THREADS" --src "$WORK/finetune" --mtp-from "$WORK/src" --out "$WORK/g"
HEAD_BYTES=$(("$(bytes_of "$WORK/g")" - "$(bytes_of "$WORK/finetune")"))
rm -rf "$WORK/g" "$WORK/finetune"
measure "inspect config" "$SRC_BYTES" "$FORGE" inspect config "$WORK/src"
rm -rf "$WORK/src"

echo "RSS against layer count: Qwen3.5-$SWEEP_MODEL x {$SWEEP_LAYERS} layers..." >&2
SWEEP="$WORK/sweep.tsv"
: >"$SWEEP"
for n in $SWEEP_LAYERS; do
  python3 scripts/make_synthetic.py --model "$SWEEP_MODEL" --layers "$n" --out "$WORK/s$n" 2>/dev/null
  b=$(bytes_of "$WORK/s$n")
  big=$(largest_tensor "$WORK/s$n")
  for step in convert quantize; do
    if [ $step = convert ]; then
      /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$FORGE" convert -q --threads "$THREADS" --src "$WORK/s$n" --out "$WORK/o" >/dev/null
    else
      /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$FORGE" quantize -q --threads "$THREADS" --mode affine --bits 4 --src "$WORK/s$n" --out "$WORK/o" >/dev/null
    fi
    read -r secs rss <"$WORK/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$step" "$b" "$secs" "$rss" "$big" >>"$SWEEP"
    rm -rf "$WORK/o"
  done
  rm -rf "$WORK/s$n"
done

python3 - "$ROWS" "$SWEEP" "$MODEL" "$LAYERS" "$SRC_BYTES" "$BIG" "$HEAD_BYTES" <<'EOF'
import sys
rows_path, sweep_path, model, layers, src_bytes, big, head = sys.argv[1:8]
src_bytes, big, head = int(src_bytes), int(big), int(head)
rows = [l.rstrip("\n").split("\t") for l in open(rows_path)]
copy_s = float(rows[0][1])
bound_mb = 512 + 2 * big / 2**20
print(f"Qwen3.5-{model} x {layers} layers, synthetic HF raw: {src_bytes / 1e9:.2f} GB; largest tensor "
      f"{big / 2**20:.0f} MiB => RSS bound 512 MB + 2 x largest = {bound_mb:.0f} MB; grafted head {head / 1e6:.0f} MB")
print()
print("| step | wall s | GB/s of source | vs copy | peak RSS MB | within RSS bound |")
print("|---|---|---|---|---|---|")
for label, secs, b, rss in rows:
    s = float(secs)
    rate = int(b) / max(s, 1e-3) / 1e9
    ratio = copy_s / max(s, 1e-3)
    print(f"| {label} | {s:.1f} | {rate:.2f} | {ratio:.2f}x | {int(rss) / 1024:.0f} | {'yes' if int(rss) / 1024 <= bound_mb else 'NO'} |")
print()
print(f"| layers | step | source GB | wall s | GB/s | peak RSS MB | largest tensor MiB |")
print("|---|---|---|---|---|---|---|")
for n, step, b, secs, rss, bg in (l.rstrip("\n").split("\t") for l in open(sweep_path)):
    print(f"| {n} | {step} | {int(b) / 1e9:.2f} | {float(secs):.1f} | {int(b) / max(float(secs), 1e-3) / 1e9:.2f} | "
          f"{int(rss) / 1024:.0f} | {int(bg) / 2**20:.0f} |")
EOF
rm -rf "$WORK"
