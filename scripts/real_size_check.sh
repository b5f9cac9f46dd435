#!/usr/bin/env bash
# The real-size proof (issue 15). Here: `scripts/real_size_check.sh bundle` packs the Release forge binary,
# decoder_roofline and every shared library they load (the dynamic loader included, so they run on the
# GPU machine whatever its glibc) into .rs-bundle/bundle.tar.xz, which the device call carries. There (the GPU machine,
# transformers 5.x installed; from the repository root):
#   scripts/real_size_check.sh start [SECONDS]  # copies the bundle and scripts to /tmp/rs, starts
#       make_real_size.py (checkpoints + transformers references) then real_size_check.py in a session of
#       its own, and follows the log for SECONDS (default 540), leaving the results in $OUT
#   scripts/real_size_check.sh wait [SECONDS]   # follows the same run until it ends or SECONDS pass
#   scripts/real_size_check.sh run               # both in the foreground (a machine without a time limit)
# Results: /tmp/rs/results/{steps.jsonl,table.md,summary.json}, copied to $OUT; exit 1 on any mismatch.
# The checkpoints (about 25 GB) stay on that machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RS=/tmp/rs
MODELS="${MODELS:-qwen35-35b-a3b-2l,qwen36-35b-a3b-2l,qwen35-4b}"

collect() {
  mkdir -p "${OUT:-/tmp/out}"
  # The device tool returns at most 8 files: the step log, the table, the summary, the run log, two tarballs.
  cp "$RS"/results/steps.jsonl "$RS"/results/summary.json "$RS"/results/table.md "$RS"/log "${OUT:-/tmp/out}/" 2>/dev/null || true
  tar czf "${OUT:-/tmp/out}/references.tar.gz" --exclude='*.safetensors' -C "$RS/work" refs prompts.jsonl 2>/dev/null || true
  tar czf "${OUT:-/tmp/out}/reports.tar.gz" --exclude='steps.jsonl' -C "$RS/results" . 2>/dev/null || true
}

follow() {  # follow SECONDS: print new log lines until the run ends or time is up
  local until=$(($(date +%s) + $1)) seen=0
  while :; do
    local n; n=$(wc -l <"$RS/log")
    if [ "$n" -gt "$seen" ]; then sed -n "$((seen + 1)),${n}p" "$RS/log"; seen=$n; fi
    if [ -f "$RS/done" ] || [ "$(date +%s)" -ge "$until" ]; then break; fi
    sleep 5
  done
  collect
  if [ -f "$RS/done" ]; then echo "run finished: $(cat "$RS/done")"; [ "$(cat "$RS/done")" = 0 ]; else echo "still running"; fi
}

case "${1:-}" in
  bundle)
    B=.rs-bundle/bundle
    rm -rf .rs-bundle && mkdir -p "$B/bin" "$B/lib"
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORGE_BUILD_BENCHMARKS=ON >/dev/null
    ninja -C build forge decoder_roofline
    cp build/forge/cli/forge build/bench/decoder_roofline "$B/bin/"
    for t in "$B"/bin/*; do ldd "$t" | awk '/=>/ {print $3} /ld-linux/ {print $1}'; done | sort -u |
      while read -r lib; do cp -L "$lib" "$B/lib/"; done
    tar cJf .rs-bundle/bundle.tar.xz -C .rs-bundle bundle && rm -rf "$B"  # ICU's data: 31 MB raw, the tree may carry 64
    mkdir -p .git/info && { grep -qx '/.rs-bundle/' .git/info/exclude || echo '/.rs-bundle/' >>.git/info/exclude; }
    ls -la .rs-bundle/bundle.tar.xz
    ;;
  start | run)
    rm -rf "$RS/bundle" "$RS/scripts" "$RS/done" && mkdir -p "$RS/results" "$RS/work"
    tar xJf .rs-bundle/bundle.tar.xz -C "$RS" && mkdir -p "$RS/scripts" && cp scripts/*.py "$RS/scripts/"
    mkdir -p "$RS/fixtures" && cp -r fixtures/tokenizer-qwen3 "$RS/fixtures/"
    job="cd $RS && { python3 -u scripts/make_real_size.py work --models $MODELS ${TINY:+--tiny} &&
      python3 -u scripts/real_size_check.py bundle work results --models $MODELS ${PHASES:+--phases $PHASES}; echo \$? >done; } >>log 2>&1"
    touch "$RS/log"
    if [ "$1" = run ]; then bash -c "$job"; follow 0; else setsid bash -c "$job" </dev/null >/dev/null 2>&1 & follow "${2:-540}"; fi
    ;;
  wait) follow "${2:-540}" ;;
  *) sed -n '2,13p' "$0"; exit 64 ;;
esac
