"""Tables and learning-curve plots from the stored run JSONs.

:func:`build_report` reads every ``*.json`` run record under a directory, groups them by
(dataset, model) and writes, next to them:

- ``summary.csv``: one row per (dataset, model, strategy) with AUC, final accuracy and
  acquisition time (mean and std over seeds);
- ``report.md``: the same as Markdown tables, best AUC first, with links to the figures;
- ``curves_<dataset>_<model>.png``: learning curves, mean ± std bands over seeds.
"""
from __future__ import annotations

import csv
import os
from collections import defaultdict

import numpy as np

from .metrics import mean_std
from .records import read_records

__all__ = ["load_records", "summarise", "summary_table", "build_report", "plot_curves"]


def load_records(root: str) -> list[dict]:
    """Every run record (with ``config`` and ``accuracy``) under ``root``: its compact store
    ``records.jsonl`` and any raw ``*_seed*.json`` (:func:`~.records.read_records`)."""
    return [rec for rec in read_records(root).values() if "accuracy" in rec]


def summarise(records, reference: str = "random") -> dict:
    """``{(dataset, model): {strategy: row}}`` with AUC / final accuracy / time statistics.

    ``paired_mean`` / ``paired_std``: AUC minus the ``reference`` strategy's AUC on the same
    seed (same split and seed set), over the seeds both have; NaN without a reference.
    """
    groups = defaultdict(lambda: defaultdict(list))
    for rec in records:
        c = rec["config"]
        groups[(c["dataset"], c["model"])][c["strategy"]].append(rec)
    out = {}
    for key, by_strategy in sorted(groups.items()):
        rows = {}
        for strategy, recs in by_strategy.items():
            auc_m, auc_s = mean_std([r["auc"] for r in recs])
            fin_m, fin_s = mean_std([r["final_accuracy"] for r in recs])
            qt = [t for r in recs for t in r["query_time"]]
            rows[strategy] = {
                "strategy": strategy, "n_seeds": len(recs),
                "seeds": sorted(r["config"]["seed"] for r in recs),
                "auc_mean": auc_m, "auc_std": auc_s,
                "final_mean": fin_m, "final_std": fin_s,
                "query_time_mean": float(np.mean(qt)) if qt else float("nan"),
                "labels": recs[0]["labels"],
                "config": {k: v for k, v in recs[0]["config"].items()
                           if k not in ("strategy", "seed")},
            }
        ref = {r["config"]["seed"]: r["auc"] for r in by_strategy.get(reference, [])}
        for strategy, recs in by_strategy.items():
            diffs = [r["auc"] - ref[r["config"]["seed"]]
                     for r in recs if r["config"]["seed"] in ref]
            m, s = mean_std(diffs) if diffs and strategy != reference else (float("nan"), 0.0)
            rows[strategy].update(paired_mean=m, paired_std=s)
        out[key] = dict(sorted(rows.items(), key=lambda kv: -kv[1]["auc_mean"]))
    return out


def plot_curves(records, path: str, title: str = "") -> str:
    """Learning curves (mean ± std over seeds) of the records' strategies, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    by_strategy = defaultdict(list)
    for rec in records:
        by_strategy[rec["config"]["strategy"]].append(rec)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        order = sorted(by_strategy, key=lambda s: -np.mean([r["auc"] for r in by_strategy[s]]))
        for strategy in order:
            recs = by_strategy[strategy]
            n = min(len(r["accuracy"]) for r in recs)
            x = np.asarray(recs[0]["labels"][:n])
            acc = np.asarray([r["accuracy"][:n] for r in recs]) * 100
            m, s = acc.mean(0), acc.std(0, ddof=1) if len(recs) > 1 else np.zeros(n)
            style = "-" if strategy.startswith("ours") else "--"
            (line,) = ax.plot(x, m, style, lw=2 if strategy.startswith("ours") else 1.3,
                              label=f"{strategy} ({len(recs)})")
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("number of labels")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def _fmt(m, s, scale=100.0):
    return f"{m * scale:.2f} ± {s * scale:.2f}"


def summary_table(rows: dict) -> list[str]:
    """The markdown table (one line per strategy) of one (dataset, model) group of
    :func:`summarise`: AUC, paired AUC difference to random, final accuracy, s / query."""
    lines = ["| strategy | seeds | AUC (%) | AUC − random, paired (%) | final accuracy (%) "
             "| s / query |", "|---|---|---|---|---|---|"]
    for r in rows.values():
        paired = ("–" if np.isnan(r["paired_mean"])
                  else f"{r['paired_mean'] * 100:+.2f} ± {r['paired_std'] * 100:.2f}")
        lines.append(f"| {r['strategy']} | {r['n_seeds']} "
                     f"| {_fmt(r['auc_mean'], r['auc_std'])} "
                     f"| {paired} | {_fmt(r['final_mean'], r['final_std'])} "
                     f"| {r['query_time_mean']:.3f} |")
    return lines


def build_report(root: str, *, plots: bool = True, title: str | None = None) -> dict:
    """Write ``summary.csv``, ``report.md`` and one PNG per (dataset, model) under ``root``.

    Returns
    -------
    dict
        ``{"summary": summarise(...), "files": [written paths]}``.
    """
    records = load_records(root)
    if not records:
        raise FileNotFoundError(f"no run records (*.json) under {root!r}; run the benchmark first.")
    summary = summarise(records)
    files = []
    csv_path = os.path.join(root, "summary.csv")
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "model", "strategy", "n_seeds", "auc_mean", "auc_std",
                    "auc_minus_random_paired_mean", "auc_minus_random_paired_std",
                    "final_mean", "final_std", "query_time_mean_s"])
        for (ds, model), rows in summary.items():
            for r in rows.values():
                w.writerow([ds, model, r["strategy"], r["n_seeds"], f"{r['auc_mean']:.5f}",
                            f"{r['auc_std']:.5f}", f"{r['paired_mean']:.5f}",
                            f"{r['paired_std']:.5f}", f"{r['final_mean']:.5f}",
                            f"{r['final_std']:.5f}", f"{r['query_time_mean']:.5f}"])
    files.append(csv_path)
    lines = [f"# {title}" if title else "# Active-learning benchmark", ""]
    for (ds, model), rows in summary.items():
        cfg = next(iter(rows.values()))["config"]
        lines += [f"## {ds} / {model}", "",
                  f"seed set {cfg['seed_size']}, {cfg['rounds']} rounds of {cfg['batch']}, "
                  f"epochs {cfg['epochs'] if cfg['epochs'] is not None else 'default'}"
                  + (f", pool capped at {cfg['max_pool']}" if cfg.get("max_pool") else ""), "",
                  ] + summary_table(rows)
        if plots:
            group = [rec for rec in records
                     if (rec["config"]["dataset"], rec["config"]["model"]) == (ds, model)]
            png = os.path.join(root, f"curves_{ds}_{model}.png")
            plot_curves(group, png, title=f"{ds} / {model}")
            files.append(png)
            lines += ["", f"![{ds} / {model}]({os.path.basename(png)})"]
        lines.append("")
    md_path = os.path.join(root, "report.md")
    with open(md_path, "w") as fh:
        fh.write("\n".join(lines))
    files.append(md_path)
    return {"summary": summary, "files": files}
