#!/usr/bin/env bash
# forge's main job on the bundled fixtures, no arguments needed: installs the apt dependencies, builds,
# then shows what `forge inspect` finds in a fine-tune that lost its MTP head and in its base model, converts
# the base to MLX keeping its MTP head, repairs a mixed-convention checkpoint, quantizes (4-bit, with the
# fidelity report), requantizes to mxfp8, grafts the base's head back into the fine-tune (and refuses an
# unrelated donor), then the full repair on the *trained* tiny model: its fine-tune lost the head, graft
# it back, quantize to mxfp4, and prove with the CPU reference decoder that MTP speculative decoding emits
# exactly the greedy tokens, measuring acceptance.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh && scripts/build.sh >/dev/null || exit 1
FORGE=build/forge/cli/forge
run() { echo "\$ forge $*"; "$FORGE" "$@"; echo "(exit $?)"; echo; }
run inspect config fixtures/moe-vlm-finetune-nomtp
run inspect config fixtures/moe-vlm-hf
run inspect config fixtures/moe-vlm-mlx-mixed
TMP=$(mktemp -d)
run convert --dry-run --src fixtures/moe-vlm-hf --out "$TMP/moe-mlx"
run convert --src fixtures/moe-vlm-hf --out "$TMP/moe-mlx"
run inspect config "$TMP/moe-mlx"
run convert --src fixtures/moe-vlm-mlx-mixed --out "$TMP/fixed"
run convert --fix-norms shifted --src fixtures/moe-vlm-mlx-mixed --out "$TMP/fixed"
run inspect config "$TMP/fixed"
run quantize --src fixtures/moe-vlm-hf --out "$TMP/moe-q4" --mode affine --bits 4 --report "$TMP/fidelity.json"
run inspect config "$TMP/moe-q4"
run quantize --src "$TMP/moe-q4" --out "$TMP/moe-mxfp8" --mode mxfp8
run graft --dry-run --src fixtures/moe-vlm-finetune-nomtp --mtp-from fixtures/moe-vlm-hf --out "$TMP/grafted"
run graft --link --src fixtures/moe-vlm-finetune-nomtp --mtp-from fixtures/moe-vlm-hf --out "$TMP/grafted"
run inspect config "$TMP/grafted"
run verify --manifest "$TMP/grafted"
run graft --src fixtures/dense-vlm-finetune-nomtp --mtp-from fixtures/dense-other-hf --out "$TMP/refused"
run verify --identity --model fixtures/trained-vlm-finetune-nomtp
run verify --identity --model fixtures/trained-vlm-hf --depth 2
run graft -q --src fixtures/trained-vlm-finetune-nomtp --mtp-from fixtures/trained-vlm-hf --out "$TMP/trained-grafted"
run quantize -q --src "$TMP/trained-grafted" --out "$TMP/trained-mxfp4" --mode mxfp4
run verify --identity --model "$TMP/trained-mxfp4" --max-tokens 48
rm -rf "$TMP"
