#!/usr/bin/env python3
"""Real-size Qwen3.5/3.6 checkpoints and transformers references (runs on the GPU machine).

transformers 5.x builds each model from the published config values (below, from the models' public
config.json files as docs/QWEN35_SPEC.md §1.3 records them), every parameter drawn at random with a
variance-preserving scale (weights ~ N(0, 1/fan_in), zero-centered norm gains ~ N(0, 0.2²), A_log, dt_bias
and the gated norm as make_fixtures.py draws them) and rounded to bf16, so the bf16 checkpoint holds exactly
the weights the f32 references are computed from. Written in the official layout with our own sharding
(5 GB shards + index): fused backbone experts `mlp.experts.gate_up_proj` [E, 2I, H], per-expert MTP experts
for Qwen3.5, fused MTP experts for Qwen3.6. transformers has no MTP module: the head is built from its own
layer classes (make_fixtures.py explains how).

  qwen35-4b          Qwen3.5-4B, all 32 layers, tied embeddings, vision tower, dense MTP head (15 tensors)
  qwen35-35b-a3b-2l  Qwen3.5-35B-A3B truncated to 2 layers (linear + full attention), all 256 experts
                     (1 GiB fused gate_up_proj), vision tower, per-expert MTP block (785 tensors)
  qwen36-35b-a3b-2l  the same shapes, Qwen3.6 layout (fused MTP experts, 19 tensors)

References (f32 on the GPU, TF32 off, eager attention, full recompute per step, no cache): for 4 prompts,
32 greedy tokens, every step's logits, and the MTP head's draft logits at every slot (post-norm hidden), in
REFS/NAME.tokens.json + REFS/NAME.logits.safetensors (the format `forge verify --reference` reads), and
the same for NAME.mlx-bf16: the model with its zero-centered gains replaced by bf16(1 + w) - 1, which is
what an MLX bf16 conversion stores (the shift rounds in bf16). The tokens file also records each step's
top-2 gap and logit range, so it can be committed alone.

Usage: python3 scripts/make_real_size.py WORK [--models a,b] [--tiny]
  WORK/models/NAME, WORK/refs/NAME.*, WORK/prompts.jsonl; a model already written is skipped.
  --tiny: the same pipeline on small shapes (a smoke test of this script and the driver, seconds).
"""
import argparse
import gzip
import inspect
import json
import os
import random
import sys
import time

import torch
from safetensors.torch import save_file

import transformers
from transformers import (Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3_5MoeConfig,
                          Qwen3_5MoeForConditionalGeneration)
from transformers.models.qwen3_5 import modeling_qwen3_5 as dense_mod
from transformers.models.qwen3_5_moe import modeling_qwen3_5_moe as moe_mod

VOCAB = 248320
EOS = 248044
MAX_SHARD = 5 * 10**9
STEPS = 32


def layer_types(n):
    return ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)]


# Shared by every released Qwen3.5/3.6 text config (spec §1.3).
COMMON_TEXT = dict(
    vocab_size=VOCAB, head_dim=256, linear_num_key_heads=16, linear_key_head_dim=128, linear_value_head_dim=128,
    linear_conv_kernel_dim=4, full_attention_interval=4, max_position_embeddings=262144, rms_norm_eps=1e-6,
    hidden_act="silu", attention_bias=False,
    rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                     "mrope_section": [11, 11, 10], "mrope_interleaved": True},
    mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False, mamba_ssm_dtype="float32", eos_token_id=EOS)
VISION = dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, patch_size=16,
              temporal_patch_size=2, spatial_merge_size=2, in_channels=3, num_position_embeddings=2304,
              hidden_act="gelu_pytorch_tanh")
MOE_35B = dict(hidden_size=2048, num_hidden_layers=2, layer_types=["linear_attention", "full_attention"],
               num_attention_heads=16, num_key_value_heads=2, linear_num_value_heads=32, num_experts=256,
               num_experts_per_tok=8, moe_intermediate_size=512, shared_expert_intermediate_size=512,
               router_aux_loss_coef=0.001)
MODELS = {
    "qwen35-4b": dict(moe=False, per_expert_mtp=False, tie=True, seed=1, text=dict(
        hidden_size=2560, num_hidden_layers=32, layer_types=layer_types(32), num_attention_heads=16,
        num_key_value_heads=4, intermediate_size=9216, linear_num_value_heads=32)),
    "qwen35-35b-a3b-2l": dict(moe=True, per_expert_mtp=True, tie=False, seed=3, text=dict(MOE_35B)),
    "qwen36-35b-a3b-2l": dict(moe=True, per_expert_mtp=False, tie=False, seed=5, text=dict(MOE_35B)),
}


