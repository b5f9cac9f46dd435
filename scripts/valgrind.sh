#!/usr/bin/env bash
# Valgrind memcheck over the read-side paths a stranger's checkpoint goes through: inspect (config,
# tensors), verify --manifest on a freshly written output, verify --identity on the tiny trained model
# (reference decoder, MTP head, tokenizer), a malformed input. Any memcheck error fails (exit 99).
#   scripts/valgrind.sh [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
FORGE="${1:-build}/forge/cli/forge"
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # run EXPECTED_EXIT ARGS...: memcheck clean and the command's own exit code as expected
  local expected=$1
  shift
  set +e
  "${VG[@]}" "$FORGE" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  set -e
  if [ $rc -ne "$expected" ]; then
    echo "valgrind: 'forge $*' exited $rc (expected $expected)"
    cat "$work/err"
    exit 1
  fi
  echo "memcheck clean: forge $* (exit $rc)"
}
run 0 inspect config -q fixtures/moe-vlm-hf
run 0 inspect tensors -q fixtures/dense-vlm-mlx-q4
run 0 reshard -q --src fixtures/dense-vlm-hf --out "$work/copy"
run 0 manifest -q "$work/copy"
run 0 verify --manifest -q "$work/copy"
run 0 verify --identity -q --model fixtures/trained-vlm-hf --prompt "Hello" --max-tokens 4 --threads 2
mkdir "$work/bad"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":' >"$work/bad/model.safetensors"
run 1 inspect config -q "$work/bad"
