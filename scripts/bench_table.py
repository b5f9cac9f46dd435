#!/usr/bin/env python3
"""scripts/bench.sh's table: every ratio of issue 16 from one run's rows (standard library only).

Usage: bench_table.py WORK MODEL LAYERS SRC_BYTES LARGEST_TENSOR_BYTES "THREADS..."
"""
import glob
import json
import os
import re
import statistics
import sys

work, model, layers, src_bytes, big, threads_curve = sys.argv[1:7]
src_bytes, big = int(src_bytes), int(big)
rows = []
for line in open(os.path.join(work, "rows.tsv")):
    group, label, cache, secs, user, sys_s, rss = line.rstrip("\n").split("\t")
    rows.append(dict(group=group, label=label, cache=cache, secs=float(secs), user=float(user), sys=float(sys_s),
                     rss_mb=int(rss) / 1024))
bound_mb = 512 + 2 * big / 2**20


def of(group, label=None, cache=None):
    return [r for r in rows if r["group"] == group and (label is None or r["label"] == label)
            and (cache is None or r["cache"] == cache)]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# codec_bench: MB/s of bf16 input per thread, by codec id and rules (the ids of bench/codec_bench.cc).
codec_ids = {"affine4": 0, "affine8": 1, "mxfp4": 3, "mxfp8": 4, "nvfp4": 5}
codec = {}
for b in json.load(open(os.path.join(work, "codec.json")))["benchmarks"]:
    m = re.match(r"BM_Quantize/codec:(\d+)/cpu_rules:(\d)/threads:1/", b["name"])
    if m and "bytes_per_second" in b:
        codec[(int(m.group(1)), "mlx-cpu" if m.group(2) == "1" else "mlx-gpu")] = b["bytes_per_second"] / 1e6
quantized_bytes = {}
for path in glob.glob(os.path.join(work, "report-*.json")):
    mode = os.path.basename(path)[len("report-"):-len(".json")]
    quantized_bytes[mode] = json.load(open(path))["totals"]["quantized_weights"] * 2  # bf16 source

print(f"Qwen3.5-{model} x {layers} layers, synthetic HF raw: {src_bytes / 1e9:.2f} GB; largest tensor "
      f"{big / 2**20:.0f} MiB, so the RSS bound 512 MB + 2 x largest = {bound_mb:.0f} MB; {os.cpu_count()} cores")
print()
print("| step | cache | runs | median s | median vs copy | user CPU s/GB quantized | codec_bench s/GB (1 thread) | CPU vs codec | peak RSS MB | within bound |")
print("|---|---|---|---|---|---|---|---|---|---|")
groups = []
for r in rows:
    if r["group"] not in groups:
        groups.append(r["group"])
for g in groups:
    if not (g == "convert" or g.startswith("quantize ") or g.startswith("graft")):
        continue
    steps = [r for r in of(g) if not r["label"].startswith("cat")]
    for label in sorted({r["label"] for r in steps}, key=[r["label"] for r in steps].index):
        for cache in ("warm", "cold"):
            mine = of(g, label, cache)
            copies = of(g, "cat > copy", cache)
            if not mine:
                continue
            ratios = [c["secs"] / max(s["secs"], 1e-3) for c, s in zip(copies, mine)]
            cpu = codec_s = vs = ""
            if g.startswith("quantize "):
                _, mode, rules = g.split()
                qb = quantized_bytes.get(mode)
                kernel = codec.get((codec_ids.get(mode, -1), rules))
                if qb and kernel:
                    per_gb = median([s["user"] for s in mine]) / (qb / 1e9)
                    cpu, codec_s, vs = f"{per_gb:.2f}", f"{1e3 / kernel:.2f}", f"{per_gb / (1e3 / kernel):.2f}x"
            rss = max(s["rss_mb"] for s in mine)
            print(f"| {label} | {cache} | {len(mine)} | {median([s['secs'] for s in mine]):.1f} | "
                  f"{median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | {cpu} | {codec_s} | {vs} | {rss:.0f} | "
                  f"{'yes' if rss <= bound_mb else 'NO'} |")
print()
print("| measure | value |")
print("|---|---|")
for g in groups:
    if g.startswith("report "):
        plain, rep = of(g)[0], of(g)[1]
        print(f"| {g[7:]}: --report extra wall / user CPU | {rep['secs'] / plain['secs'] - 1:+.0%} / "
              f"{rep['user'] / max(plain['user'], 1e-3) - 1:+.0%} |")
for r in of("requantize"):
    print(f"| {r['label']} | {r['secs']:.1f} s, {r['user']:.1f} s user, peak RSS {r['rss_mb']:.0f} MB |")
for r in of("dequantize"):
    out = int(open(os.path.join(work, "deq-bytes")).read())
    print(f"| {r['label']} | {r['secs']:.1f} s, {out / 1e9:.2f} GB out = {out / 1e9 / r['secs']:.2f} GB/s "
          f"({out / 1e9 / max(r['user'], 1e-3):.2f} GB per user CPU s), peak RSS {r['rss_mb']:.0f} MB |")
curve = {}
for r in of("threads"):
    m = re.match(r"(.*) --threads (\d+)", r["label"])
    curve.setdefault(m.group(1), []).append((int(m.group(2)), r["secs"]))
for step, pts in curve.items():
    t1 = dict(pts).get(1)
    print(f"| thread scaling, {step} (warm) | " + ", ".join(
        f"{t}: {s:.1f} s" + (f" ({t1 / s:.2f}x)" if t1 else "") for t, s in pts) + " |")
for path in sorted(glob.glob(os.path.join(work, "decoder-*.txt"))):
    t = path.rsplit("-", 1)[1][:-4]
    text = open(path).read()
    keep = [l.strip() for l in text.splitlines() if re.search(r"roofline|verify pass|bandwidth", l)]
    print(f"| decoder, {t} threads (4B affine4) | {' / '.join(keep)} |")
