#!/usr/bin/env python3
"""Independent reference for the numbers pinned in test_tasks.c.

Re-derives the one-prefix pairs of the shipped task files (data/tasks) with Python's own
json/csv readers and applies the answer-token rule of METHOD.md section 4 to token ids
from the Hugging Face `tokenizers` library (through hf_encode.mjs and node):

    ta = enc(prefix + " " + good), tb = enc(prefix + " " + bad)   (no special tokens)
    L  = longest common prefix of ta and tb; answers = ta[L:], tb[L:]
    drop: identical (both answers empty), different_token_counts, too_many_tokens (> 2),
          empty_prefix (L == 0); else prompt ta[:L], compared ids ta[L], tb[L]

Usage (from the repository root; NODE_PATH holds @anush008/tokenizers):
    zstd -dc tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst > /tmp/neox.json
    NODE_PATH=/scratch/node_modules python3 tests/tasks/ref_counts.py /tmp/neox.json TASK...

Prints one JSON object per task: pairs, kept, dropped by reason, and examples_sha256 =
SHA-256 of the lines "pair:prefix ids (comma-separated):good:bad\\n" of all kept examples
in file order (the same digest test_tasks.c computes from ct_task_tokenize).
"""
import csv
import hashlib
import json
import os
import string
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "data", "tasks")


def read(path):
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout.decode("utf-8")
    with open(path, encoding="utf-8") as f:
        return f.read()


def one_word(good, bad, expect_prefix=None):
    """(prefix, good word, bad word) or a drop reason."""
    wg, wb = good.split(), bad.split()
    if len(wg) != len(wb):
        return "not_one_word_difference"
    diff = [i for i in range(len(wg)) if wg[i] != wb[i]]
    if not diff:
        return "identical"
    if len(diff) > 1:
        return "not_one_word_difference"
    i = diff[0]
    if i == 0:
        return "empty_prefix"
    if expect_prefix is not None and expect_prefix.split() != wg[:i]:
        return "prefix_mismatch"
    g, b = wg[i], wb[i]
    while len(g) > 1 and len(b) > 1 and g[-1] == b[-1] and g[-1] in string.punctuation:
        g, b = g[:-1], b[:-1]
    return (" ".join(wg[:i]), g, b)


def blimp(paradigm):
    out = []
    for line in read(os.path.join(DATA, "blimp", paradigm + ".jsonl.zst")).split("\n"):
        if not line.strip():
            continue
        d = json.loads(line)
        if not all(k in d for k in ("one_prefix_prefix", "one_prefix_word_good", "one_prefix_word_bad")):
            out.append("no_one_prefix")
            continue
        p, g, b = d["one_prefix_prefix"].strip(), d["one_prefix_word_good"].strip(), d["one_prefix_word_bad"].strip()
        out.append("identical" if g == b else "empty_prefix" if not p else (p, g, b))
    return out


def clams(lang, phen):
    lines = [l.strip() for l in read(os.path.join(DATA, "clams", lang, phen + ".txt.zst")).split("\n")]
    lines = [l for l in lines if l]
    out = []
    for t, f in zip(lines[0::2], lines[1::2]):
        assert t.startswith("True\t") and f.startswith("False\t")
        t, f = t.split("\t", 1)[1].strip(), f.split("\t", 1)[1].strip()
        # the reference capitalises CLAMS sentences; en/fr are lower case
        out.append(one_word(t[:1].upper() + t[1:], f[:1].upper() + f[1:]))
    return out


def multiblimp(lang, phen=None):
    for name in (lang + ".tsv.zst", lang + ".jsonl.zst"):
        path = os.path.join(DATA, "multiblimp", name)
        if os.path.exists(path):
            break
    text = read(path)
    if name.endswith(".jsonl.zst"):
        rows = [json.loads(l) for l in text.split("\n") if l.strip()]
    else:
        csv.field_size_limit(1 << 30)
        rows = list(csv.DictReader(text.splitlines(keepends=True), delimiter="\t"))
    out = []
    for r in rows:
        if phen is not None and r.get("phenomenon") != phen:
            continue
        good = r.get("sen", r.get("sentence_good"))
        bad = r.get("wrong_sen", r.get("sentence_bad"))
        out.append(one_word(good, bad, r.get("prefix")))
    return out


def load(task):
    parts = task.split("/")
    if parts[0] == "blimp":
        return blimp(parts[1])
    if parts[0] == "clams":
        return clams(parts[1], parts[2])
    return multiblimp(parts[1], parts[2] if len(parts) > 2 else None)


def main():
    tok, tasks = sys.argv[1], sys.argv[2:]
    loaded = {t: load(t) for t in tasks}
    texts = []
    for pairs in loaded.values():
        for p in pairs:
            if isinstance(p, tuple):
                texts += [p[0] + " " + p[1], p[0] + " " + p[2]]
    enc = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_encode.mjs"), tok],
                         input="".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode(),
                         check=True, capture_output=True).stdout.decode().split("\n")
    ids = iter(json.loads(l) for l in enc if l)
    for task, pairs in loaded.items():
        dropped, kept, h, first = {}, 0, hashlib.sha256(), []
        for i, p in enumerate(pairs):
            why = p
            if isinstance(p, tuple):
                ta, tb = next(ids), next(ids)
                n = 0
                while n < len(ta) and n < len(tb) and ta[n] == tb[n]:
                    n += 1
                ag, ab = len(ta) - n, len(tb) - n
                why = ("identical" if ag == 0 and ab == 0 else "different_token_counts" if ag != ab
                       else "too_many_tokens" if ag > 2 else "empty_prefix" if n == 0 else None)
                if why is None:
                    kept += 1
                    h.update(f"{i}:{','.join(map(str, ta[:n]))}:{ta[n]}:{tb[n]}\n".encode())
                    if len(first) < 2:
                        first.append({"pair": i, "prefix": ta[:n], "good": ta[n], "bad": tb[n]})
                    continue
            dropped[why] = dropped.get(why, 0) + 1
        print(json.dumps({"task": task, "pairs": len(pairs), "kept": kept, "dropped": dropped,
                          "examples_sha256": h.hexdigest(), "first": first}))


if __name__ == "__main__":
    main()
