#!/usr/bin/env python3
"""Train a tiny Qwen3.5 dense VLM with an MTP head, so MTP acceptance is realistic (FIXTURES.md).

Runs on the GPU machine (transformers 5.x, torch, tokenizers). A 4-layer (3 GDN + 1 gated attention), hidden-128
model with a byte-level BPE vocabulary of 512, trained on the Python standard library's own source files (they
ship with the image) with LM loss + MTP loss on token t+2 (the MTP head built from transformers' own layer
classes, as in make_fixtures.py). Held-out files give the prompts. Then a "fine-tune" continues training the
backbone alone on other files and is saved by save_pretrained, which drops the head (the real-world case
`forge graft` repairs).

Writes under OUT_DIR:
  trained-vlm-hf/                  base model with MTP head, official layout (single file, tied embeddings)
  trained-vlm-finetune-nomtp/      the fine-tune as save_pretrained writes it, no mtp.*
  references/trained-vlm-hf.*      greedy tokens + step logits + MTP draft logits (full recompute, f32, CPU)
  references/trained-vlm-finetune-nomtp.*   greedy tokens + step logits of the fine-tune
  tokenizer-cases.json             tokenizers' own encodings of tricky strings (for forge's BPE)
  TRAINING.json                    losses, teacher-forced MTP accuracy, library versions

Usage: python3 scripts/train_tiny_mtp.py OUT_DIR [TRAIN_SECONDS]
"""
import copy
import glob
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (shares the config, MTP-head and reference helpers)
from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration  # noqa: E402
from transformers.models.qwen3_5 import modeling_qwen3_5 as dense_mod  # noqa: E402

OUT = sys.argv[1]
TRAIN_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 150.0
FINETUNE_SECONDS = TRAIN_SECONDS / 6
VOCAB = 512
SEQ = 256
BATCH = 48
mf.OUT = OUT


def tiny_text_config():
    cfg = mf.text_config(False, hidden=128, vocab=VOCAB, tie=True)
    cfg.update(num_attention_heads=4, num_key_value_heads=2, head_dim=32, linear_num_key_heads=2,
               linear_num_value_heads=4, linear_key_head_dim=32, linear_value_head_dim=32, intermediate_size=384,
               eos_token_id=VOCAB - 1)
    return cfg


def corpus_files():
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))
    train = [f for i, f in enumerate(files) if i % 8 != 3]
    held = [f for i, f in enumerate(files) if i % 8 == 3]
    return train, held


def read(path):
    return open(path, encoding="utf-8", errors="replace").read()


def encode_files(tok, files):
    ids = []
    for enc in tok.encode_batch([read(f) for f in files]):
        ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.long)


def batches(stream, device, gen):
    n = stream.numel() - SEQ - 1
    while True:
        starts = torch.randint(0, n, (BATCH,), generator=gen)
        yield torch.stack([stream[s:s + SEQ] for s in starts]).to(device)


def mtp_forward(model, head, ids, hidden):
    """Draft logits for x_{i+2} from slot i = (h_i post-norm, x_{i+1}), causal over the MTP's slots."""
    lm = model.model.language_model
    emb = lm.embed_tokens(ids[:, 1:])
    u = head.fc(torch.cat([head.pre_fc_norm_embedding(emb), head.pre_fc_norm_hidden(hidden[:, :-1])], dim=-1))
    B, T, _ = u.shape
    pos = torch.arange(T, device=u.device).view(1, 1, T).expand(3, B, T)
    cos_sin = lm.rotary_emb(u, pos)
    mask = torch.full((T, T), float("-inf"), device=u.device).triu(1)[None, None]
    out = head.layers[0](u, position_embeddings=cos_sin, attention_mask=mask, position_ids=pos[0])
    if isinstance(out, tuple):
        out = out[0]
    return model.lm_head(head.norm(out))


