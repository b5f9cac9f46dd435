#!/usr/bin/env python3
"""Float64 transformers references for one HF fixture with an MTP head: step logits along the reference
sequence and MTP draft logits (post- and pre-norm hidden), computed exactly like make_fixtures.py's f32
references but in double precision.

Why: at an ill-conditioned position transformers' own f32 result can sit 1e-3 away from the exact value
(dense-text-hf slot 8: 1.2e-3), so a 1e-3 comparison against f32 would measure transformers' rounding, not
forge's. Tests use NAME.f64.logits.safetensors where it exists.

Usage: python3 scripts/reference_f64.py FIXTURES_DIR NAME OUT_DIR
"""
import json
import os
import sys

import torch

argv = sys.argv
sys.argv = argv[:1] + [argv[3]]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
from compact_references import write_f32_safetensors  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText  # noqa: E402
from transformers.models.qwen3_5 import modeling_qwen3_5 as dense_mod  # noqa: E402
from transformers.models.qwen3_5_moe import modeling_qwen3_5_moe as moe_mod  # noqa: E402


def main():
    fixtures, name, out = argv[1], argv[2], argv[3]
    d = os.path.join(fixtures, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    cls = AutoModelForImageTextToText if "vision_config" in cfg else AutoModelForCausalLM
    model = cls.from_pretrained(d, dtype=torch.float64).eval()
    text_cfg = model.config.text_config if hasattr(model.config, "text_config") else model.config
    moe = getattr(text_cfg, "num_experts", 0) > 0
    head, _ = mf.make_mtp(moe_mod if moe else dense_mod, text_cfg, moe, 0, per_expert=False)
    tensors = {}
    import glob
    for f in glob.glob(os.path.join(d, "*.safetensors")):
        tensors.update({k[4:]: v for k, v in load_file(f).items() if k.startswith("mtp.")})
    head.load_state_dict({k: v.double() for k, v in tensors.items()})
    head.double()
    ref = json.load(open(os.path.join(fixtures, "references", name + ".tokens.json")))
    result = {}
    with torch.no_grad():
        for i, c in enumerate(ref["cases"]):
            ids = torch.tensor([c["prompt"] + c["greedy"]])
            logits, pre, post = mf.backbone_hiddens(model, ids)
            n = len(c["prompt"])
            result[f"case{i}.step_logits"] = logits[n - 1:-1].float().tolist()
            for which, hid in (("post_norm", post), ("pre_norm", pre)):
                result[f"case{i}.mtp_{which}_logits"] = mf.mtp_logits(model, head, ids, hid, moe).float().tolist()
    os.makedirs(out, exist_ok=True)
    write_f32_safetensors(os.path.join(out, name + ".f64.logits.safetensors"), result,
                          {"fixture": name, "dtype": "float64 rounded to f32", "sequence": "prompt + greedy"})


if __name__ == "__main__":
    main()
