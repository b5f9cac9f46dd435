#!/usr/bin/env bash
# Builds the Google Benchmark kernels (build-bench/) and runs the codec benchmark: GB/s of bf16 input.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
BUILD_DIR=build-bench scripts/build.sh -DFORGE_BUILD_BENCHMARKS=ON -DFORGE_BUILD_TESTS=OFF >/dev/null
build-bench/bench/codec_bench --benchmark_counters_tabular=true "$@"
