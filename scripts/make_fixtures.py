#!/usr/bin/env python3
"""Build forge's tiny real-layout Qwen3.5/3.6 fixtures with Hugging Face transformers.

Runs on the GPU machine (transformers 5.x, torch, safetensors, tokenizers); see scripts/README.md.
Everything runs on the CPU in float32 from bf16-representable weights, seeded, so a rerun gives the same
bytes. Writes one folder per checkpoint under OUT_DIR, plus references/ (greedy tokens, logits, MTP draft
logits computed by transformers' own modules) and a MANIFEST.json describing each fixture.

Usage: python3 scripts/make_fixtures.py OUT_DIR
"""
import copy
import inspect
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file, load_file

import transformers
from transformers import (Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3_5MoeConfig,
                          Qwen3_5MoeForConditionalGeneration, Qwen3_5ForCausalLM)
from transformers.models.qwen3_5 import modeling_qwen3_5 as dense_mod
from transformers.models.qwen3_5_moe import modeling_qwen3_5_moe as moe_mod

OUT = sys.argv[1]
VOCAB = 320  # byte-level BPE: 256 bytes + merges + specials, see make_tokenizer()


def text_config(moe, hidden=64, vocab=VOCAB, tie=False):
    cfg = dict(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=4,
        layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
        full_attention_interval=4, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=16,
        linear_conv_kernel_dim=4, rms_norm_eps=1e-6, max_position_embeddings=4096, hidden_act="silu",
        attention_bias=False, tie_word_embeddings=tie,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                         "mrope_section": [2, 1, 1], "mrope_interleaved": True},
        mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False, mamba_ssm_dtype="float32",
        eos_token_id=VOCAB - 1 if vocab == VOCAB else vocab - 1,
    )
    if moe:
        cfg.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                   shared_expert_intermediate_size=32, router_aux_loss_coef=0.001)
    else:
        cfg.update(intermediate_size=128)
    return cfg


VISION = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4, temporal_patch_size=2,
              spatial_merge_size=2, in_channels=3, num_position_embeddings=64, hidden_act="gelu_pytorch_tanh")


def perturb(named_params, seed):
    """Random values for every parameter (norms too: a missed +1 must change outputs)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in named_params:
        with torch.no_grad():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=g) * 15 + 1))
            elif name.endswith("dt_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif name.endswith("linear_attn.norm.weight"):
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.1)  # plain weight, init 1
            elif p.dim() == 1 and "norm" in name and "visual" not in name and "vision" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)  # zero-centered gains
            elif p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
            else:
                fan_in = p.shape[-1] if p.dim() >= 2 else 1
                if p.dim() == 5:  # conv3d patch embed
                    fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / (fan_in ** 0.5))
            # bf16-representable values, so references in f32 and checkpoints in bf16 agree
            p.copy_(p.to(torch.bfloat16).to(p.dtype))


def make_mtp(model_cls_mod, text_cfg_obj, moe, seed, per_expert):
    """An MTP head built from transformers' own layer classes (transformers has no MTP module)."""
    H = text_cfg_obj.hidden_size
    full_idx = text_cfg_obj.layer_types.index("full_attention")
    layer_cls = model_cls_mod.Qwen3_5MoeDecoderLayer if moe else model_cls_mod.Qwen3_5DecoderLayer
    norm_cls = model_cls_mod.Qwen3_5MoeRMSNorm if moe else model_cls_mod.Qwen3_5RMSNorm
    head = torch.nn.Module()
    head.fc = torch.nn.Linear(2 * H, H, bias=False)
    head.pre_fc_norm_embedding = norm_cls(H, eps=text_cfg_obj.rms_norm_eps)
    head.pre_fc_norm_hidden = norm_cls(H, eps=text_cfg_obj.rms_norm_eps)
    head.norm = norm_cls(H, eps=text_cfg_obj.rms_norm_eps)
    cfg = copy.deepcopy(text_cfg_obj)
    cfg._attn_implementation = "eager"
    head.layers = torch.nn.ModuleList([layer_cls(cfg, layer_idx=full_idx)])
    head.float()
    perturb(head.named_parameters(), seed)
    head.eval()
    tensors = {}
    for k, v in head.state_dict().items():
        name = "mtp." + k
        if per_expert and (k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj")):
            base = name.rsplit(".", 1)[0]  # mtp.layers.0.mlp.experts
            E = v.shape[0]
            for e in range(E):
                if k.endswith("gate_up_proj"):
                    I = v.shape[1] // 2
                    tensors[f"{base}.{e}.gate_proj.weight"] = v[e, :I].clone()
                    tensors[f"{base}.{e}.up_proj.weight"] = v[e, I:].clone()
                else:
                    tensors[f"{base}.{e}.down_proj.weight"] = v[e].clone()
        else:
            tensors[name] = v
    return head, tensors


def bf16_dict(sd):
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items()}


