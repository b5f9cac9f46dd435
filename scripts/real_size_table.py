#!/usr/bin/env python3
"""Turns real_size_check.py's steps.jsonl into one markdown table (standard library; runs anywhere).

Usage: python3 scripts/real_size_table.py steps.jsonl [table.md]
"""
import json
import sys


def fmt(x, digits=3):
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return "" if x is None else str(x)


def result(r):
    s = r["step"]
    if "step_argmax" in r:
        out = (f'argmax {r["step_argmax"]}, max err {fmt(r["step_max_abs"])} ({fmt(r["step_max_rel"])} of range), '
               f'min gap {fmt(r["step_min_gap"])}')
        if r.get("mtp_max_abs") is not None:
            out += (f'; MTP argmax {r["mtp_argmax"]}, max err {fmt(r["mtp_max_abs"])} '
                    f'({fmt(r["mtp_max_rel"])}), min gap {fmt(r["mtp_min_gap"])}')
        if r.get("near_ties"):
            out += "; near-ties: " + ", ".join(f'{t["index"]} (gap {fmt(t["reference_gap"])})' for t in r["near_ties"])
        return out
    if "depth" in r:
        tps = r.get("tokens_per_s") or {}
        out = (f'{"identical" if r.get("ok") else "DIVERGED"}, {r["prompts"]}x{r["max_tokens"]} tokens, acceptance '
               f'{fmt(r.get("acceptance"))}, tokens/s plain {fmt(tps.get("vanilla"))} / MTP {fmt(tps.get("mtp"))}')
        if "vanilla_equals_transformers" in r:
            out += f', plain == transformers {r["vanilla_equals_transformers"]}'
        return out
    if "cosine_min" in r:
        return (f'{fmt(r.get("output_gb"))} GB, cosine min {r["cosine_min"]:.5f} ({r["cosine_min_tensor"]}), '
                f'median {r["cosine_median"]:.5f} over {r["tensors_quantized"]} tensors')
    if "differing" in r:
        return f'{r["tensors"]} tensors, {len(r["differing"])} differ'
    if "output" in r:
        return " / ".join(l.strip() for l in r["output"].splitlines() if "tokens/s" in l or "bandwidth" in l)
    bits = []
    for k in ("source_gb", "output_gb", "mtp", "layout"):
        if r.get(k) is not None:
            bits.append(f"{k} {fmt(r[k])}")
    return ", ".join(bits)


def write(steps_path, out_path=None):
    rows = [json.loads(l) for l in open(steps_path) if l.strip()]
    lines = ["| model | step | exit | wall s | peak RSS MB | result |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "(manifest " in r["step"]:
            continue
        lines.append(f'| {r["model"]} | {r["step"]} | {r.get("rc", "")} | {fmt(r.get("wall_s"), 4)} | '
                     f'{fmt(r.get("peak_rss_mb"), 5)} | {result(r)} |')
    text = "\n".join(lines) + "\n"
    if out_path:
        open(out_path, "w").write(text)
    return text


if __name__ == "__main__":
    print(write(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None), end="")
