"""The default sampler on the quality matrix, both seed sets, read from the stored runs.

``SparseApproxSampler()`` with ``alpha_reliability="auto"`` refits no model: a bootstrap
forest or bagging ensemble gets ``kappa`` from its out-of-bag predictions, every other family
of the matrix keeps ``alpha`` as given, which is what the matrix's
``ours:alpha_reliability=None`` runs did (gradient boosting, which ``embedding="auto"``
refuses, is its ``ours:embedding=leaf-gradient,alpha_reliability=None`` run). So the current
default's AUC per (family, dataset, seed) is read from those stores without a rerun:

- seeds 0-4: ``benchmarks/results/quality/records.jsonl``; seeds 5-9:
  ``benchmarks/results/quality_fresh/records.jsonl``;
- rf and bagging: the out-of-bag runs' summaries (``quality/out_of_bag/seeds*.json``);
- cells without such a run (committee-skorch on seeds 5-9) and a check cell (extra trees on
  MNIST-1D, seeds 5-9, whose test accuracies must equal the ``alpha_reliability=None`` run's,
  round for round) are run at the current code into ``benchmarks/results/quality_default/``::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_quality.py \\
        --out /tmp/qd --seeds 5 6 7 8 9 --families et --datasets mnist1d --strategies random ours
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_quality.py --out /tmp/qd \\
        --seeds 5 6 7 8 9 --families committee-skorch --datasets digits mnist1d mnist \\
        --strategies random ours
    python benchmarks/compact_results.py /tmp/qd && cp /tmp/qd/records.jsonl \\
        benchmarks/results/quality_default/records.jsonl
    python benchmarks/quality_default.py      # writes benchmarks/results/quality_default.md

Each cell is paired by seed against random sampling of the same store (same split, same seed
labels), against the previous default (``ours``: ``alpha`` times a 3-fold cross-validated
``kappa``, three refits per query) and against the best peer of the cell (modAL's
``uncertainty_batch_sampling``, BADGE, Bayesian Coreset, BALD, whichever ran; for rf, et,
bagging, mc-dropout and vlinear also scikit-activeml's Clue, TypiClust, Falcun, MaxHerding and
Badge, stored in ``benchmarks/results/quality_peers/``)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_quality.py --out /tmp/qp \
        --seeds 0 1 2 3 4 5 6 7 8 9 --families rf et bagging mc-dropout vlinear \
        --datasets digits mnist1d mnist --strategies clue typiclust falcun maxherding badge-skal
    python benchmarks/compact_results.py /tmp/qp && cp /tmp/qp/records.jsonl \
        benchmarks/results/quality_peers/records.jsonl
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
STORES = {"0-4": os.path.join(RESULTS, "quality"), "5-9": os.path.join(RESULTS, "quality_fresh")}
NEW = os.path.join(RESULTS, "quality_default")
OOB = {"0-4": os.path.join(RESULTS, "quality", "out_of_bag", "seeds0-4.json"),
       "5-9": os.path.join(RESULTS, "quality", "out_of_bag", "seeds5-9.json")}
FAMILIES = ["rf", "et", "gb", "bagging", "committee-sk", "committee-skorch", "mc-dropout",
            "vlinear"]
DATASETS = ["digits", "mnist1d", "mnist"]
PEERS = ("modal-ubs", "badge", "coreset", "bald")
#: scikit-activeml 1.0.1's strategies, run on the single-model families (rf, et, bagging and
#: the MC-dropout and variational skorch nets)
SKAL = ("clue", "typiclust", "falcun", "maxherding", "badge-skal")
SKAL_STORE = os.path.join(RESULTS, "quality_peers")
PREV = "alpha_reliability=None"


def _records(folder):
    """(dataset, family, strategy) -> {seed: record} of a compact store."""
    out = {}
    path = os.path.join(folder, "records.jsonl")
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                r = json.loads(line)
                c = r["config"]
                out.setdefault((c["dataset"], c["family"], c["strategy"]), {})[c["seed"]] = r
    return out


def _default_name(family):
    """The stored strategy whose runs are today's default for ``family``."""
    return f"ours:embedding=leaf-gradient,{PREV}" if family == "gb" else f"ours:{PREV}"


def _paired(a, b):
    """Mean, std and worst of ``a - b`` over their shared seeds (AUC points)."""
    seeds = sorted(set(a) & set(b))
    d = np.array([100 * (a[s]["auc"] - b[s]["auc"]) for s in seeds])
    return float(d.mean()), float(d.std()), float(d.min()), len(seeds)


def _fmt(m, s, w):
    if s is None:       # a summary without per-seed records: the difference of the means
        return f"{m:+.2f} (of the means)"
    return f"{m:+.2f} ± {s:.2f} ({w:+.2f})"


def check():
    """The check cell: today's default gives the ``alpha_reliability=None`` run's curves."""
    new, old = _records(NEW), _records(STORES["5-9"])
    out = []
    for (ds, fam, st), runs in sorted(new.items()):
        if st != "ours" or (ds, fam, _default_name(fam)) not in old:
            continue
        ref = old[(ds, fam, _default_name(fam))]
        same = [s for s in runs if s in ref and runs[s]["accuracy"] == ref[s]["accuracy"]]
        out.append(f"Check: {fam} / {ds}, seeds 5-9, run at the current code: {len(same)} of "
                   f"{len(runs)} seeds give `ours:{PREV}`'s test accuracy in every round.")
    return out


