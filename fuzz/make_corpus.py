#!/usr/bin/env python3
"""Seeds for the bundle-import fuzzer: small valid bundles (compressed and plain
tar, so mutations reach the tar and manifest parsers) and one hostile variant per
refusal. Usage: fuzz/make_corpus.py CROSSTIME OUTDIR (then minimise with
bundle_import_fuzz -merge=1)."""
import hashlib, io, json, os, subprocess, sys, tarfile, tempfile

ct, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
work = tempfile.mkdtemp(prefix="ct-corpus-")
recipe = os.path.join(work, "toy.yaml")
with open(recipe, "w") as f:
    f.write("name: seed\ntoy:\n  inputs: [ab]\n  rounds: 1\n")
cache = os.path.join(work, "cache")
subprocess.run([ct, "run", recipe, "--cache", cache, "-q"], check=True)

def export(name, *args):
    path = os.path.join(work, name)
    subprocess.run([ct, "bundle", "export", recipe, "-o", path, "--cache", cache, *args], check=True)
    return path

def members(path):
    plain = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]

def tar(ms, extra=(), fmt=tarfile.PAX_FORMAT, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=fmt) as t:
        for name, data in ms:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for info in extra:
            t.addfile(info)
    return buf.getvalue()

def special(name, type_, link=""):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = link
    return info

def save(name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)

full = export("full.tar.zst", "--with", "artifacts")
save("valid-artifacts.tar.zst", open(full, "rb").read())
save("valid-results.tar.zst", open(export("res.tar.zst"), "rb").read())
ms = members(full)
save("valid-plain.tar", tar(ms))
save("valid-gzip.tar.gz", tar(ms, mode="w:gz"))
save("valid-keys.tar", tar(members(export("keys.tar.zst", "--keys", "toy/item/0"))))
save("absolute.tar", tar(ms + [("/tmp/evil", b"x")]))
save("dotdot.tar", tar(ms + [("results/../../evil", b"x")]))
save("symlink.tar", tar(ms, [special("results/link", tarfile.SYMTYPE, "/etc/passwd")]))
save("hardlink.tar", tar(ms, [special("results/hard", tarfile.LNKTYPE, "recipe.yaml")]))
save("device.tar", tar(ms, [special("results/dev", tarfile.CHRTYPE)]))
save("fifo.tar", tar(ms, [special("results/fifo", tarfile.FIFOTYPE)]))
save("directory.tar", tar(ms, [special("results/dir", tarfile.DIRTYPE)]))
save("duplicate.tar", tar(ms + [("recipe.yaml", b"name: other\n")]))
save("unknown.tar", tar(ms + [("results/extra.csv", b"a,b\n")]))
tampered = [(n, (b"X" + d[1:]) if n.startswith("results/") else d) for n, d in ms]
save("digest.tar", tar(tampered))
man = json.loads(dict(ms)["manifest.json"])
man["steps"][0]["material"]["params"]["text"] = "zz"
save("key.tar", tar([(n, json.dumps(man).encode() if n == "manifest.json" else d) for n, d in ms]))
save("badjson.tar", tar([(n, b"{\"steps\": [" if n == "manifest.json" else d) for n, d in ms]))
save("gnu.tar", tar(ms, fmt=tarfile.GNU_FORMAT))
save("empty", b"")
save("junk", b"not a bundle\n")
subprocess.run(["rm", "-rf", work], check=True)
