#!/usr/bin/env python3
"""Transformers references (greedy tokens + step logits, full recompute, f32 on the CPU) for an HF checkpoint
as saved on disk, with the prompts of an existing reference file.

Loading the saved files (rather than reusing the in-memory model) keeps the reference faithful to what forge
reads: e.g. a model cast to bf16 for save_pretrained and back has bf16-rounded RoPE frequency buffers.

Usage: python3 scripts/reference_from_checkpoint.py CHECKPOINT_DIR NAME PROMPTS_TOKENS_JSON OUT_DIR [STEPS]
Writes OUT_DIR/references/NAME.tokens.json + NAME.logits.safetensors.
"""
import json
import os
import sys

import torch

sys.argv, argv = sys.argv[:1] + [sys.argv[5]], sys.argv  # make_fixtures reads OUT from argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
import compact_references  # noqa: E402
from transformers import AutoModelForImageTextToText, AutoModelForCausalLM  # noqa: E402


def main():
    ckpt, name, prompts_json, out = argv[1], argv[2], argv[3], argv[4]
    steps = int(argv[5]) if len(argv) > 5 else 40
    mf.OUT = out
    os.makedirs(os.path.join(out, "references"), exist_ok=True)
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    cls = AutoModelForImageTextToText if "vision_config" in cfg else AutoModelForCausalLM
    model = cls.from_pretrained(ckpt, dtype=torch.float32).eval()
    prompts = [c["prompt"] for c in json.load(open(prompts_json))["cases"]]
    with torch.no_grad():
        mf.references(name, model, None, False, prompts, steps=steps)
    compact_references.compact(os.path.join(out, "references"))


if __name__ == "__main__":
    main()