def write_sharded(folder, tensors, n_shards, metadata=None):
    """Write tensors into n_shards files (HF naming) + index; a single model.safetensors when n_shards == 1."""
    os.makedirs(folder, exist_ok=True)
    metadata = metadata or {"format": "pt"}
    names = sorted(tensors)
    if n_shards == 1:
        save_file(tensors, os.path.join(folder, "model.safetensors"), metadata=metadata)
        return
    per = (len(names) + n_shards - 1) // n_shards
    weight_map, total = {}, 0
    for s in range(n_shards):
        part = names[s * per:(s + 1) * per]
        fname = f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({k: tensors[k] for k in part}, os.path.join(folder, fname), metadata=metadata)
        for k in part:
            weight_map[k] = fname
            total += tensors[k].numel() * tensors[k].element_size()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


ARCHITECTURES = {"qwen3_5": "Qwen3_5ForConditionalGeneration", "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration",
                 "qwen3_5_text": "Qwen3_5ForCausalLM"}


def write_config(folder, cfg_dict):
    cfg_dict.setdefault("architectures", [ARCHITECTURES[cfg_dict["model_type"]]])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2, sort_keys=True)


def make_tokenizer(folder, seed_text, vocab_size):
    """A byte-level BPE tokenizer.json with Qwen's pre-tokenizer regex (ByteLevel without its own regex)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, normalizers, Regex
    qwen_pat = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(qwen_pat), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator([seed_text], trainer=trainer)
    tok.add_special_tokens(specials)
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "model_max_length": 4096}, f, indent=2)
    with open(os.path.join(folder, "chat_template.jinja"), "w") as f:
        f.write("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    return tok


def aux_files(folder, tok_src, vlm, eos):
    for fn in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(os.path.join(tok_src, fn), os.path.join(folder, fn))
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": eos, "do_sample": False}, f, indent=2)
    if vlm:
        pp = {"patch_size": 4, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3,
              "image_std": [0.5] * 3, "processor_class": "Qwen3VLProcessor"}
        for fn in ("preprocessor_config.json", "video_preprocessor_config.json"):
            with open(os.path.join(folder, fn), "w") as f:
                json.dump(pp, f, indent=2)


# ------------------------------------------------------------------ references (for the decoder issue)

def backbone_hiddens(model, ids):
    """Logits and pre-/post-final-norm hiddens of the whole sequence (full recompute, f32)."""
    lm = model.model.language_model if hasattr(model.model, "language_model") else model.model
    cap = {}
    h1 = lm.norm.register_forward_pre_hook(lambda m, a: cap.__setitem__("pre", a[0].detach()))
    h2 = lm.norm.register_forward_hook(lambda m, a, o: cap.__setitem__("post", o.detach()))
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    h1.remove(); h2.remove()
    return logits, cap["pre"][0], cap["post"][0]


def mtp_logits(model, head, ids, hidden, moe):
    """Draft logits for x_{i+2} from slot i = (h_i, x_{i+1}), i = 0..T-2, causal over the MTP's own slots."""
    lm = model.model.language_model if hasattr(model.model, "language_model") else model.model
    emb = lm.embed_tokens(ids[0, 1:])                          # [T-1, H]
    u = head.fc(torch.cat([head.pre_fc_norm_embedding(emb), head.pre_fc_norm_hidden(hidden[:-1])], dim=-1))
    T = u.shape[0]
    pos = torch.arange(T).view(1, 1, T).expand(3, 1, T)
    cos_sin = lm.rotary_emb(u[None], pos)
    mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
    layer = head.layers[0]
    params = inspect.signature(layer.forward).parameters
    kw = dict(position_embeddings=cos_sin, attention_mask=mask)
    if "position_ids" in params:
        kw["position_ids"] = pos[0]
    out = layer(u[None], **kw)
    if isinstance(out, tuple):
        out = out[0]
    g = head.norm(out[0])
    lm_head_w = model.lm_head.weight
    return g @ lm_head_w.T


