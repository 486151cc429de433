# crosstime on a cluster: the steps of one recipe as Snakemake jobs.
#
#   snakemake --cores 8 --config recipe=recipes/pythia-1b.yaml [crosstime=build/crosstime] \
#             [cache=/local/crosstime-cache] [bundles=bundles] [device=cuda] \
#             [node_cache=/local/scratch/ct] [set='["crosscoder.lr=1e-4"]']
#
# crosstime plans the recipe (`crosstime plan --format json`): one job per step, and one
# rule per step kind, named step_<kind> (so a profile can give each kind its own
# threads and resources: --set-threads step_train=8 --set-resources step_train:mem_mb=64000). Every job
# works in a cache on the node's own disk (LMDB must not sit on a network filesystem):
# it imports the bundles of its inputs, runs its one step (`crosstime run --only`), and
# exports that step as a bundle to the shared directory `bundles/`. Bundle names carry
# the step's key, so a changed recipe reruns exactly the steps whose keys changed. The
# final rule imports every bundle into one cache (`cache=`, else crosstime's default):
# the same entries, keys and results as a plain `crosstime run` of the recipe.
#
# Source files (corpora, checkpoints, task files) are read where the recipe names
# them, so they must be visible from every node (a shared filesystem).
# See docs/cluster.md for SLURM.

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

if "recipe" not in config:
    raise ValueError("crosstime: give the recipe: snakemake --config recipe=recipes/NAME.yaml")

RECIPE = os.path.abspath(config["recipe"])
CT = config.get("crosstime", "crosstime")
if os.sep in CT:
    CT = os.path.abspath(CT)
BUNDLES = config.get("bundles", "bundles")
FINAL_CACHE = config.get("cache", "")
NODE_CACHE = config.get("node_cache", "")
DEVICE = config.get("device", "cpu")
SETS = config.get("set", [])
if isinstance(SETS, str):
    SETS = [SETS]
SET_ARGS = " ".join("--set " + shlex.quote(s) for s in SETS)


def _plan():
    # Planning memoises source digests in a cache: use a throwaway one on local disk.
    scratch = tempfile.mkdtemp(prefix="crosstime-plan-")
    try:
        cmd = [CT, "plan", RECIPE, "--format", "json", "--cache", scratch]
        for s in SETS:
            cmd += ["--set", s]
        res = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if res.returncode != 0:
            raise ValueError("crosstime plan failed:\n" + res.stderr)
        return json.loads(res.stdout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


PLAN = _plan()
STEPS = {s["label"]: s for s in PLAN["steps"] if s["kind"] != "source"}


def _bundle_stem(label):
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_") or "step"
    return "%s-%s" % (safe, STEPS[label]["key"][:16])


STEM = {label: _bundle_stem(label) for label in STEPS}
LABEL_OF_STEM = {stem: label for label, stem in STEM.items()}


def bundle_path(label):
    return os.path.join(BUNDLES, STEM[label] + ".tar.zst")


def input_bundles(wildcards):
    label = LABEL_OF_STEM[wildcards.stem]
    return [bundle_path(d) for d in STEPS[label]["deps"] if d in STEPS]


JOB = r"""
set -euo pipefail
if [ -n {node_cache_q} ]; then
    cache={node_cache_q}; mkdir -p "$cache"
else
    cache=$(mktemp -d "${{TMPDIR:-/tmp}}/crosstime-job.XXXXXX")
    trap 'rm -rf "$cache"' EXIT
fi
for b in {inputs}; do
    {ct} bundle import "$b" --cache "$cache"
done
export OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads}
{ct} run {recipe} --only {label} --cache "$cache" --device {device} -q {sets}
{ct} bundle export {recipe} --keys {label} -o {output} --cache "$cache" {sets}
"""


def job_command(wildcards, input, output, threads):
    label = LABEL_OF_STEM[wildcards.stem]
    return JOB.format(node_cache_q=shlex.quote(NODE_CACHE), inputs=" ".join(shlex.quote(i) for i in input),
                      ct=shlex.quote(CT), recipe=shlex.quote(RECIPE), label=shlex.quote(label),
                      device=shlex.quote(DEVICE), threads=int(threads), sets=SET_ARGS,
                      output=shlex.quote(str(output[0])))


FINAL_TARGET = os.path.join(BUNDLES, "%s.imported" % re.sub(r"[^A-Za-z0-9.-]+", "_", PLAN["recipe"]))

localrules: all


rule all:
    input:
        [bundle_path(label) for label in STEPS],
    output:
        FINAL_TARGET,
    params:
        cache=("--cache " + shlex.quote(FINAL_CACHE)) if FINAL_CACHE else "",
        ct=shlex.quote(CT),
    shell:
        "set -euo pipefail; for b in {input}; do {params.ct} bundle import \"$b\" {params.cache}; done; "
        "printf '%s\\n' {input} > {output}"


for _kind in sorted({s["kind"] for s in STEPS.values()}):
    _stems = sorted(STEM[label] for label, s in STEPS.items() if s["kind"] == _kind)

    rule:
        name:
            "step_" + _kind
        input:
            input_bundles,
        output:
            os.path.join(BUNDLES, "{stem}.tar.zst"),
        wildcard_constraints:
            stem="|".join(re.escape(s) for s in _stems),
        threads: 1
        params:
            cmd=job_command,
        shell:
            "{params.cmd}"