def rows():
    new, skal = _records(NEW), _records(SKAL_STORE)
    table = []
    for seeds, folder in STORES.items():
        recs = _records(folder)
        span = range(0, 5) if seeds == "0-4" else range(5, 10)
        for key, runs in skal.items():  # the peers' runs of this seed set, beside the matrix's
            runs = {s: r for s, r in runs.items() if s in span}
            if runs:
                recs[key] = runs
        oob = {(r["dataset"], r["family"], r["strategy"]): r
               for r in json.load(open(OOB[seeds]))}
        for fam in FAMILIES:
            for ds in DATASETS:
                rand = recs.get((ds, fam, "random"))
                if not rand:
                    continue
                row = {"family": fam, "dataset": ds, "seeds": seeds,
                       "random": 100 * np.mean([r["auc"] for r in rand.values()])}
                if fam in ("rf", "bagging"):       # out-of-bag kappa: the summary of its run
                    o = oob[(ds, fam, "ours")]
                    row["default"] = o["auc"]
                    row["vs_random"] = (o["diff_random"], o["diff_std"], o["diff_min"],
                                        o["seeds"])
                    row["source"] = "out-of-bag run"
                    cur = None
                else:
                    cur = recs.get((ds, fam, _default_name(fam)))
                    row["source"] = f"`{_default_name(fam)}`"
                    if not cur and seeds == "5-9":
                        cur = new.get((ds, fam, "ours"))
                        row["source"] = "run at the current code"
                    if not cur:
                        continue
                    row["default"] = 100 * np.mean([r["auc"] for r in cur.values()])
                    row["vs_random"] = _paired(cur, rand)
                prev = recs.get((ds, fam, "ours" if fam != "gb"
                                 else "ours:embedding=leaf-gradient"))
                row["vs_prev"] = _paired(cur, prev) if (cur and prev) else None
                if cur is None and prev:
                    row["vs_prev"] = (row["default"] - 100 * np.mean(
                        [r["auc"] for r in prev.values()]), None, None, len(prev))
                peers = {p: recs[(ds, fam, p)] for p in PEERS + SKAL if (ds, fam, p) in recs}
                if peers:
                    best = max(peers, key=lambda p: np.mean([r["auc"] for r in
                                                             peers[p].values()]))
                    row["best"] = best
                    row["best_auc"] = 100 * np.mean([r["auc"] for r in peers[best].values()])
                table.append(row)
    return table


def render(table):
    lines = [
        "# The default sampler on the quality matrix, both seed sets",
        "",
        "`python benchmarks/quality_default.py` (how each cell is read: its docstring). AUC = "
        "mean test accuracy over the rounds (%), 30 seed labels + 6 rounds of 30, in the modAL "
        "loop; paired differences are mean ± std (worst seed) over the 5 seeds of the set. "
        "The default: `SparseApproxSampler()`, whose `alpha_reliability=\"auto\"` refits no "
        "model. The previous default multiplied `alpha` by a 3-fold cross-validated `kappa` "
        "(three refits of the model per query).",
        "",
    ]
    lines += check() + [""]
    for seeds, label in (("0-4", "Seeds 0-4 (every rule of the matrix was chosen on these)"),
                         ("5-9", "Seeds 5-9 (run after the choices)")):
        sel = [r for r in table if r["seeds"] == seeds]
        lines += [f"## {label}", "",
                  "| family | dataset | random | default | default − random | default − "
                  "previous default | best peer | default − best peer | default read from |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in sel:
            prev = _fmt(*r["vs_prev"][:3]) if r["vs_prev"] else "–"
            best = (f"{r['best']} {r['best_auc']:.2f}" if "best" in r else "–")
            gap = f"{r['default'] - r['best_auc']:+.2f}" if "best" in r else "–"
            lines.append(f"| {r['family']} | {r['dataset']} | {r['random']:.2f} | "
                         f"{r['default']:.2f} | {_fmt(*r['vs_random'][:3])} | {prev} | {best} | "
                         f"{gap} | {r['source']} |")
        d_rand = [r["vs_random"][0] for r in sel]
        d_best = [r["default"] - r["best_auc"] for r in sel if "best" in r]
        d_prev = [r["vs_prev"][0] for r in sel if r["vs_prev"]]
        below = [f"{r['family']} / {r['dataset']}" for r in sel if r["vs_random"][0] < 0]
        lines += ["", f"Over {len(sel)} cells: default − random {np.mean(d_rand):+.2f} on "
                  f"average ({len(below)} below random on average: "
                  f"{', '.join(below) or 'none'}); default − best peer {np.mean(d_best):+.2f} "
                  f"(worst {min(d_best):+.2f}); default − previous default "
                  f"{np.mean(d_prev):+.2f} over the {len(d_prev)} cells where both ran.", ""]
    return "\n".join(lines)


def main():
    text = render(rows())
    with open(os.path.join(RESULTS, "quality_default.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
