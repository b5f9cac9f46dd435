#!/usr/bin/env bash
# Proves forge installs like a tool, on an existing build (default build/): `cmake --install` into a scratch
# prefix (binary, man page, bash/zsh completions, CMake package), a tiny consumer project built against that
# tree with find_package(forge) and compared with the CLI on a fixture, the bash completion exercised, then
# `cpack -G DEB`: its Depends checked and the package unpacked into a clean tree (dpkg -x), whose forge runs
# --version and `inspect config` on a fixture. CI runs it after the test suite (it reuses that build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FIXTURE=fixtures/dense-vlm-hf
fail() { echo "package check: FAIL: $*" >&2; exit 1; }

cmake --build "$BUILD" --target forge forge_docs >/dev/null
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
for f in bin/forge share/man/man1/forge.1 share/bash-completion/completions/forge share/zsh/vendor-completions/_forge \
         lib/cmake/forge/forgeConfig.cmake include/forge-toolkit/forge/ckpt/checkpoint.h; do
  [ -e "$WORK/prefix/$f" ] || fail "cmake --install did not install $f"
done
for c in "forge graft" "forge inspect config" "forge verify"; do
  grep -q "^\.SS \"$c\"" "$WORK/prefix/share/man/man1/forge.1" || fail "man page lacks $c"
done

# The bash completion: subcommands, options, an option's choices.
complete_words() {  # WORDS... -> the completions of the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _forge; echo "${COMPREPLY[*]}"' _ \
    "$WORK/prefix/share/bash-completion/completions/forge" "$@"
}
[ "$(complete_words forge gr)" = "graft" ] || fail "bash completion of 'forge gr': $(complete_words forge gr)"
[ "$(complete_words forge graft --lay)" = "--layout" ] || fail "bash completion of 'forge graft --lay'"
[ "$(complete_words forge graft --layout m)" = "mtplx mlx-lm" ] || fail "bash completion of --layout choices"
[ "$(complete_words forge inspect co)" = "config" ] || fail "bash completion of 'forge inspect co'"
if command -v zsh >/dev/null; then zsh -n "$WORK/prefix/share/zsh/vendor-completions/_forge" || fail "zsh completion syntax"; fi

# A C++ consumer of the installed package agrees with the CLI.
cmake -S tests/package/consumer -B "$WORK/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/consumer" >/dev/null
got=$("$WORK/consumer/forge_consumer" "$FIXTURE")
want=$("$WORK/prefix/bin/forge" inspect config --json "$FIXTURE" | python3 -c \
       'import json,sys; j=json.load(sys.stdin); print(j["tensor_count"], j["mtp"]["status"])')
[ "$got" = "$want" ] || fail "consumer printed '$got', forge inspect says '$want'"

# The Debian package.
(cd "$BUILD" && cpack -G DEB >/dev/null)
deb=$(ls "$BUILD"/forge_*.deb | head -1)
[ -f "$deb" ] || fail "cpack -G DEB made no package"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libssl3 libicu72 libpcre2-8-0 zlib1g libstdc++6; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -c "$deb" >"$WORK/contents"
for f in usr/bin/forge usr/share/man/man1/forge.1 usr/share/bash-completion/completions/forge; do
  grep -q "\./$f\$" "$WORK/contents" || fail "the package lacks /$f"
done
dpkg -x "$deb" "$WORK/root"
ver=$("$WORK/root/usr/bin/forge" --version)
[[ "$ver" =~ ^forge\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ ([0-9a-f]{12}(-dirty)?|unknown)\)$ ]] || fail "--version: $ver"
"$WORK/root/usr/bin/forge" inspect config "$FIXTURE" >/dev/null || fail "the packaged forge cannot inspect $FIXTURE"
if head=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  [[ "$ver" == *"(git $head"* ]] || fail "--version names $ver, the checkout is at $head"
fi
echo "package check: OK: $(basename "$deb") ($ver); Depends: $depends"
