#!/usr/bin/env python3
"""Hugging Face `tokenizers` ids for every text of a JSONL file ({"text": ...} per line), from a
tokenizer.json (gzipped or not): the reference forge's BPE tokenizer is tested against. Runs where
`tokenizers` is installed (the GPU machine); writes {"tokenizers": VERSION, "cases": [{text, ids, decoded}]}.

Usage: python3 scripts/tokenizer_reference.py fixtures/tokenizer-qwen3/tokenizer.json.gz \
           fixtures/tokenizer-qwen3/texts.jsonl OUT.json
"""
import gzip
import json
import sys

import tokenizers


def main(tok_path, texts_path, out_path):
    raw = gzip.open(tok_path, "rb").read() if tok_path.endswith(".gz") else open(tok_path, "rb").read()
    tok = tokenizers.Tokenizer.from_str(raw.decode("utf-8"))
    cases = []
    for line in open(texts_path, encoding="utf-8"):
        text = json.loads(line)["text"]
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"tokenizers": tokenizers.__version__, "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                   "cases": cases}, f, ensure_ascii=False, indent=0)
    print(f"tokenizer reference: {len(cases)} texts, {sum(len(c['ids']) for c in cases)} ids -> {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
