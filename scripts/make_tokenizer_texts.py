#!/usr/bin/env python3
"""Writes the texts forge's tokenizer is checked on against Hugging Face `tokenizers` with Qwen3's real
tokenizer.json (fixtures/tokenizer-qwen3/): multilingual prose, code, whitespace runs, emoji and ZWJ
sequences, special tokens inside text, contractions in every case, digits, NFC-composable accents, control
characters and long repeats. Standard library only; seeded, so the file is the same on every run.

Usage: python3 scripts/make_tokenizer_texts.py fixtures/tokenizer-qwen3/texts.jsonl
"""
import json
import random
import sys

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Speculative decoding drafts several tokens, then verifies them in one pass.",
    "Le renard brun rapide saute par-dessus le chien paresseux. Où est l'hôtel ?",
    "Der schnelle braune Fuchs springt über den faulen Hund. Straße, Größe, Äpfel.",
    "El rápido zorro marrón salta sobre el perro perezoso. ¿Dónde está la estación?",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "敏捷的棕色狐狸跳过了懒狗。今天天气很好，我们去公园散步吧！",
    "素早い茶色の狐がのろまな犬を飛び越える。カタカナとひらがな、漢字。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘습니다. 한국어 문장입니다.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "השועל החום המהיר קופץ מעל הכלב העצלן.",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "Con cáo nâu nhanh nhẹn nhảy qua con chó lười biếng.",
    "Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.",
    "Szybki brązowy lis przeskakuje nad leniwym psem. Zażółć gęślą jaźń.",
    "Ο αριθμός π ≈ 3.14159, e ≈ 2.71828; ∑ᵢ xᵢ² ≤ ∞ and ∀x ∈ ℝ: x² ≥ 0.",
    "ቀልጣፋው ቡናማ ቀበሮ ሰነፉን ውሻ ዘለለ።",
    "Ṫhė q̃uïçk b̈rōwn f̆ox — “smart quotes”, ‘single’, «guillemets», and … ellipsis.",
]

CODE = [
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "#include <vector>\n\nint main(int argc, char** argv) {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() > 2 ? 0 : 1;\n}\n",
    "fn main() {\n    let xs: Vec<u64> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", xs);\n}\n",
    "SELECT name, COUNT(*) AS n FROM users WHERE age >= 18 GROUP BY name HAVING n > 1 ORDER BY n DESC;",
    "const f = async (url) => { const r = await fetch(url); return r.ok ? r.json() : null; };",
    "<html>\n  <body class=\"main\">\n    <p>Hello &amp; welcome!</p>\n  </body>\n</html>\n",
    "{\"model_type\": \"qwen3_5_moe\", \"num_experts\": 256, \"rope_theta\": 1e7, \"layers\": [0, 1, 2]}",
    "    if (x == NULL) {\r\n        return -1;\r\n    }\r\n",
    "$ forge graft --src ./Holo-3.1 --mtp-from ./Qwen3.5-4B --out ./Holo-3.1-mtp --json | jq .fit",
    "x = np.einsum('bhqd,bhkd->bhqk', q, k) / math.sqrt(d)  # scaled dot-product",
    "git commit -m \"Fix: don't double-shift the RMSNorm +1\" && git push origin main",
    "\\begin{equation} \\mathcal{L} = -\\sum_{t} \\log p_\\theta(x_{t+1} \\mid x_{\\le t}) \\end{equation}",
]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
            "</tool_call>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|fim_prefix|>",
            "<|fim_middle|>", "<|fim_suffix|>"]

EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "❤️", "🤖", "🧪🔬", "✅", "🚀✨", "🫠", "👩🏿‍💻"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "    ", "\u00a0", "\u3000", " \n ", "\t\t\n"]
CONTRACTIONS = ["it's", "IT'S", "we're", "WE'RE", "they've", "I'm", "you'll", "He'd", "don't", "DON'T",
                "o'clock", "rock'n'roll", "'s", "'LL", "Ma'am"]


def cases():
    rnd = random.Random(20261203)
    out = []
    out += PROSE + CODE
    out += [f"{s}{t}{s}" for s in ("", " ") for t in SPECIALS]
    out.append("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
               "Summarise MTP in one line.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    out.append("<|endoftext|><|endoftext|>text<|im_end|><|im_start|>")
    out.append("<|im_start <|im_end|> |im_end|> <|unknown|>")  # near-specials are plain text
    out += [" ".join(rnd.sample(CONTRACTIONS, 4)) for _ in range(12)]
    out += ["".join(rnd.choice(EMOJI) for _ in range(rnd.randint(1, 6))) for _ in range(12)]
    out += [e + w + "word" for e in EMOJI[:6] for w in (" ", "")]
    # whitespace runs of every kind, inside and around words
    for _ in range(40):
        parts = []
        for _ in range(rnd.randint(2, 6)):
            parts.append(rnd.choice(["a", "word", "Word", "123", "x=1", "é", "中文", "!", "--"]))
            parts.append("".join(rnd.choice(WHITESPACE) for _ in range(rnd.randint(1, 4))))
        out.append("".join(parts))
    out += [" " * n for n in (1, 2, 3, 7, 16, 33)] + ["\n" * n for n in (1, 2, 5)] + ["\t \n \t"]
    # digits: Qwen splits every digit
    out += ["1234567890", "3.14159265358979", "1,000,000.00", "2026-12-03T12:35:58Z", "0x7fffffff",
            "١٢٣٤٥", "一二三 123 ４５６", "v1.2.3-rc.4+build.5"]
    # NFC: decomposed accents compose before the split
    out += ["e\u0301cole", "Cafe\u0301 de\u0301ja\u0300 vu", "A\u030angstro\u0308m", "n\u0303", "\u1100\u1161\u11a8"]
    # controls and rare code points
    out += ["a\x00b", "\x07bell\x1b[0m", "tab\x0bvtab\x0cff", "\u200bzero\u200dwidth\ufeffbom",
            "\U0001d400\U0001d401 math bold", "\ue000 private use", "surrogate-free 𐍈 gothic"]
    # long repeats (merge chains) and mixed scripts
    out += ["a" * 64, "ab" * 40, "=" * 80, "-" * 50 + ">", "!!!???...", "ha" * 30 + "!", "😀" * 10]
    for _ in range(60):
        k = rnd.randint(2, 5)
        pieces = rnd.sample(PROSE + CODE, k)
        out.append(rnd.choice(["", " ", "\n"]).join(p[: rnd.randint(5, 60)] for p in pieces))
    # random printable unicode soup from a few blocks
    blocks = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x4e00, 0x4fff), (0x3040, 0x30ff),
              (0xac00, 0xad00), (0x1f300, 0x1f64f)]
    for _ in range(40):
        lo, hi = rnd.choice(blocks)
        out.append("".join(chr(rnd.randint(lo, hi)) for _ in range(rnd.randint(1, 24))))
    return out


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for t in cases():
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