def references(name, model, head, moe, prompts, steps=12):
    refs = []
    for prompt in prompts:
        ids = torch.tensor([prompt])
        step_logits = []
        for _ in range(steps):  # greedy by full recompute each step, no cache
            logits, _, _ = backbone_hiddens(model, ids)
            last = logits[-1]
            step_logits.append(last.tolist())
            ids = torch.cat([ids, last.argmax().view(1, 1)], dim=1)
        entry = {"prompt": prompt, "greedy": ids[0, len(prompt):].tolist(), "step_logits": step_logits}
        if head is not None:
            _, pre, post = backbone_hiddens(model, ids)
            with torch.no_grad():
                for which, hid in (("post_norm", post), ("pre_norm", pre)):
                    lg = mtp_logits(model, head, ids, hid, moe)
                    entry[f"mtp_{which}_argmax"] = lg.argmax(-1).tolist()
                    entry[f"mtp_{which}_logits"] = lg.tolist()
        refs.append(entry)
    with open(os.path.join(OUT, "references", f"{name}.json"), "w") as f:
        json.dump({"fixture": name, "sequence": "prompt + greedy", "dtype": "float32 from bf16 weights",
                   "transformers": transformers.__version__, "torch": torch.__version__, "cases": refs}, f)


# ------------------------------------------------------------------ main

