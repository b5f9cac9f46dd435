#!/usr/bin/env bash
# Whole-process benchmark (issue 16): every ratio from one run, printed as one table. Never asserts a time.
#
# A synthetic real-shaped checkpoint (scripts/make_synthetic.py: Qwen3.5-35B-A3B names, shapes, dtypes, 5 GB
# shards, 256 experts, vision, MTP; LAYERS=3 makes 9.6 GB) is the source. The baseline is copying the same
# bytes: `cat SRC/*.safetensors > DST; sync`. Each step (also ending in sync) runs REPEAT times alternating
# with the copy, page cache warm, and the table gives the median of copy time / step time (>= 1.0x: the
# step keeps up with a copy). Cold runs (COLD=1, needs root for /proc/sys/vm/drop_caches) drop the page
# cache before both. Beside the ratios: user CPU per GB of quantized input against codec_bench's
# single-thread kernel for the same mode (the whole process's overhead), the --report cost, thread scaling,
# graft without --link against copying its output bytes, dequantize / requantize, peak RSS against
# 512 MB + 2 x the largest tensor.
#
# Environment: MODEL (35B-A3B), LAYERS (3), REPEAT (3), COLD (1), MODES ("affine4 affine8 mxfp4 mxfp8
# nvfp4"), RULES ("mlx-gpu mlx-cpu"), THREADS_CURVE ("1 2 <all cores>"), WORK (/tmp/forge-bench: needs
# ~2.5x the checkpoint), DECODER (0; 1 adds bench/decoder_roofline on a Qwen3.5-4B-shaped 4-bit checkpoint).
# About 40 minutes on the 2-core build machine with the defaults; nothing in CI depends on it.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-35B-A3B}
LAYERS=${LAYERS:-3}
REPEAT=${REPEAT:-3}
COLD=${COLD:-1}
MODES=${MODES:-"affine4 affine8 mxfp4 mxfp8 nvfp4"}
RULES=${RULES:-"mlx-gpu mlx-cpu"}
THREADS_CURVE=${THREADS_CURVE:-"1 2 $(nproc)"}
WORK=${WORK:-/tmp/forge-bench}
DECODER=${DECODER:-0}
scripts/install_deps.sh >/dev/null && scripts/build.sh -DFORGE_BUILD_BENCHMARKS=ON >/dev/null
FORGE=$PWD/build/forge/cli/forge
rm -rf "$WORK" && mkdir -p "$WORK"
ROWS="$WORK/rows.tsv"
: >"$ROWS"
if [ "$COLD" = 1 ] && ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  echo "cannot drop the page cache (not root?): cold runs skipped" >&2
  COLD=0
fi

mode_flags() {
  case $1 in
    affine4) echo "--mode affine --bits 4" ;; affine8) echo "--mode affine --bits 8" ;; *) echo "--mode $1" ;;
  esac
}

# run GROUP LABEL CACHE CMD...: one row "group label cache seconds user sys peak_rss_kb" (the command and a
# sync timed together); the output directory $WORK/o is removed afterwards.
run() {
  local group=$1 label=$2 cache=$3
  shift 3
  rm -rf "$WORK/o" "$WORK/copy.bin" "$WORK/report.json"
  sync
  if [ "$cache" = cold ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" sh -c '"$@" >/dev/null 2>"$0/stderr.txt" && sync' "$WORK" "$@" || {
    echo "failed: $label" >&2
    cat "$WORK/stderr.txt" >&2
    exit 1
  }
  read -r secs user sys rss <"$WORK/time.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$label" "$cache" "$secs" "$user" "$sys" "$rss" >>"$ROWS"
  printf '  %-40s %-4s %7.1f s  user %6.1f s  peak RSS %6d MB\n' "$label" "$cache" "$secs" "$user" "$((rss / 1024))" >&2
}
copy() { run "$1" "cat > copy" "$2" sh -c "cat '$WORK'/src/*.safetensors > '$WORK/copy.bin'"; }

