#!/usr/bin/env python3
"""Turn references/NAME.json (logits as JSON text) into NAME.tokens.json + NAME.logits.safetensors (f32).

Standard library only, so it runs anywhere; make_fixtures.py calls it at the end. Tensor names:
case<i>.step_logits [steps, V], case<i>.mtp_post_norm_logits and case<i>.mtp_pre_norm_logits [T-1, V].
Usage: python3 scripts/compact_references.py REFERENCES_DIR
"""
import json
import os
import struct
import sys


def write_f32_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        rows = tensors[name]
        flat = [x for r in rows for x in r]
        blob = struct.pack(f"<{len(flat)}f", *flat)
        header[name] = {"dtype": "F32", "shape": [len(rows), len(rows[0])], "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def compact(ref_dir):
    for fn in sorted(os.listdir(ref_dir)):
        if not fn.endswith(".json") or fn.endswith(".tokens.json"):
            continue
        name = fn[:-5]
        d = json.load(open(os.path.join(ref_dir, fn)))
        tensors, cases = {}, []
        for i, c in enumerate(d["cases"]):
            tensors[f"case{i}.step_logits"] = c.pop("step_logits")
            for which in ("post_norm", "pre_norm"):
                if f"mtp_{which}_logits" in c:
                    tensors[f"case{i}.mtp_{which}_logits"] = c.pop(f"mtp_{which}_logits")
            cases.append(c)
        d["cases"] = cases
        d["logits_file"] = f"{name}.logits.safetensors"
        meta = {k: str(v) for k, v in d.items() if k not in ("cases",)}
        write_f32_safetensors(os.path.join(ref_dir, d["logits_file"]), tensors, meta)
        json.dump(d, open(os.path.join(ref_dir, f"{name}.tokens.json"), "w"), indent=1)
        os.remove(os.path.join(ref_dir, fn))


if __name__ == "__main__":
    compact(sys.argv[1])
