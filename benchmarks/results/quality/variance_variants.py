"""Tables of variance_variants.md: variants of ``ours`` beside the default, paired against random.

Reads the per-run records under ``benchmarks/results/quality/<dataset>_<family>/`` (written by
``benchmarks/bench_quality.py``) and prints, per (family, dataset), each strategy's AUC − random
(mean ± sample std over seeds, worst seed) and its gap to the best peer (modal-ubs, badge,
coreset, bald: the peers of the matrix's summary table). Writes nothing.

    python benchmarks/results/quality/variance_variants.py "ours" "ours:variance_temperature=1,alpha=0.01" ...
    python benchmarks/results/quality/variance_variants.py --section1 [variant]   # section 1's tables
    python benchmarks/results/quality/variance_variants.py --paired BASE VARIANT  # per-cell pairs
    python benchmarks/results/quality/variance_variants.py --root benchmarks/results/quality_fresh ...
    python benchmarks/results/quality/variance_variants.py ours leaves-default   # see ALIASES

``--root DIR`` (first) reads the records under ``DIR`` instead (the fresh seeds 5-9 of
``quality_fresh``; ``DIR1,DIR2`` pools both, seeds 0-9); a cell counts when a strategy has
every seed that random has there.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
from benchmarks.harness.records import read_records  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("rf", "et", "bagging", "committee-sk", "mc-dropout", "vlinear")
DATASETS = ("digits", "mnist", "mnist1d")
PEERS = ("modal-ubs", "badge", "coreset", "bald")


def _aucs(root, kind):
    """AUC (in points) of every ``<root>/*/*_seed*.json`` record by (dataset, ``kind``,
    strategy, seed); ``kind`` is the matrix's "family" or section 1's "model"."""
    runs = {}
    for path, r in read_records(root).items():
        if path.count("/") != 1:
            continue
        c = r["config"]
        runs[(c["dataset"], c[kind], c["strategy"], c["seed"])] = r["auc"] * 100
    return runs


ROOT = HERE


def load():
    runs = {}
    for root in ROOT.split(","):
        runs.update(_aucs(root, "family"))
    return runs


def _seeds(runs, d, f):
    return sorted(sd for dd, ff, s, sd in runs if (dd, ff, s) == (d, f, "random"))


#: ``leaves-default``: the default before near-chance trees got their inputs (issue 14): the
#: explicit leaf embedding for the tree families, ``ours`` for the others
ALIASES = {"leaves-default": {"rf": "ours:embedding=leaf-gradient",
                              "et": "ours:embedding=leaf-gradient",
                              "bagging": "ours:embedding=leaf-gradient"}}


def diffs(runs, d, f, s):
    s = ALIASES.get(s, {}).get(f, "ours") if s in ALIASES else s
    out = [runs[(d, f, s, sd)] - runs[(d, f, "random", sd)] for sd in _seeds(runs, d, f)
           if (d, f, s, sd) in runs]
    return np.array(out)


def _complete(runs, d, f, s):
    n = len(_seeds(runs, d, f))
    return n > 1 and len(diffs(runs, d, f, s)) == n


def best_peer(runs, d, f):
    cands = [(diffs(runs, d, f, p).mean(), p) for p in PEERS if _complete(runs, d, f, p)]
    return max(cands) if cands else (None, None)


def main(strategies):
    runs = load()
    head = "| family | dataset | best peer | " + " | ".join(f"`{s}`" for s in strategies) + " |"
    print(head)
    print("|---|---|---|" + "---|" * len(strategies))
    totals = {s: [] for s in strategies}
    gaps = {s: [] for s in strategies}
    for f in FAMILIES:
        for d in DATASETS:
            bp, name = best_peer(runs, d, f)
            if bp is None:
                continue
            cells = []
            for s in strategies:
                x = diffs(runs, d, f, s)
                if not _complete(runs, d, f, s):
                    cells.append(f"({len(x)} seeds)")
                    continue
                totals[s].append(x.mean())
                gaps[s].append(x.mean() - bp)
                cells.append(f"{x.mean():+.2f} ± {x.std(ddof=1):.2f} (worst {x.min():+.2f}; "
                             f"gap {x.mean() - bp:+.2f})")
            print(f"| {f} | {d} | {name}: {bp:+.2f} | " + " | ".join(cells) + " |")
    print()
    print("| strategy | cells | mean AUC − random | mean gap to best peer | cells gap < −1 | "
          "worst gap | cells with a seed below random |")
    print("|---|---|---|---|---|---|---|")
    for s in strategies:
        if not totals[s]:
            continue
        below = sum(diffs(runs, d, f, s).min() < 0 for f in FAMILIES for d in DATASETS
                    if _complete(runs, d, f, s) and best_peer(runs, d, f)[0] is not None)
        g = np.array(gaps[s])
        print(f"| `{s}` | {len(g)} | {np.mean(totals[s]):+.2f} | {g.mean():+.2f} | "
              f"{int((g < -1).sum())} | {g.min():+.2f} | {below} |")




def section1(out=os.path.join(HERE, "s1_variance"), variant="alpha_reliability=held-out"):
    """Section 1's tables (benchmarks.harness runs under ``out``): each solver at its
    defaults and with ``variant``, paired over seeds against the default and random."""
    runs = _aucs(out, "model")
    cells = sorted({(d, m) for d, m, _, _ in runs})
    print("| table | solver | seeds | default AUC | default − random | variant − random | "
          "variant − default (paired) | worst seed |")
    print("|---|---|---|---|---|---|---|---|")
    for d, m in cells:
        for sv in ("ours-greedy", "ours-iht"):
            var = f"{sv}:{variant}"
            seeds = sorted(sd for dd, mm, s, sd in runs if (dd, mm, s) == (d, m, var)
                           and (d, m, sv, sd) in runs and (d, m, "random", sd) in runs)
            if not seeds:
                continue
            base = np.array([runs[(d, m, sv, sd)] for sd in seeds])
            new = np.array([runs[(d, m, var, sd)] for sd in seeds])
            rnd = np.array([runs[(d, m, "random", sd)] for sd in seeds])
            x = new - base
            print(f"| {d} {m} | {sv} | {len(seeds)} | {base.mean():.2f} | "
                  f"{(base - rnd).mean():+.2f} ± {(base - rnd).std(ddof=1):.2f} | "
                  f"{(new - rnd).mean():+.2f} ± {(new - rnd).std(ddof=1):.2f} | "
                  f"{x.mean():+.2f} ± {x.std(ddof=1):.2f} | {x.min():+.2f} |")


def paired(base, variant):
    """Per cell: ``variant`` − ``base`` paired over the 5 seeds (mean ± std, worst seed)."""
    runs = load()
    print(f"| family | dataset | `{variant}` − `{base}` (paired over seeds) | worst seed |")
    print("|---|---|---|---|")
    ahead = 0
    for f in FAMILIES:
        for d in DATASETS:
            seeds = _seeds(runs, d, f)
            v, b = (ALIASES.get(s, {}).get(f, "ours") if s in ALIASES else s
                    for s in (variant, base))
            x = np.array([runs[(d, f, v, sd)] - runs[(d, f, b, sd)] for sd in seeds
                          if (d, f, v, sd) in runs and (d, f, b, sd) in runs])
            if len(seeds) < 2 or len(x) < len(seeds):
                continue
            ahead += x.mean() > 0
            print(f"| {f} | {d} | {x.mean():+.2f} ± {x.std(ddof=1):.2f} | {x.min():+.2f} |")
    print(f"\nahead in {ahead} cells")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--root"]:
        ROOT = ",".join(os.path.abspath(r) for r in sys.argv[2].split(","))
        del sys.argv[1:3]
    if sys.argv[1:2] == ["--paired"]:
        paired(*sys.argv[2:4])
    elif sys.argv[1:2] == ["--section1"]:
        section1(**({"variant": sys.argv[2]} if len(sys.argv) > 2 else {}))
    else:
        main(sys.argv[1:] or ["ours"])