# against_copy GROUP LABEL CMD...: the step alternating with the copy, REPEAT times warm (+1 cold).
against_copy() {
  local group=$1 label=$2
  shift 2
  cat "$WORK"/src/*.safetensors >/dev/null  # warm
  for _ in $(seq "$REPEAT"); do
    copy "$group" warm
    run "$group" "$label" warm "$@"
  done
  if [ "$COLD" = 1 ]; then
    copy "$group" cold
    run "$group" "$label" cold "$@"
  fi
}

echo "generating Qwen3.5-$MODEL x $LAYERS layers (HF raw, MTP, vision)..." >&2
python3 scripts/make_synthetic.py --model "$MODEL" --layers "$LAYERS" --out "$WORK/src" 2>/dev/null
SRC_BYTES=$(du -sb --apparent-size "$WORK/src" | cut -f1)
BIG=$("$FORGE" inspect tensors --json "$WORK/src" | python3 -c 'import json, sys; print(max(t["bytes"] for t in json.load(sys.stdin)["tensors"]))')

echo "codec_bench, 1 thread..." >&2
build/bench/codec_bench --benchmark_filter='threads:1/' --benchmark_format=json >"$WORK/codec.json" 2>/dev/null

against_copy convert "convert hf -> mlx" "$FORGE" convert -q --src "$WORK/src" --out "$WORK/o"
for rules in $RULES; do
  for mode in $MODES; do
    # shellcheck disable=SC2046  # mode_flags is meant to split
    against_copy "quantize $mode $rules" "quantize $mode $rules" "$FORGE" quantize -q --match "$rules" $(mode_flags "$mode") --src "$WORK/src" --out "$WORK/o"
  done
done
# The quantized input bytes of each mode (the report's totals), and what --report costs.
for mode in $MODES; do
  run "report $mode" "quantize $mode" warm "$FORGE" quantize -q $(mode_flags "$mode") --src "$WORK/src" --out "$WORK/o"
  run "report $mode" "quantize $mode --report" warm sh -c "'$FORGE' quantize -q $(mode_flags "$mode") --src '$WORK/src' --out '$WORK/o' --report '$WORK/report.json' && cp '$WORK/report.json' '$WORK/report-$mode.json'"
done
for t in $THREADS_CURVE; do
  run "threads" "quantize affine4 --threads $t" warm "$FORGE" quantize -q --threads "$t" --mode affine --bits 4 --src "$WORK/src" --out "$WORK/o"
  run "threads" "convert --threads $t" warm "$FORGE" convert -q --threads "$t" --src "$WORK/src" --out "$WORK/o"
done

# Requantize and dequantize from quantized checkpoints (output bytes from the written directory).
"$FORGE" quantize -q --mode mxfp8 --src "$WORK/src" --out "$WORK/q-mxfp8" >/dev/null
"$FORGE" quantize -q --mode affine --bits 8 --src "$WORK/src" --out "$WORK/q-affine8" >/dev/null
for pair in "mxfp8 affine4" "affine8 mxfp4"; do
  set -- $pair
  run "requantize" "requantize $1 -> $2" warm "$FORGE" quantize -q $(mode_flags "$2") --src "$WORK/q-$1" --out "$WORK/o"
done
run "dequantize" "dequantize mxfp8 -> bf16" warm sh -c "'$FORGE' dequantize -q --src '$WORK/q-mxfp8' --out '$WORK/o' && du -sb --apparent-size '$WORK/o' | cut -f1 > '$WORK/deq-bytes'"
rm -rf "$WORK/q-mxfp8" "$WORK/q-affine8"

# Graft without --link against copying the bytes it writes.
"$FORGE" strip-mtp -q --link --src "$WORK/src" --out "$WORK/finetune" >/dev/null
for _ in $(seq "$REPEAT"); do  # the source's shards are the bytes the graft writes (trunk + head)
  copy graft warm
  run "graft" "graft (copy trunk)" warm "$FORGE" graft -q --src "$WORK/finetune" --mtp-from "$WORK/src" --out "$WORK/o"
done
run "graft" "graft --link" warm "$FORGE" graft -q --link --src "$WORK/finetune" --mtp-from "$WORK/src" --out "$WORK/o"
# A fine-tune downloaded from the hub has no forge manifest to inherit tensor hashes from: all are hashed.
rm "$WORK/finetune/forge-manifest.json"
for _ in $(seq "$REPEAT"); do
  copy "graft, source without manifest" warm
  run "graft, source without manifest" "graft (copy trunk, no source manifest)" warm "$FORGE" graft -q --src "$WORK/finetune" --mtp-from "$WORK/src" --out "$WORK/o"
done
rm -rf "$WORK/finetune"

if [ "$DECODER" = 1 ]; then
  python3 scripts/make_synthetic.py --model 4B --no-vision --out "$WORK/4b" 2>/dev/null
  "$FORGE" quantize -q --src "$WORK/4b" --out "$WORK/4b-q4" --mode affine --bits 4 && rm -rf "$WORK/4b"
  for t in $THREADS_CURVE; do build/bench/decoder_roofline "$WORK/4b-q4" 16 "$t" >"$WORK/decoder-$t.txt" 2>&1 || true; done
  rm -rf "$WORK/4b-q4"
fi

python3 scripts/bench_table.py "$WORK" "$MODEL" "$LAYERS" "$SRC_BYTES" "$BIG" "$THREADS_CURVE"
rm -rf "$WORK"