def tiny(spec):
    """Small shapes with the same structure, for a smoke run."""
    t = dict(spec["text"])
    t.update(hidden_size=128, num_attention_heads=2, num_key_value_heads=1, linear_num_value_heads=4)
    if spec["moe"]:
        t.update(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32)
    else:
        t.update(num_hidden_layers=4, layer_types=layer_types(4), intermediate_size=256)
    return dict(spec, text=t)


def tiny_common():
    return dict(COMMON_TEXT, vocab_size=4096, head_dim=64, linear_num_key_heads=2, linear_key_head_dim=32,
                linear_value_head_dim=32, eos_token_id=4095)


TINY_VISION = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4, temporal_patch_size=2,
                   spatial_merge_size=2, in_channels=3, num_position_embeddings=64, hidden_act="gelu_pytorch_tanh")


def set_implementations(cfg):
    # Exact f32 paths: eager attention, the per-expert loop (grouped matmul kernels may not take f32).
    for c in (cfg, getattr(cfg, "text_config", None), getattr(cfg, "vision_config", None)):
        if c is not None:
            c._attn_implementation = "eager"
            c._experts_implementation = "eager"


def zero_centered(name, p):
    """The RMSNorm gains stored as w with the model computing (1 + w): all but the GDN gated norm."""
    vision = "visual" in name or "vision" in name
    return p.dim() == 1 and "norm" in name and not vision and not name.endswith("linear_attn.norm.weight")


def perturb(named_params, seed, dev):
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        for name, p in named_params:
            def randn():
                return torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32)
            vision = "visual" in name or "vision" in name
            if name.endswith("A_log"):
                v = torch.log(torch.rand(p.shape, generator=g, device=dev) * 15 + 1)
            elif name.endswith("dt_bias"):
                v = randn() * 0.5
            elif name.endswith("linear_attn.norm.weight"):
                v = 1 + randn() * 0.1  # the gated norm's plain weight (init 1)
            elif zero_centered(name, p):
                v = randn() * 0.2  # zero-centered gains: a missing +1 changes every output
            elif p.dim() == 1:
                v = randn() * 0.02 + (1.0 if "norm" in name and name.endswith("weight") else 0.0)
            else:
                fan_in = p[0].numel() if p.dim() == 5 else p.shape[-1]
                v = randn() / (fan_in ** 0.5)
            p.copy_(v.to(torch.bfloat16).to(p.dtype))


