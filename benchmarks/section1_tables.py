"""Write the learning-curve tables of section 1 (benchmarks/results/benchmark.md) from the records.

Every table sits between ``<!-- s1:NAME -->`` and ``<!-- /s1:NAME -->`` in benchmark.md and is
rebuilt from the run records under ``benchmarks/results/s1`` (main tables) and
``benchmarks/results/s1_ablation`` with the harness's own summary (mean ± std over seeds, AUC
paired against random on the same seed). ``s1:alpha`` pairs the default with the earlier default (``alpha_reliability=None``) and with
``alpha=0.03`` there, and each with random, on the same seeds.
``s1:compute`` gets the measured compute: the sum of
the records' ``wall_time`` per table. Part of ``benchmarks/section1.sh``; run alone with

    python benchmarks/section1_tables.py
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.records import same_batches  # noqa: E402
from benchmarks.harness.report import load_records, summarise, summary_table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PAGE = RESULTS / "benchmark.md"

#: marker -> (folder, dataset, model); every strategy stored there is shown, best AUC first
TABLES = {
    "digits_logreg": ("s1", "digits", "logreg"),
    "digits_mlp": ("s1", "digits", "mlp"),
    "mnist1d_mlp": ("s1", "mnist1d", "mlp"),
    "mnist_lenet": ("s1", "mnist", "lenet-adam"),
    "digits_bayes": ("s1", "digits", "mlp-dropout"),
    "ablation_logreg": ("s1_ablation", "digits", "logreg"),
    "ablation_mlp": ("s1_ablation", "digits", "mlp"),
}


def _paired(a, b):
    """AUC(a) - AUC(b) per shared seed (points), and how many seeds chose identical batches."""
    ra = {r["config"]["seed"]: r for r in a}
    rb = {r["config"]["seed"]: r for r in b}
    seeds = sorted(set(ra) & set(rb))
    d = np.array([ra[s]["auc"] - rb[s]["auc"] for s in seeds]) * 100
    same = sum(same_batches(ra[s], rb[s]) for s in seeds)
    std = d.std(ddof=1) if len(d) > 1 else 0.0
    return f"{d.mean():+.2f} ± {std:.2f} ({sum(d < 0)} of {len(seeds)} below; {same} identical)"


def _strategy_records(by_folder, name):
    """``(dataset, model, get)`` of table ``name``: ``get(spec)`` is its records of one strategy."""
    folder, ds, model = TABLES[name]
    recs = [r for r in by_folder[folder]
            if (r["config"]["dataset"], r["config"]["model"]) == (ds, model)]
    return ds, model, lambda spec: [r for r in recs if r["config"]["strategy"] == spec]


def _starts(by_folder) -> str:
    """IHT's starts paired on the same seeds: always both, and the zero start, minus the
    default (``init="fallback"``)."""
    out = ["| table | ours-iht (default, fallback) AUC | always both − default | "
           "zero start only − default |", "|---|---|---|---|"]
    for name in ("digits_logreg", "digits_mlp", "mnist1d_mlp", "mnist_lenet"):
        ds, model, get = _strategy_records(by_folder, name)
        default, both, zero = (get("ours-iht"), get("ours-iht:iht_init=both"),
                               get("ours-iht:iht_init=zero"))
        if not (default and both and zero):
            continue
        auc = np.array([r["auc"] for r in default]) * 100
        out.append(f"| {ds} + {model} ({len(default)} seeds) | {auc.mean():.2f} "
                   f"| {_paired(both, default)} | {_paired(zero, default)} |")
    return "\n".join(out)


#: the variants of ``s1:alpha``, each beside the default on the same seeds: the default before
#: ``alpha_reliability="auto"`` (issue 14), and ``alpha=0.03`` at that earlier default
ALPHA_VARIANTS = ("alpha_reliability=None", "alpha=0.03,alpha_reliability=None")


def _auc(records) -> float:
    return np.mean([r["auc"] for r in records]) * 100


def _alpha(by_folder) -> str:
    """Each variant of :data:`ALPHA_VARIANTS` of each solver against today's default
    (``alpha=0.1``, ``alpha_reliability="auto"``) and random, paired on the same seeds."""
    out = ["| table | solver | default AUC | variant | variant AUC | variant − random, paired | "
           "default − variant, paired |", "|---|---|---|---|---|---|---|"]
    for name in ("digits_logreg", "digits_mlp", "mnist1d_mlp", "mnist_lenet"):
        ds, model, get = _strategy_records(by_folder, name)
        for solver in ("ours-greedy", "ours-iht"):
            default, rand = get(solver), get("random")
            for v in ALPHA_VARIANTS:
                variant = get(f"{solver}:{v}")
                if not (default and variant and rand):
                    continue
                out.append(f"| {ds} + {model} ({len(variant)} seeds) | {solver} "
                           f"| {_auc(default):.2f} | `{v}` | {_auc(variant):.2f} "
                           f"| {_paired(variant, rand)} | {_paired(default, variant)} |")
    return "\n".join(out)


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- s1:{name} -->\n).*?(<!-- /s1:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"benchmark.md has no <!-- s1:{name} --> ... <!-- /s1:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    text = PAGE.read_text()
    by_folder = {f: load_records(str(RESULTS / f)) for f in {t[0] for t in TABLES.values()}}
    compute = ["| table | records | compute (sum of `wall_time`, CPU-min at 1 thread) |",
               "|---|---|---|"]
    total_s, total_n = 0.0, 0
    for name, (folder, ds, model) in TABLES.items():
        recs = [r for r in by_folder[folder]
                if (r["config"]["dataset"], r["config"]["model"]) == (ds, model)]
        if not recs:
            body = "*(no records yet: run `bash benchmarks/section1.sh`)*"
        else:
            body = "\n".join(summary_table(summarise(recs)[(ds, model)]))
        text = _replace(text, name, body)
        wall = sum(r.get("wall_time", 0.0) for r in recs)
        total_s, total_n = total_s + wall, total_n + len(recs)
        compute.append(f"| {folder}/{ds}_{model} | {len(recs)} | {wall / 60:.1f} |")
    compute.append(f"| **all** | {total_n} | **{total_s / 60:.1f}** |")
    text = _replace(text, "compute", "\n".join(compute))
    text = _replace(text, "iht_starts", _starts(by_folder))
    text = _replace(text, "alpha", _alpha(by_folder))
    PAGE.write_text(text)
    print(f"wrote {PAGE} ({total_n} records, {total_s / 60:.1f} min of compute)")


if __name__ == "__main__":
    main()
