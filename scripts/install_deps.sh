#!/usr/bin/env bash
# Installs forge's build dependencies from Debian 12 packages (no other sources).
set -euo pipefail
# --ci adds what CI's extra checks use: clang and libFuzzer (scripts/fuzz.sh), valgrind (scripts/valgrind.sh),
# zsh (scripts/package_check.sh checks the zsh completion's syntax).
PKGS="build-essential cmake ninja-build nlohmann-json3-dev libcli11-dev libfmt-dev zlib1g-dev libssl-dev libgtest-dev libbenchmark-dev pkg-config libpcre2-dev libicu-dev"
if [ "${1:-}" = "--ci" ]; then PKGS="$PKGS clang libclang-rt-14-dev valgrind zsh"; fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