def losses(model, head, ids, with_mtp=True):
    lm = model.model.language_model
    hidden = lm(input_ids=ids).last_hidden_state  # after the final norm (what the MTP is fed, post-norm)
    logits = model.lm_head(hidden)
    lm_loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    if not with_mtp:
        return lm_loss, None, None
    mlog = mtp_forward(model, head, ids, hidden)[:, :-1]  # slot i predicts x_{i+2}, i = 0..T-3
    target = ids[:, 2:]
    mtp_loss = F.cross_entropy(mlog.reshape(-1, VOCAB), target.reshape(-1))
    acc = (mlog.argmax(-1) == target).float().mean()
    return lm_loss, mtp_loss, acc


def train(model, params, step_fn, seconds, lr, gen_batches, label):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    start, step, log = time.time(), 0, []
    est_steps = None
    while True:
        elapsed = time.time() - start
        if elapsed > seconds:
            break
        if est_steps is None and step == 20:
            est_steps = max(40, int(seconds / (elapsed / 20)))
        frac = min(1.0, step / est_steps) if est_steps else 0.0
        for g in opt.param_groups:  # warmup then cosine
            g["lr"] = lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        loss, parts = step_fn(next(gen_batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0:
            log.append({"step": step, "t": round(elapsed, 1), **parts})
            print(label, log[-1], flush=True)
        step += 1
    return step, log


def round_bf16(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def teacher_forced_accuracy(model, head, tok, files, device):
    """Held-out depth-1 MTP accuracy: argmax of slot i == x_{i+2} over real text (an estimate of acceptance)."""
    hits = total = 0
    with torch.no_grad():
        for f in files[:12]:
            ids = torch.tensor([tok.encode(read(f)).ids[:SEQ]], device=device)
            if ids.shape[1] < 8:
                continue
            _, _, acc = losses(model, head, ids)
            n = ids.shape[1] - 2
            hits += acc.item() * n
            total += n
    return hits / max(total, 1)


def main():
    os.makedirs(os.path.join(OUT, "references"), exist_ok=True)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # keep f32 training numerics plain
    train_files, held_files = corpus_files()
    tok_dir = os.path.join(OUT, "_tok")
    os.makedirs(tok_dir, exist_ok=True)
    tok = mf.make_tokenizer(tok_dir, "".join(read(f) for f in train_files[:60]), VOCAB)
    stream = encode_files(tok, train_files)
    half = len(train_files) // 2
    ft_stream = encode_files(tok, train_files[half:half + 40])
    print("train tokens", stream.numel(), "finetune tokens", ft_stream.numel(), flush=True)

    cfg = Qwen3_5Config(text_config=tiny_text_config(), vision_config=dict(mf.VISION, out_hidden_size=128),
                        tie_word_embeddings=True)
    model = Qwen3_5ForConditionalGeneration(cfg).float()
    mf.perturb(model.named_parameters(), 21)
    with torch.no_grad():  # trained models start from the usual init of the norm gains
        for n, p in model.named_parameters():
            if p.dim() == 1 and "norm" in n and "visual" not in n and "linear_attn.norm" not in n:
                p.zero_()
    head, _ = mf.make_mtp(dense_mod, model.config.text_config, False, 22, per_expert=False)
    with torch.no_grad():
        for n, p in head.named_parameters():
            if p.dim() == 1:
                p.zero_()
    model.to(device).train()
    head.to(device).train()
    gen = torch.Generator().manual_seed(1)

    def joint_step(ids):
        lm_loss, mtp_loss, acc = losses(model, head, ids)
        return lm_loss + 0.8 * mtp_loss, {"lm": round(lm_loss.item(), 4), "mtp": round(mtp_loss.item(), 4),
                                          "mtp_acc": round(acc.item(), 4)}

    text_params = [p for n, p in model.named_parameters() if "visual" not in n]
    steps, log = train(model, text_params + list(head.parameters()), joint_step, TRAIN_SECONDS, 3e-3,
                       batches(stream, device, gen), "base")
    model.eval(); head.eval()
    round_bf16(model); round_bf16(head)
    acc_base = teacher_forced_accuracy(model, head, tok, held_files, device)
    print("held-out teacher-forced MTP accuracy", acc_base, flush=True)

    # ---- fine-tune: backbone only, other text, head not trained (it is lost on save, as in the wild)
    ft = copy.deepcopy(model).train()

    def lm_step(ids):
        lm_loss, _, _ = losses(ft, None, ids, with_mtp=False)
        return lm_loss, {"lm": round(lm_loss.item(), 4)}

    ft_steps, ft_log = train(ft, [p for n, p in ft.named_parameters() if "visual" not in n], lm_step,
                             FINETUNE_SECONDS, 5e-4, batches(ft_stream, device, gen), "finetune")
    ft.eval()
    round_bf16(ft)
    acc_ft_with_base_head = teacher_forced_accuracy(ft, head, tok, held_files, device)
    print("fine-tune + base head teacher-forced MTP accuracy", acc_ft_with_base_head, flush=True)

    # ---- write checkpoints (CPU, f32 from bf16-representable values)
    model.cpu(); head.cpu(); ft.cpu()
    mtp_tensors = {"mtp." + k: v for k, v in head.state_dict().items()}
    sd = mf.bf16_dict(model.state_dict())
    sd.pop("lm_head.weight", None)
    folder = os.path.join(OUT, "trained-vlm-hf")
    mf.write_sharded(folder, {**sd, **mf.bf16_dict(mtp_tensors)}, 1)
    mf.write_config(folder, json.loads(cfg.to_json_string()))
    mf.aux_files(folder, tok_dir, True, VOCAB - 1)

    folder = os.path.join(OUT, "trained-vlm-finetune-nomtp")
    copy.deepcopy(ft).to(torch.bfloat16).save_pretrained(folder)  # a copy: casting would round ft's RoPE buffers
    cfgd = json.load(open(os.path.join(folder, "config.json")))
    cfgd.setdefault("text_config", {})["mtp_num_hidden_layers"] = 1
    mf.write_config(folder, cfgd)
    mf.aux_files(folder, tok_dir, True, VOCAB - 1)

    # ---- references: held-out prompts, greedy by full recompute
    prompts = []
    for f in held_files[:3]:
        text = read(f)
        start = text.find("\ndef ")
        prompts.append(tok.encode(text[start + 1:start + 400]).ids[:40])
    mf.references("trained-vlm-hf", model, head, False, prompts, steps=40)
    mf.references("trained-vlm-finetune-nomtp", ft, None, False, prompts, steps=40)

    cases = ["def main(argv):\n    return 0\n", "I'm here; DON'T you've we'll they'd", "x = 12345 + 0.5e-3",
             "naïve café — 日本語 😀 e\u0301", "  \n\n\tindent\r\n  trailing   ", "<|im_start|>user\nhi<|im_end|>\n",
             "if (a<b)&&c: print('ok')  # comment", "ÀÉÎ õü ß ŒŸ", "\u0000\u007f\u00a0 tab\tend"]
    with open(os.path.join(OUT, "tokenizer-cases.json"), "w") as f:
        json.dump({"tokenizer": "trained-vlm-hf/tokenizer.json", "cases": [
            {"text": t, "ids": tok.encode(t).ids, "decoded": tok.decode(tok.encode(t).ids, skip_special_tokens=False)}
            for t in cases]}, f, indent=1, ensure_ascii=False)

    import shutil
    shutil.rmtree(tok_dir)
    import transformers
    with open(os.path.join(OUT, "TRAINING.json"), "w") as f:
        json.dump({"generator": "scripts/train_tiny_mtp.py", "transformers": transformers.__version__,
                   "torch": torch.__version__, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                   "train_seconds": TRAIN_SECONDS, "steps": steps, "finetune_steps": ft_steps,
                   "batch": BATCH, "seq": SEQ, "train_tokens": stream.numel(),
                   "heldout_teacher_forced_mtp_accuracy": acc_base,
                   "finetune_with_base_head_teacher_forced_mtp_accuracy": acc_ft_with_base_head,
                   "log": log[-5:], "finetune_log": ft_log[-3:]}, f, indent=1)
    import compact_references
    compact_references.compact(os.path.join(OUT, "references"))


if __name__ == "__main__":
    main()
