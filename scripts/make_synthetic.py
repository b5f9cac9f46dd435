#!/usr/bin/env python3
"""Synthetic Qwen3.5/3.6 checkpoints with the real names, shapes, dtypes, sharding and config of a released
model (spec §1.3 and §2), optionally truncated to N layers, filled with random or constant data. Standard
library only; streams (one 64 MiB data pool reused at rotating offsets), so a 35B-A3B-shaped checkpoint
costs disk, not memory.

Layouts: HF raw as the official Qwen3.5 files are (fused backbone experts, per-expert MTP experts, conv1d
[C,1,K], zero-centered norms, `model.language_model.*` / `model.visual.*` / `mtp.*`), or MLX as mlx-vlm writes
it (`language_model.model.*`, `switch_mlp` stacks, conv1d [C,K,1], MTP kept as `language_model.mtp.*`,
`vision_tower.*` with a channels-last patch embedding).

Random data is bf16 with sign and mantissa random and magnitudes in [2^-8, 2^0), so no NaN/Inf; norms get
the same treatment (their values do not matter for throughput). `--no-mtp` writes the fine-tune case.

`--quantize affine4` (MLX format only) writes the checkpoint as `forge quantize --mode affine --bits 4` lays one
out, without the float source ever existing (a 40-layer 35B-A3B is 67 GB in bf16, 19 GB in 4 bits): every
matrix forge quantizes becomes `.weight` (U32, packed) + `.scales` + `.biases` (bf16, group 64), routers at 8
bits, conv1d / mtp.fc / vision tower kept float, and config.json gets forge's `quantization` block. The packed
words are random bits, so the model's values mean nothing; its layout is what the timing needs. Check it
against forge's own plan with `--data sparse` (files truncated to size, nothing written, free) and
`forge quantize --dry-run --json` on the float variant.

Usage: python3 scripts/make_synthetic.py --model 35B-A3B --layers 8 --out DIR [--format hf|mlx]
       [--data random|constant|sparse] [--no-mtp] [--no-vision] [--max-shard-size 5GB] [--quantize affine4]
"""
import argparse
import json
import os
import struct
import sys

MODELS = {  # spec §1.3: H, L, nh, nkv, I (dense), Hv, (E, k, Ie, Is), tie, vision (depth, hidden, out)
    "0.8B": dict(H=1024, L=24, nh=8, nkv=2, I=3584, Hv=16, moe=None, tie=True, vis=(12, 768, 3072, 12)),
    "4B": dict(H=2560, L=32, nh=16, nkv=4, I=9216, Hv=32, moe=None, tie=True, vis=(27, 1152, 4304, 16)),
    "9B": dict(H=4096, L=32, nh=16, nkv=4, I=12288, Hv=32, moe=None, tie=False, vis=(27, 1152, 4304, 16)),
    "27B": dict(H=5120, L=64, nh=24, nkv=4, I=17408, Hv=48, moe=None, tie=False, vis=(27, 1152, 4304, 16)),
    "35B-A3B": dict(H=2048, L=40, nh=16, nkv=2, I=None, Hv=32, moe=(256, 8, 512, 512), tie=False, vis=(27, 1152, 4304, 16)),
    "122B-A10B": dict(H=3072, L=48, nh=32, nkv=2, I=None, Hv=64, moe=(256, 8, 1024, 1024), tie=False, vis=(27, 1152, 4304, 16)),
    "397B-A17B": dict(H=4096, L=60, nh=32, nkv=2, I=None, Hv=64, moe=(512, 10, 1024, 1024), tie=False, vis=(27, 1152, 4304, 16)),
}
VOCAB, HEAD_DIM, HK, DK, DV, KCONV = 248320, 256, 16, 128, 128, 4
DTYPE_BYTES = {"BF16": 2, "F32": 4, "U32": 4}
GROUP = 64


def quantized_bits(name, shape):
    """Bits forge's affine-4 recipe gives an MLX-named tensor, or None where it stays float (quantize/policy)."""
    if not name.endswith(".weight") or len(shape) < 2 or shape[-1] % GROUP:
        return None
    if name.startswith("vision_tower.") or "conv1d" in name or name.endswith("mtp.fc.weight"):
        return None
    return 8 if name.endswith((".mlp.gate.weight", ".mlp.shared_expert_gate.weight")) else 4


