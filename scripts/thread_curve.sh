#!/usr/bin/env bash
# Thread scaling on the GPU machine's 16 cores (issue 16): carried there as the real-size bundle
# (`scripts/real_size_check.sh bundle`, then a device call carrying .rs-bundle). From the repository root:
#   scripts/thread_curve.sh [THREADS...]   # default: 1 2 4 8 16
# Makes the Qwen3.5-35B-A3B x 3 layers synthetic checkpoint (9.7 GB, scripts/make_synthetic.py), warms the
# page cache, then times `cat SRC > copy; sync` and each of convert, quantize (affine 4, mxfp8), dequantize,
# requantize and graft (copy trunk) with each thread count, the page cache warm. Prints one markdown table
# (seconds, ratio against the copy, user CPU) and writes it to $OUT/thread_curve.md. Never asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${*:-1 2 4 8 16}
W=${WORK:-/tmp/tc}
rm -rf "$W" && mkdir -p "$W"
tar xJf .rs-bundle/bundle.tar.xz -C "$W"
B="$W/bundle"
printf '#!/bin/sh\nexec "%s/lib/ld-linux-x86-64.so.2" --library-path "%s/lib" "%s/bin/forge" "$@"\n' "$B" "$B" "$B" >"$W/forge"
chmod +x "$W/forge"
forge() { "$W/forge" "$@"; }
python3 scripts/make_synthetic.py --model 35B-A3B --layers 3 --out "$W/src" >/dev/null 2>&1
forge quantize -q --mode mxfp8 --src "$W/src" --out "$W/q-mxfp8" >/dev/null
forge strip-mtp -q --link --src "$W/src" --out "$W/ft" >/dev/null
rm -f "$W/ft/forge-manifest.json"  # as a hub download: every tensor hashed
cat "$W"/src/*.safetensors "$W"/q-mxfp8/*.safetensors >/dev/null

ROWS="$W/rows.tsv"
: >"$ROWS"
timed() {  # timed LABEL THREADS CMD...: seconds and user CPU of the command and a sync
  local label=$1 t=$2
  shift 2
  rm -rf "$W/o" "$W/copy.bin"
  sync
  /usr/bin/time -f "%e %U" -o "$W/time.txt" sh -c '"$@" >/dev/null 2>&1 && sync' sh "$@"
  read -r secs user <"$W/time.txt"
  printf '%s\t%s\t%s\t%s\n' "$label" "$t" "$secs" "$user" >>"$ROWS"
  printf '  %-28s threads %-3s %6.2f s  user %6.1f s\n' "$label" "$t" "$secs" "$user" >&2
}
for t in $THREADS; do
  timed "cat > copy" "-" sh -c "cat '$W'/src/*.safetensors > '$W/copy.bin'"
  timed "convert" "$t" "$W/forge" convert -q --threads "$t" --src "$W/src" --out "$W/o"
  timed "quantize affine4" "$t" "$W/forge" quantize -q --threads "$t" --mode affine --bits 4 --src "$W/src" --out "$W/o"
  timed "quantize mxfp8" "$t" "$W/forge" quantize -q --threads "$t" --mode mxfp8 --src "$W/src" --out "$W/o"
  timed "dequantize mxfp8" "$t" "$W/forge" dequantize -q --threads "$t" --src "$W/q-mxfp8" --out "$W/o"
  timed "requantize mxfp8 -> affine4" "$t" "$W/forge" quantize -q --threads "$t" --mode affine --bits 4 --src "$W/q-mxfp8" --out "$W/o"
  timed "graft (copy trunk)" "$t" "$W/forge" graft -q --threads "$t" --src "$W/ft" --mtp-from "$W/src" --out "$W/o"
done
python3 - "$ROWS" "$(nproc)" <<'EOF' | tee "${OUT:-/tmp}/thread_curve.md"
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
copy = statistics.median(float(r[2]) for r in rows if r[0] == "cat > copy")
labels = [r[0] for r in rows if r[0] != "cat > copy"]
labels = sorted(set(labels), key=labels.index)
threads = sorted({r[1] for r in rows if r[1] != "-"}, key=int)
print(f"{sys.argv[2]} cores; cat SRC > copy; sync (median of {len(threads)}): {copy:.2f} s")
print()
print("| step | " + " | ".join(f"{t} thr s (vs copy, user s)" for t in threads) + " | speed-up 1 -> max |")
print("|---|" + "---|" * (len(threads) + 1))
for label in labels:
    secs = {r[1]: (float(r[2]), float(r[3])) for r in rows if r[0] == label}
    cells = [f"{secs[t][0]:.2f} ({copy / secs[t][0]:.2f}x, {secs[t][1]:.1f})" for t in threads]
    print(f"| {label} | " + " | ".join(cells) + f" | {secs[threads[0]][0] / secs[threads[-1]][0]:.2f}x |")
EOF
