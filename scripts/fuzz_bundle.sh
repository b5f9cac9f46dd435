#!/usr/bin/env bash
# Packs the built fuzz targets (scripts/fuzz.sh builds them), every shared library they load (the dynamic
# loader included, so the bundle runs on another Linux whatever its glibc) and the grown corpora into
# build-fuzz/bundle.tar.xz, with bundle/run.sh SECONDS JOBS: JOBS processes per target, all targets at
# once, sharing each target's corpus. How the long runs were made on a 16-core machine:
#   scripts/fuzz_bundle.sh && (on that machine, from a checkout: config_fuzz reads fixtures/ at the
#   absolute path it was built with) tar xJf build-fuzz/bundle.tar.xz -C /tmp && /tmp/bundle/run.sh 540 3
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-fuzz/bundle
TARGETS="safetensors_header_fuzz index_fuzz config_fuzz dequantize_fuzz tokenizer_fuzz"
rm -rf "$B" && mkdir -p "$B/bin" "$B/lib" "$B/corpus"
for t in $TARGETS; do
  cp "build-fuzz/fuzz/$t" "$B/bin/"
  mkdir -p "$B/corpus/$t"
  cp fuzz/corpus/"$t"/* "$B/corpus/$t/"
  [ -d "build-fuzz/corpus/$t" ] && cp -n build-fuzz/corpus/"$t"/* "$B/corpus/$t/" 2>/dev/null || true
  ldd "build-fuzz/fuzz/$t" | awk '/=>/ {print $3} /ld-linux/ {print $1}'
done | sort -u | while read -r lib; do cp -L "$lib" "$B/lib/"; done
cat >"$B/run.sh" <<'RUN'
#!/usr/bin/env bash
# run.sh SECONDS JOBS: crashes and logs go to $OUT (default /tmp/out); prints executions per target.
set -u
B="$(cd "$(dirname "$0")" && pwd)"
SECS=$1; JOBS=$2; OUT=${OUT:-/tmp/out}
TARGETS="safetensors_header_fuzz index_fuzz config_fuzz dequantize_fuzz tokenizer_fuzz"
for t in $TARGETS; do
  mkdir -p "$OUT/crashes/$t"
  for j in $(seq 1 "$JOBS"); do
    (cd "$B" && "$B/lib/ld-linux-x86-64.so.2" --library-path "$B/lib" "$B/bin/$t" -max_total_time="$SECS" \
       -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -seed="$j" \
       -artifact_prefix="$OUT/crashes/$t/" "$B/corpus/$t" >"$OUT/$t.$j.log" 2>&1
     echo "$t job $j rc=$?" >>"$OUT/summary.txt") &
  done
done
wait
sort "$OUT/summary.txt"
for t in $TARGETS; do
  execs=$(cat "$OUT/$t".*.log | grep -o 'number_of_executed_units: *[0-9]*' | awk '{s += $2} END {print s}')
  echo "$t executions=$execs corpus=$(ls "$B/corpus/$t" | wc -l) crashes=$(ls "$OUT/crashes/$t" | wc -l)"
done
RUN
chmod +x "$B/run.sh"
tar cJf build-fuzz/bundle.tar.xz -C build-fuzz bundle
ls -la build-fuzz/bundle.tar.xz