def quantize_affine4(tensors):
    """(tensors, quantization block) of the 4-bit layout: packed U32 weights, bf16 scales and biases."""
    out, block = [], {"group_size": GROUP, "bits": 4, "mode": "affine"}
    for name, shape, dt in tensors:
        bits = quantized_bits(name, shape)
        if bits is None:
            out.append((name, shape, dt))
            continue
        base = name[: -len(".weight")]
        groups = shape[:-1] + [shape[-1] // GROUP]
        out.extend([(name, shape[:-1] + [shape[-1] * bits // 32], "U32"), (base + ".scales", groups, "BF16"),
                    (base + ".biases", groups, "BF16")])
        if bits != 4:
            block[base] = {"group_size": GROUP, "bits": bits, "mode": "affine"}
    return out, block


def parse_size(s):
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "B": 1}
    for u in ("KB", "MB", "GB", "TB", "B"):
        if s.upper().endswith(u):
            return int(float(s[: -len(u)]) * units[u])
    return int(s)


def hf_tensors(m, layers, mtp, vision):
    """(name, shape, dtype) of an official-layout HF checkpoint."""
    H, nh, nkv, d, Hv = m["H"], m["nh"], m["nkv"], HEAD_DIM, m["Hv"]
    kd, vd = HK * DK, Hv * DV
    C = 2 * kd + vd
    out = []
    lm = "model.language_model."

    def attention(p):
        out.extend([(p + "self_attn.q_proj.weight", [2 * nh * d, H], "BF16"), (p + "self_attn.k_proj.weight", [nkv * d, H], "BF16"),
                    (p + "self_attn.v_proj.weight", [nkv * d, H], "BF16"), (p + "self_attn.o_proj.weight", [H, nh * d], "BF16"),
                    (p + "self_attn.q_norm.weight", [d], "BF16"), (p + "self_attn.k_norm.weight", [d], "BF16")])

    def ffn(p, per_expert):
        if m["moe"] is None:
            I = m["I"]
            out.extend([(p + "mlp.gate_proj.weight", [I, H], "BF16"), (p + "mlp.up_proj.weight", [I, H], "BF16"),
                        (p + "mlp.down_proj.weight", [H, I], "BF16")])
            return
        E, _, Ie, Is = m["moe"]
        out.append((p + "mlp.gate.weight", [E, H], "BF16"))
        if per_expert:
            for e in range(E):
                out.extend([(p + f"mlp.experts.{e}.gate_proj.weight", [Ie, H], "BF16"),
                            (p + f"mlp.experts.{e}.up_proj.weight", [Ie, H], "BF16"),
                            (p + f"mlp.experts.{e}.down_proj.weight", [H, Ie], "BF16")])
        else:
            out.extend([(p + "mlp.experts.gate_up_proj", [E, 2 * Ie, H], "BF16"), (p + "mlp.experts.down_proj", [E, H, Ie], "BF16")])
        out.extend([(p + "mlp.shared_expert.gate_proj.weight", [Is, H], "BF16"), (p + "mlp.shared_expert.up_proj.weight", [Is, H], "BF16"),
                    (p + "mlp.shared_expert.down_proj.weight", [H, Is], "BF16"), (p + "mlp.shared_expert_gate.weight", [1, H], "BF16")])

    out.append((lm + "embed_tokens.weight", [VOCAB, H], "BF16"))
    for i in range(layers):
        p = f"{lm}layers.{i}."
        out.extend([(p + "input_layernorm.weight", [H], "BF16"), (p + "post_attention_layernorm.weight", [H], "BF16")])
        if (i + 1) % 4 == 0:
            attention(p)
        else:
            a = p + "linear_attn."
            out.extend([(a + "in_proj_qkv.weight", [C, H], "BF16"), (a + "in_proj_z.weight", [vd, H], "BF16"),
                        (a + "in_proj_b.weight", [Hv, H], "BF16"), (a + "in_proj_a.weight", [Hv, H], "BF16"),
                        (a + "conv1d.weight", [C, 1, KCONV], "BF16"), (a + "dt_bias", [Hv], "BF16"), (a + "A_log", [Hv], "F32"),
                        (a + "norm.weight", [DV], "F32"), (a + "out_proj.weight", [H, vd], "BF16")])
        ffn(p, per_expert=False)
    out.append((lm + "norm.weight", [H], "BF16"))
    if not m["tie"]:
        out.append(("lm_head.weight", [VOCAB, H], "BF16"))
    if mtp:
        out.extend([("mtp.fc.weight", [H, 2 * H], "BF16"), ("mtp.pre_fc_norm_embedding.weight", [H], "BF16"),
                    ("mtp.pre_fc_norm_hidden.weight", [H], "BF16"), ("mtp.norm.weight", [H], "BF16"),
                    ("mtp.layers.0.input_layernorm.weight", [H], "BF16"), ("mtp.layers.0.post_attention_layernorm.weight", [H], "BF16")])
        attention("mtp.layers.0.")
        ffn("mtp.layers.0.", per_expert=True)  # Qwen3.5: the MTP layer's experts are stored per expert
    if vision:
        depth, Hvis, inter, _ = m["vis"]
        v = "model.visual."
        out.extend([(v + "patch_embed.proj.weight", [Hvis, 3, 2, 16, 16], "BF16"), (v + "patch_embed.proj.bias", [Hvis], "BF16"),
                    (v + "pos_embed.weight", [2304, Hvis], "BF16")])
        for j in range(depth):
            b = f"{v}blocks.{j}."
            out.extend([(b + "norm1.weight", [Hvis], "BF16"), (b + "norm1.bias", [Hvis], "BF16"), (b + "norm2.weight", [Hvis], "BF16"),
                        (b + "norm2.bias", [Hvis], "BF16"), (b + "attn.qkv.weight", [3 * Hvis, Hvis], "BF16"),
                        (b + "attn.qkv.bias", [3 * Hvis], "BF16"), (b + "attn.proj.weight", [Hvis, Hvis], "BF16"),
                        (b + "attn.proj.bias", [Hvis], "BF16"), (b + "mlp.linear_fc1.weight", [inter, Hvis], "BF16"),
                        (b + "mlp.linear_fc1.bias", [inter], "BF16"), (b + "mlp.linear_fc2.weight", [Hvis, inter], "BF16"),
                        (b + "mlp.linear_fc2.bias", [Hvis], "BF16")])
        out.extend([(v + "merger.norm.weight", [Hvis], "BF16"), (v + "merger.norm.bias", [Hvis], "BF16"),
                    (v + "merger.linear_fc1.weight", [4 * Hvis, 4 * Hvis], "BF16"), (v + "merger.linear_fc1.bias", [4 * Hvis], "BF16"),
                    (v + "merger.linear_fc2.weight", [H, 4 * Hvis], "BF16"), (v + "merger.linear_fc2.bias", [H], "BF16")])
    return out


def to_mlx(tensors):
    """mlx-vlm naming and layouts (spec §3): renames, conv [C,K,1], switch_mlp stacks, channels-last patches."""
    out, per_expert = [], {}
    for name, shape, dt in tensors:
        if name.startswith("model.language_model."):
            name = "language_model.model." + name[len("model.language_model."):]
        elif name.startswith("model.visual."):
            name = "vision_tower." + name[len("model.visual."):]
        elif name.startswith("lm_head.") or name.startswith("mtp."):
            name = "language_model." + name
        if name.endswith("conv1d.weight"):
            shape = [shape[0], shape[2], shape[1]]
        if name.endswith("patch_embed.proj.weight"):
            shape = [shape[0], shape[2], shape[3], shape[4], shape[1]]
        if name.endswith("mlp.experts.gate_up_proj"):
            E, two_i, H = shape
            base = name[: -len("experts.gate_up_proj")] + "switch_mlp."
            out.extend([(base + "gate_proj.weight", [E, two_i // 2, H], dt), (base + "up_proj.weight", [E, two_i // 2, H], dt)])
            continue
        if name.endswith("mlp.experts.down_proj"):
            out.append((name[: -len("experts.down_proj")] + "switch_mlp.down_proj.weight", shape, dt))
            continue
        if ".mlp.experts." in name:  # per-expert MTP experts: stacked
            base, rest = name.split(".mlp.experts.")
            proj = rest.split(".", 1)[1]  # gate_proj.weight
            per_expert.setdefault((base, proj), [0, shape, dt])[0] += 1
            continue
        out.append((name, shape, dt))
    for (base, proj), (count, shape, dt) in sorted(per_expert.items()):
        out.append((f"{base}.mlp.switch_mlp.{proj}", [count] + shape, dt))
    return out


def config(m, model, layers, mtp, vision, fmt):
    H = m["H"]
    text = dict(model_type="qwen3_5_moe_text" if m["moe"] else "qwen3_5_text", vocab_size=VOCAB, hidden_size=H,
                num_hidden_layers=layers, num_attention_heads=m["nh"], num_key_value_heads=m["nkv"], head_dim=HEAD_DIM,
                layer_types=["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)],
                full_attention_interval=4, linear_num_key_heads=HK, linear_num_value_heads=m["Hv"], linear_key_head_dim=DK,
                linear_value_head_dim=DV, linear_conv_kernel_dim=KCONV, rms_norm_eps=1e-6, max_position_embeddings=262144,
                hidden_act="silu", attention_bias=False, tie_word_embeddings=m["tie"], attn_output_gate=True,
                rope_parameters=dict(rope_type="default", rope_theta=10000000, partial_rotary_factor=0.25,
                                     mrope_section=[11, 11, 10], mrope_interleaved=True),
                mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False, mamba_ssm_dtype="float32", eos_token_id=248044,
                dtype="bfloat16")
    if m["moe"]:
        E, k, Ie, Is = m["moe"]
        text.update(num_experts=E, num_experts_per_tok=k, moe_intermediate_size=Ie, shared_expert_intermediate_size=Is)
    else:
        text["intermediate_size"] = m["I"]
    cfg = dict(architectures=["Qwen3_5MoeForConditionalGeneration" if m["moe"] else "Qwen3_5ForConditionalGeneration"],
               model_type="qwen3_5_moe" if m["moe"] else "qwen3_5", text_config=text, tie_word_embeddings=m["tie"],
               image_token_id=248056, video_token_id=248057, vision_start_token_id=248053, vision_end_token_id=248054,
               forge_synthetic=dict(model=f"Qwen3.5-{model}", layers=layers, mtp=mtp, format=fmt))
    if vision:
        depth, Hvis, inter, heads = m["vis"]
        cfg["vision_config"] = dict(depth=depth, hidden_size=Hvis, intermediate_size=inter, num_heads=heads, patch_size=16,
                                    temporal_patch_size=2, spatial_merge_size=2, in_channels=3, out_hidden_size=H,
                                    num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh")
    return cfg


class DataPool:
    """64 MiB of data reused at rotating offsets: random bf16 in [2^-8, 1) with random signs, or a constant."""
    SIZE = 64 << 20

    def __init__(self, kind):
        self.sparse = kind == "sparse"
        if kind in ("constant", "sparse"):
            self.buf = bytes([0x00, 0x3C]) * (self.SIZE // 2)  # bf16 0x3C00 = 2^-7
        else:
            b = bytearray(os.urandom(self.SIZE))
            # high byte of each little-endian bf16: sign random, exponent 119..126 (2^-8 .. 2^-1 scale)
            table = bytes(((x & 0x80) | (0x3B + (x & 0x03))) for x in range(256))
            b[1::2] = bytes(b[1::2]).translate(table)
            self.buf = bytes(b)
        self.view = memoryview(self.buf)
        self.offset = 0

    def write(self, f, nbytes):
        if self.sparse:  # leave a hole: the file gets its size, no data
            f.seek(nbytes, os.SEEK_CUR)
            return
        start = (self.offset * 2) % self.SIZE  # bf16-aligned, different for every tensor
        while nbytes > 0:
            n = min(nbytes, self.SIZE - start)
            f.write(self.view[start:start + n])
            nbytes -= n
            start = 0
        self.offset += 4099


def write_checkpoint(out, tensors, cfg, data, max_shard):
    os.makedirs(out, exist_ok=True)
    sized = [(n, s, dt, DTYPE_BYTES[dt] * _numel(s)) for n, s, dt in sorted(tensors)]
    shards, cur, cur_bytes = [], [], 0
    for t in sized:
        if cur and cur_bytes + t[3] > max_shard:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(t)
        cur_bytes += t[3]
    shards.append(cur)
    pool = DataPool(data)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = "model.safetensors" if len(shards) == 1 else f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for n, s, dt, nb in shard:
            header[n] = {"dtype": dt, "shape": s, "data_offsets": [offset, offset + nb]}
            offset += nb
            weight_map[n] = fname
        total += offset
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for n, s, dt, nb in shard:
                pool.write(f, nb)
            f.truncate()  # a sparse file's trailing hole
        print(f"  {fname}: {len(shard)} tensors, {offset / 1e9:.2f} GB", file=sys.stderr, flush=True)
    if len(shards) > 1:
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return total


def _numel(shape):
    n = 1
    for x in shape:
        n *= x
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--layers", type=int, default=0, help="truncate to N backbone layers (default: all)")
    ap.add_argument("--format", choices=["hf", "mlx"], default="hf")
    ap.add_argument("--data", choices=["random", "constant", "sparse"], default="random")
    ap.add_argument("--quantize", choices=["affine4"], help="write the 4-bit layout forge's quantize makes (mlx only)")
    ap.add_argument("--no-mtp", action="store_true")
    ap.add_argument("--no-vision", action="store_true")
    ap.add_argument("--max-shard-size", default="5GB")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    m = MODELS[a.model]
    layers = a.layers or m["L"]
    tensors = hf_tensors(m, layers, not a.no_mtp, not a.no_vision)
    if a.format == "mlx":
        tensors = to_mlx(tensors)
    cfg = config(m, a.model, layers, not a.no_mtp, not a.no_vision, a.format)
    if a.format == "mlx":  # converted: norms stored shifted, conv [C,K,1]; mlx-vlm keeps vision_config
        cfg["text_config"].pop("dtype", None)
    if a.quantize:
        if a.format != "mlx":
            ap.error("--quantize needs --format mlx")
        tensors, block = quantize_affine4(tensors)
        cfg["quantization"] = cfg["quantization_config"] = block
    total = write_checkpoint(a.out, tensors, cfg, a.data, parse_size(a.max_shard_size))
    print(f"{a.out}: Qwen3.5-{a.model} x {layers} layers, {a.format}, {len(tensors)} tensors, {total / 1e9:.2f} GB", file=sys.stderr)


if __name__ == "__main__":
    main()
