#!/usr/bin/env python3
"""Independent Python rendition of the HF -> MLX (mlx-vlm) sanitize rules of docs QWEN35_SPEC.md §2-3.

forge's C++ convert passes are tested against these outputs, so this script shares no code with forge.
It also writes the 'mixed' convention checkpoint seen in the wild (backbone +1, MTP layer norms raw) and
a 4-bit affine quantized MLX checkpoint (quantize per MLX's CPU arithmetic, spec §6.3) for inspect's tests.

Usage: python3 scripts/make_mlx_reference.py FIXTURES_DIR   (reads *-hf folders, writes *-mlx folders)
"""
import json
import os
import re
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

ROOT = sys.argv[1]
SHIFT_SUFFIXES = (".input_layernorm.weight", ".post_attention_layernorm.weight", ".q_norm.weight",
                  ".k_norm.weight", ".pre_fc_norm_hidden.weight", ".pre_fc_norm_embedding.weight")
AUX = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
       "preprocessor_config.json", "video_preprocessor_config.json")


def load_dir(d):
    out = {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            out.update(load_file(os.path.join(d, fn)))
    return out


def rename(k):
    for a, b in (("model.language_model.", "language_model.model."), ("model.visual.", "vision_tower."),
                 ("lm_head.", "language_model.lm_head."), ("mtp.", "language_model.mtp."),
                 ("model.", "language_model.model.")):
        if k.startswith(a):
            return b + k[len(a):]
    return k


def needs_shift(k, v):
    if v.dim() != 1 or "vision_tower." in k:
        return False
    return k.endswith(SHIFT_SUFFIXES) or k in ("language_model.model.norm.weight", "language_model.mtp.norm.weight")


def sanitize(sd, tied):
    out = {}
    per_expert = {}
    for k, v in sd.items():
        if tied and k == "lm_head.weight":
            continue
        nk = rename(k)
        if "conv1d.weight" in nk and v.shape[-1] != 1:
            v = v.transpose(1, 2).contiguous()          # [C,1,K] -> [C,K,1]
        if nk.endswith("patch_embed.proj.weight") and v.dim() == 5:
            v = v.permute(0, 2, 3, 4, 1).contiguous()   # [O,C,T,H,W] -> [O,T,H,W,C]
        if needs_shift(nk, v):
            v = (v.float() + 1.0).to(v.dtype)
        m = re.match(r"(.*\.mlp)\.experts\.(\d+)\.(gate|up|down)_proj\.weight$", nk)
        if m:
            per_expert.setdefault((m.group(1), m.group(3)), {})[int(m.group(2))] = v
            continue
        if nk.endswith(".mlp.experts.gate_up_proj"):
            base = nk[: -len(".experts.gate_up_proj")]
            inter = v.shape[1] // 2
            out[base + ".switch_mlp.gate_proj.weight"] = v[:, :inter].contiguous()
            out[base + ".switch_mlp.up_proj.weight"] = v[:, inter:].contiguous()
            continue
        if nk.endswith(".mlp.experts.down_proj"):
            out[nk[: -len(".experts.down_proj")] + ".switch_mlp.down_proj.weight"] = v
            continue
        out[nk] = v
    for (base, proj), experts in per_expert.items():
        out[f"{base}.switch_mlp.{proj}_proj.weight"] = torch.stack([experts[e] for e in sorted(experts)])
    return out


def affine_quantize(w, bits, group):
    """MLX CPU affine rule (spec §6.3), packed LSB-first into uint32 (bits 4 and 8 only here)."""
    shape = w.shape
    x = w.float().reshape(-1, group)
    wmax, wmin = x.max(dim=1).values, x.min(dim=1).values
    n = (1 << bits) - 1
    s = torch.clamp((wmax - wmin) / n, min=1e-7)
    edge_is_min = wmin.abs() > wmax.abs()
    edge = torch.where(edge_is_min, wmin, wmax)
    s = torch.where(edge_is_min, s, -s)
    q0 = torch.round(edge / s)
    nz = q0 != 0
    s = torch.where(nz, edge / torch.where(nz, q0, torch.ones_like(q0)), s)
    bias = torch.where(nz, edge, torch.zeros_like(edge))
    q = torch.clamp(torch.round((x - bias[:, None]) / s[:, None]), 0, n).to(torch.int64)
    per_word = 32 // bits
    q = q.reshape(-1, per_word)
    word = torch.zeros(q.shape[0], dtype=torch.int64)
    for i in range(per_word):
        word |= q[:, i] << (bits * i)
    word = word.to(torch.uint32) if hasattr(torch, "uint32") else word.to(torch.int32)
    packed = word.reshape(*shape[:-1], shape[-1] * bits // 32)
    return packed, s.to(w.dtype).reshape(*shape[:-1], -1), bias.to(w.dtype).reshape(*shape[:-1], -1)


def quantizable(k, v, group):
    if not k.endswith(".weight") or v.dim() < 2 or "vision_tower." in k or "conv1d" in k:
        return False
    return v.shape[-1] % group == 0


def convert(src, dst, tied, mixed=False, quant=None):
    sd = load_dir(os.path.join(ROOT, src))
    out = sanitize(sd, tied)
    if mixed:  # the I8 case: backbone converted, MTP layer norms left raw
        for k in list(out):
            if k.startswith("language_model.mtp.layers.") and needs_shift(k, out[k]):
                raw = [x for x in sd if rename(x) == k][0]
                out[k] = sd[raw]
    cfg = json.load(open(os.path.join(ROOT, src, "config.json")))
    if quant:
        bits, group = quant
        q = {}
        for k, v in out.items():
            if quantizable(k, v, group):
                base = k[: -len(".weight")]
                q[base + ".weight"], q[base + ".scales"], q[base + ".biases"] = affine_quantize(v, bits, group)
            else:
                q[k] = v
        out = q
        qc = {"group_size": group, "bits": bits, "mode": "affine"}
        cfg["quantization"] = dict(qc)
        cfg["quantization_config"] = dict(qc)
    d = os.path.join(ROOT, dst)
    os.makedirs(d, exist_ok=True)
    save_file(out, os.path.join(d, "model.safetensors"), metadata={"format": "mlx"})
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2, sort_keys=True)
    for fn in AUX:
        p = os.path.join(ROOT, src, fn)
        if os.path.exists(p):
            shutil.copy(p, os.path.join(d, fn))


if __name__ == "__main__":
    convert("dense-vlm-hf", "dense-vlm-mlx", tied=True)
    convert("moe-vlm-hf", "moe-vlm-mlx", tied=False)
    convert("moe36-vlm-hf", "moe36-vlm-mlx", tied=False)
    convert("moe-vlm-hf", "moe-vlm-mlx-mixed", tied=False, mixed=True)
    convert("dense-vlm-hf", "dense-vlm-mlx-q4", tied=True, quant=(4, 64))
