#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for SECONDS.
#   scripts/fuzz.sh SECONDS [TARGET...]     (default: all five targets, one after another)
# Corpora grow in build-fuzz/corpus/<target>, seeded from fuzz/corpus/<target> (the repository's seeds are
# never modified). A crash leaves its input in build-fuzz/crashes/<target>/ and makes the script exit 1:
# turn it into a regression test (tests/) and a seed before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(safetensors_header_fuzz index_fuzz config_fuzz dequantize_fuzz tokenizer_fuzz)
fi
BUILD=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORGE_BUILD_FUZZERS=ON \
  -DFORGE_BUILD_TESTS=OFF -DFORGE_SANITIZE="address;undefined" >/dev/null
ninja -C "$BUILD" "${TARGETS[@]}" >/dev/null
failed=0
printf '%-26s %8s %12s %10s %s\n' target seconds executions corpus result
for t in "${TARGETS[@]}"; do
  corpus="$BUILD/corpus/$t"
  crashes="$BUILD/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  log="$BUILD/$t.log"
  set +e
  "$BUILD/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  size=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then result=ok; else result="CRASH (see $log, input in $crashes)"; failed=1; fi
  printf '%-26s %8s %12s %10s %s\n' "$t" "$SECONDS_EACH" "$execs" "$size" "$result"
done
exit $failed