def main():
    torch.manual_seed(0)
    os.makedirs(os.path.join(OUT, "references"), exist_ok=True)
    manifest = {}
    tok_dir = os.path.join(OUT, "_tok")
    os.makedirs(tok_dir, exist_ok=True)
    import glob
    text = ""
    for fn in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))[:40]:
        text += open(fn, encoding="utf-8", errors="replace").read()
    tok = make_tokenizer(tok_dir, text, VOCAB)
    other_tok_dir = os.path.join(OUT, "_tok_other")
    os.makedirs(other_tok_dir, exist_ok=True)
    make_tokenizer(other_tok_dir, text[::-1], 300)
    prompts = [tok.encode("def main(argv):\n    return").ids, tok.encode("import os\nimport sys\n").ids]
    eos = VOCAB - 1

    # ---- dense VLM with MTP (tied embeddings, like 0.8B/4B), single file
    dcfg = Qwen3_5Config(text_config=text_config(False, tie=True), vision_config=dict(VISION, out_hidden_size=64),
                         tie_word_embeddings=True)
    dense = Qwen3_5ForConditionalGeneration(dcfg).float().eval()
    perturb(dense.named_parameters(), 1)
    dense.tie_weights() if hasattr(dense, "tie_weights") else None
    dhead, dmtp = make_mtp(dense_mod, dense.config.text_config, False, 2, per_expert=False)
    sd = bf16_dict(dense.state_dict())
    sd.pop("lm_head.weight", None)  # tied: official small checkpoints drop it
    folder = os.path.join(OUT, "dense-vlm-hf")
    write_sharded(folder, {**sd, **bf16_dict(dmtp)}, 1)
    write_config(folder, json.loads(dcfg.to_json_string()))
    aux_files(folder, tok_dir, True, eos)
    manifest["dense-vlm-hf"] = "dense VLM, MTP head (15 tensors), tied embeddings, single file, HF raw"
    references("dense-vlm-hf", dense, dhead, False, prompts)

    # ---- dense VLM fine-tune saved by save_pretrained (MTP lost, config still declares it)
    ft = copy.deepcopy(dense)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for n, p in ft.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * p.abs().mean().clamp(min=1e-3) * 0.02)
            p.copy_(p.to(torch.bfloat16).float())
    folder = os.path.join(OUT, "dense-vlm-finetune-nomtp")
    ft.to(torch.bfloat16).save_pretrained(folder)
    cfgd = json.load(open(os.path.join(folder, "config.json")))
    cfgd.setdefault("text_config", {})["mtp_num_hidden_layers"] = 1
    write_config(folder, cfgd)
    aux_files(folder, tok_dir, True, eos)
    manifest["dense-vlm-finetune-nomtp"] = "fine-tune of dense-vlm-hf via save_pretrained: no mtp.*, config declares 1"

    # ---- MoE VLM, Qwen3.5 layout: fused backbone experts, per-expert MTP experts, 3 shards + index
    mcfg = Qwen3_5MoeConfig(text_config=text_config(True), vision_config=dict(VISION, out_hidden_size=64),
                            tie_word_embeddings=False)
    moe = Qwen3_5MoeForConditionalGeneration(mcfg).float().eval()
    perturb(moe.named_parameters(), 3)
    mhead, mmtp_pe = make_mtp(moe_mod, moe.config.text_config, True, 4, per_expert=True)
    _, mmtp_fused = make_mtp(moe_mod, moe.config.text_config, True, 4, per_expert=False)
    msd = bf16_dict(moe.state_dict())
    folder = os.path.join(OUT, "moe-vlm-hf")
    write_sharded(folder, {**msd, **bf16_dict(mmtp_pe)}, 3)
    write_config(folder, json.loads(mcfg.to_json_string()))
    aux_files(folder, tok_dir, True, eos)
    manifest["moe-vlm-hf"] = "MoE VLM, Qwen3.5 layout (fused backbone experts, per-expert MTP), 3 shards + index"
    references("moe-vlm-hf", moe, mhead, True, prompts)

    # ---- the same MoE in the Qwen3.6 layout (MTP experts fused too), single file
    folder = os.path.join(OUT, "moe36-vlm-hf")
    write_sharded(folder, {**msd, **bf16_dict(mmtp_fused)}, 1)
    write_config(folder, json.loads(mcfg.to_json_string()))
    aux_files(folder, tok_dir, True, eos)
    manifest["moe36-vlm-hf"] = "same weights as moe-vlm-hf, Qwen3.6 layout (MTP experts fused)"

    # ---- the same MoE as transformers' save_pretrained writes it (per-expert backbone) + MTP shard added
    folder = os.path.join(OUT, "moe-vlm-hf-perexpert")
    moe.to(torch.bfloat16).save_pretrained(folder, max_shard_size="200KB")
    moe.float()
    idx_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx_path):
        idx = json.load(open(idx_path))
    else:  # single file: turn it into an indexed checkpoint
        single = load_file(os.path.join(folder, "model.safetensors"))
        os.rename(os.path.join(folder, "model.safetensors"), os.path.join(folder, "model-00001-of-00001.safetensors"))
        idx = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in single.values())},
               "weight_map": {k: "model-00001-of-00001.safetensors" for k in single}}
    mtp_bf = bf16_dict(mmtp_pe)
    save_file(mtp_bf, os.path.join(folder, "model-mtp.safetensors"), metadata={"format": "pt"})
    for k, v in mtp_bf.items():
        idx["weight_map"][k] = "model-mtp.safetensors"
        idx["metadata"]["total_size"] += v.numel() * v.element_size()
    idx["weight_map"] = dict(sorted(idx["weight_map"].items()))
    json.dump(idx, open(idx_path, "w"), indent=2)
    cfgd = json.load(open(os.path.join(folder, "config.json")))
    cfgd.setdefault("text_config", {})["mtp_num_hidden_layers"] = 1
    write_config(folder, cfgd)
    aux_files(folder, tok_dir, True, eos)
    manifest["moe-vlm-hf-perexpert"] = "same weights, save_pretrained layout (per-expert backbone), sharded, MTP shard"

    # ---- MoE fine-tune that lost its head (save_pretrained, config still declares MTP)
    mft = copy.deepcopy(moe)
    g = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for n, p in mft.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * p.abs().mean().clamp(min=1e-3) * 0.02)
            p.copy_(p.to(torch.bfloat16).float())
    folder = os.path.join(OUT, "moe-vlm-finetune-nomtp")
    mft.to(torch.bfloat16).save_pretrained(folder, max_shard_size="300KB")
    cfgd = json.load(open(os.path.join(folder, "config.json")))
    cfgd.setdefault("text_config", {})["mtp_num_hidden_layers"] = 1
    write_config(folder, cfgd)
    aux_files(folder, tok_dir, True, eos)
    manifest["moe-vlm-finetune-nomtp"] = "fine-tune of moe-vlm-hf via save_pretrained: per-expert, no mtp.*, config declares 1"

    # ---- flat text-only dense checkpoint (Qwen3_5ForCausalLM, model.layers.*) with MTP
    tcfg = dense_mod.Qwen3_5TextConfig(**text_config(False, tie=False))
    text = Qwen3_5ForCausalLM(tcfg).float().eval()
    perturb(text.named_parameters(), 5)
    thead, tmtp = make_mtp(dense_mod, text.config, False, 6, per_expert=False)
    folder = os.path.join(OUT, "dense-text-hf")
    write_sharded(folder, {**bf16_dict(text.state_dict()), **bf16_dict(tmtp)}, 1)
    write_config(folder, json.loads(tcfg.to_json_string()))
    aux_files(folder, tok_dir, False, eos)
    manifest["dense-text-hf"] = "flat text-only dense (Qwen3_5ForCausalLM names model.layers.*), MTP, untied"
    references("dense-text-hf", text, thead, False, prompts)

    # ---- unrelated donor: other geometry (hidden 48) and other tokenizer
    ocfg = Qwen3_5Config(text_config=text_config(False, hidden=48, vocab=300, tie=True),
                         vision_config=dict(VISION, out_hidden_size=48), tie_word_embeddings=True)
    other = Qwen3_5ForConditionalGeneration(ocfg).float().eval()
    perturb(other.named_parameters(), 7)
    _, omtp = make_mtp(dense_mod, other.config.text_config, False, 8, per_expert=False)
    osd = bf16_dict(other.state_dict()); osd.pop("lm_head.weight", None)
    folder = os.path.join(OUT, "dense-other-hf")
    write_sharded(folder, {**osd, **bf16_dict(omtp)}, 1)
    write_config(folder, json.loads(ocfg.to_json_string()))
    aux_files(folder, other_tok_dir, True, 299)
    manifest["dense-other-hf"] = "unrelated donor: hidden 48, vocab 300, different tokenizer"

    shutil.rmtree(tok_dir); shutil.rmtree(other_tok_dir)
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump({"generator": "scripts/make_fixtures.py", "transformers": transformers.__version__,
                   "torch": torch.__version__, "fixtures": manifest}, f, indent=2)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import compact_references
    compact_references.compact(os.path.join(OUT, "references"))


if __name__ == "__main__":
    main()