def make_mtp(mod, text_cfg, moe, seed, per_expert, dev):
    H = text_cfg.hidden_size
    full_idx = text_cfg.layer_types.index("full_attention")
    layer_cls = mod.Qwen3_5MoeDecoderLayer if moe else mod.Qwen3_5DecoderLayer
    norm_cls = mod.Qwen3_5MoeRMSNorm if moe else mod.Qwen3_5RMSNorm
    with torch.device(dev):
        head = torch.nn.Module()
        head.fc = torch.nn.Linear(2 * H, H, bias=False)
        head.pre_fc_norm_embedding = norm_cls(H, eps=text_cfg.rms_norm_eps)
        head.pre_fc_norm_hidden = norm_cls(H, eps=text_cfg.rms_norm_eps)
        head.norm = norm_cls(H, eps=text_cfg.rms_norm_eps)
        head.layers = torch.nn.ModuleList([layer_cls(text_cfg, layer_idx=full_idx)])
    head.float().eval()
    perturb(head.named_parameters(), seed, dev)
    tensors = {}
    for k, v in head.state_dict().items():
        name = "mtp." + k
        if per_expert and (k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj")):
            base = name.rsplit(".", 1)[0]
            for e in range(v.shape[0]):
                if k.endswith("gate_up_proj"):
                    half = v.shape[1] // 2
                    tensors[f"{base}.{e}.gate_proj.weight"] = v[e, :half]
                    tensors[f"{base}.{e}.up_proj.weight"] = v[e, half:]
                else:
                    tensors[f"{base}.{e}.down_proj.weight"] = v[e]
        else:
            tensors[name] = v
    return head, tensors


def write_checkpoint(folder, tensors, config, eos):
    """bf16, sorted names, a new shard whenever the next tensor would pass 5 GB; index + config."""
    tmp = folder + ".partial"
    os.makedirs(tmp, exist_ok=True)
    names = sorted(tensors)
    shards, cur, size = [], [], 0
    for n in names:
        b = tensors[n].numel() * 2
        if cur and size + b > MAX_SHARD:
            shards.append(cur)
            cur, size = [], 0
        cur.append(n)
        size += b
    shards.append(cur)
    weight_map, total = {}, 0
    for i, part in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        blob = {k: tensors[k].detach().to(torch.bfloat16).contiguous().cpu() for k in part}
        save_file(blob, os.path.join(tmp, fname), metadata={"format": "pt"})
        for k in part:
            weight_map[k] = fname
            total += blob[k].numel() * 2
        del blob
    with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(tmp, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": eos, "do_sample": False}, f, indent=2)
    os.rename(tmp, folder)
    return len(shards), total


def language_model(model):
    return model.model.language_model


def backbone(model, ids):
    """Logits and pre-/post-final-norm hiddens over the whole sequence (f32, full recompute)."""
    lm = language_model(model)
    cap = {}
    h1 = lm.norm.register_forward_pre_hook(lambda m, a: cap.__setitem__("pre", a[0].detach()))
    h2 = lm.norm.register_forward_hook(lambda m, a, o: cap.__setitem__("post", o.detach()))
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    h1.remove()
    h2.remove()
    return logits, cap["pre"][0], cap["post"][0]


def mtp_logits(model, head, ids, hidden):
    """Draft logits for x_{i+2} from slot i = (h_i, x_{i+1}), i = 0..T-2, causal over the MTP's own slots."""
    lm = language_model(model)
    dev = ids.device
    with torch.no_grad():
        emb = lm.embed_tokens(ids[0, 1:])
        u = head.fc(torch.cat([head.pre_fc_norm_embedding(emb), head.pre_fc_norm_hidden(hidden[:-1])], dim=-1))
        T = u.shape[0]
        pos = torch.arange(T, device=dev).view(1, 1, T).expand(3, 1, T)
        cos_sin = lm.rotary_emb(u[None], pos)
        mask = torch.full((T, T), float("-inf"), device=dev).triu(1)[None, None]
        layer = head.layers[0]
        kw = dict(position_embeddings=cos_sin, attention_mask=mask)
        if "position_ids" in inspect.signature(layer.forward).parameters:
            kw["position_ids"] = pos[0]
        out = layer(u[None], **kw)
        if isinstance(out, tuple):
            out = out[0]
        g = head.norm(out[0])
        return (g @ model.lm_head.weight.T).float()


def top2_and_range(logits):
    t = torch.topk(logits, 2, dim=-1).values
    return (t[:, 0] - t[:, 1]).tolist(), torch.stack([logits.min(-1).values, logits.max(-1).values], -1).tolist()


def references(name, model, head, prompts, refs_dir, steps):
    dev = next(model.parameters()).device
    tensors, cases = {}, []
    for i, prompt in enumerate(prompts):
        ids = torch.tensor([prompt], device=dev)
        rows = []
        with torch.no_grad():
            for _ in range(steps):
                last = model(input_ids=ids).logits[0, -1].float()
                rows.append(last)
                ids = torch.cat([ids, last.argmax().view(1, 1)], dim=1)
        step = torch.stack(rows)
        _, _, post = backbone(model, ids)
        draft = mtp_logits(model, head, ids, post)
        gaps, ranges = top2_and_range(step)
        mgaps, mranges = top2_and_range(draft)
        cases.append({"prompt": prompt, "greedy": ids[0, len(prompt):].tolist(),
                      "mtp_post_norm_argmax": draft.argmax(-1).tolist(),
                      "step_top2_gap": gaps, "step_logit_range": ranges,
                      "mtp_top2_gap": mgaps, "mtp_logit_range": mranges})
        tensors[f"case{i}.step_logits"] = step.cpu().contiguous()
        tensors[f"case{i}.mtp_post_norm_logits"] = draft.cpu().contiguous()
    save_file(tensors, os.path.join(refs_dir, f"{name}.logits.safetensors"), metadata={"format": "pt"})
    meta = {"fixture": name, "sequence": "prompt + greedy", "steps": steps,
            "dtype": "float32 on the GPU (TF32 off) from bf16 weights", "mtp_hidden": "post-norm",
            "transformers": transformers.__version__, "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "logits_file": f"{name}.logits.safetensors", "cases": cases}
    with open(os.path.join(refs_dir, f"{name}.tokens.json"), "w") as f:
        json.dump(meta, f)


def make_prompts(vocab, tokenizer_gz):
    rnd = random.Random(15)
    texts = ['def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
             "Der schnelle braune Fuchs springt über den faulen Hund. 敏捷的棕色狐狸跳过了懒狗。"]
    prompts = []
    try:
        import tokenizers
        tok = tokenizers.Tokenizer.from_str(gzip.open(tokenizer_gz, "rb").read().decode("utf-8"))
        prompts += [[i % vocab for i in tok.encode(t, add_special_tokens=False).ids] for t in texts]
    except Exception as e:  # a prompt of ids is as good for random weights
        print(f"tokenizer unavailable ({e}); random prompts instead", flush=True)
        prompts += [[rnd.randrange(vocab) for _ in range(14)] for _ in texts]
    prompts.append([rnd.randrange(vocab) for _ in range(16)])
    prompts.append([rnd.randrange(vocab - 2048, vocab) for _ in range(12)])  # the embedding's last rows
    return prompts


def build(name, spec, work, prompts, is_tiny, dev):
    folder = os.path.join(work, "models", name)
    refs = os.path.join(work, "refs")
    if os.path.exists(os.path.join(refs, f"{name}.tokens.json")) and os.path.isdir(folder):
        print(f"{name}: already written", flush=True)
        return
    t0 = time.time()
    common = tiny_common() if is_tiny else COMMON_TEXT
    text = dict(common, **spec["text"], tie_word_embeddings=spec["tie"])
    vision = dict(TINY_VISION if is_tiny else VISION, out_hidden_size=text["hidden_size"])
    cfg_cls, model_cls, mod = ((Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration, moe_mod) if spec["moe"]
                               else (Qwen3_5Config, Qwen3_5ForConditionalGeneration, dense_mod))
    cfg = cfg_cls(text_config=text, vision_config=vision, tie_word_embeddings=spec["tie"])
    set_implementations(cfg)
    with torch.device(dev):
        model = model_cls(cfg)
    model.float().eval()
    for setter in ("set_attn_implementation", "set_experts_implementation"):
        try:
            getattr(model, setter)("eager")
        except Exception as e:  # older names, or a model without experts
            print(f"{name}: {setter}: {e}", flush=True)
    set_implementations(model.config)
    perturb(model.named_parameters(), spec["seed"], dev)
    if spec["tie"] and hasattr(model, "tie_weights"):
        model.tie_weights()
    head, mtp = make_mtp(mod, model.config.text_config, spec["moe"], spec["seed"] + 100, spec["per_expert_mtp"], dev)
    t1 = time.time()
    sd = dict(model.state_dict())
    if spec["tie"]:
        sd.pop("lm_head.weight", None)  # tied: the official files leave it out
    sd.update(mtp)
    config = json.loads(cfg.to_json_string())
    config["architectures"] = [model_cls.__name__]
    config.setdefault("text_config", {})["mtp_num_hidden_layers"] = 1
    config["text_config"]["dtype"] = "bfloat16"
    n_shards, total = write_checkpoint(folder, sd, config, text["eos_token_id"])
    del sd
    t2 = time.time()
    references(name, model, head, prompts, refs, STEPS)
    # The MLX layout stores zero-centered gains shifted, 1 + w, in the checkpoint dtype: in bf16 that rounds
    # (8 significant bits). References for exactly the weights an MLX bf16 conversion holds:
    with torch.no_grad():
        for n, p in list(model.named_parameters()) + list(head.named_parameters()):
            if zero_centered(n, p):
                p.copy_((1 + p).to(torch.bfloat16).float() - 1)
    references(f"{name}.mlx-bf16", model, head, prompts, refs, STEPS)
    t3 = time.time()
    print(f"{name}: {len(mtp)} MTP tensors, {n_shards} shards, {total / 1e9:.2f} GB; build {t1 - t0:.1f} s, "
          f"write {t2 - t1:.1f} s, references {t3 - t2:.1f} s", flush=True)
    del model, head, mtp
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for d in ("models", "refs"):
        os.makedirs(os.path.join(a.work, d), exist_ok=True)
    vocab = tiny_common()["vocab_size"] if a.tiny else VOCAB
    here = os.path.dirname(os.path.abspath(__file__))
    prompts = make_prompts(vocab, os.path.join(here, "..", "fixtures", "tokenizer-qwen3", "tokenizer.json.gz"))
    with open(os.path.join(a.work, "prompts.jsonl"), "w") as f:
        for p in prompts:
            f.write(json.dumps({"tokens": p}) + "\n")
    for name in a.models.split(","):
        spec = tiny(MODELS[name]) if a.tiny else MODELS[name]
        build(name, spec, a.work, prompts, a.tiny, dev)


if __name__ == "__main__":
    sys.exit(main())
