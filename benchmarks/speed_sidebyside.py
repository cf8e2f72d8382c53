"""The speed targets side by side at the current code: the default and IHT against BADGE.

Renders ``benchmarks/results/speed_sidebyside.md`` from ``speed_sidebyside.json``, which holds
the raw output of these four runs (each a ``fit_query`` through the sampler, 1 thread)::

    OMP_NUM_THREADS=1 python benchmarks/bench_speed.py acq --paired --pools 10000 100000 \\
        --batches 100 1000 --methods default badge --repeats 5 --out /tmp/sp --tag _paired_now
    OMP_NUM_THREADS=1 python benchmarks/bench_speed.py acq --paired --pools 10000 \\
        --batches 100 --methods default badge --repeats 11 --out /tmp/sp --tag _paired_10k100_now
    OMP_NUM_THREADS=1 python benchmarks/bench_speed.py acq --d 512 --pools 100000 \\
        --batches 1000 --methods default iht badge --repeats 1 --out /tmp/sp --tag _d512_now
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/bench_al.py acq --pools 20000 \\
        --batches 500 --methods ours-iht badge --dim 128 --repeats 1 --out /tmp/sp/skal

then ``python benchmarks/speed_sidebyside.py --collect /tmp/sp`` (writes the JSON and the page)
or ``python benchmarks/speed_sidebyside.py`` (the page from the stored JSON).
"""
from __future__ import annotations

import json
import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
STORE = os.path.join(RESULTS, "speed_sidebyside.json")
RUNS = {"paired_10k_100k": "speed_acq_paired_now.json",
        "paired_10k_b100_11": "speed_acq_paired_10k100_now.json",
        "d512_100k": "speed_acq_d512_now.json",
        "skactiveml_20k": os.path.join("skal", "acq_scaling.json")}


def _load(meta):
    return ", ".join(f"{x:.1f}" for x in meta["load_start"][:1] + meta["load_end"][:1])


def render(runs):
    a, a11, big, skal = (runs[k] for k in RUNS)
    lines = ["# Speed targets side by side, at the current code", "",
             "`python benchmarks/speed_sidebyside.py` (the runs: its docstring). Every call is "
             "`SparseApproxSampler.fit_query` (or the baseline's) on a torch `nn.Linear` head over "
             "Gaussian-mixture features, 1 thread, on the shared 2-core machine; "
             f"library `{a['meta']['sparse_query']['commit']}`.", "",
             "## The default against BADGE, paired", "",
             "x BADGE: the median of the per-repeat ratios of wall time (min-max); the "
             "repeats alternate the two methods.", "",
             "| n | b | repeats | default s | BADGE s | x BADGE | solver | load (start, end) |",
             "|---:|---:|---:|---:|---:|---|---|---|"]
    for run in (a, a11):
        rows = run["rows"]
        for r in rows:
            if r["method"] != "default":
                continue
            bad = next(x for x in rows if x["method"] == "badge"
                       and (x["n"], x["b"]) == (r["n"], r["b"]))
            lines.append(f"| {r['n']:,} | {r['b']:,} | {r['runs']} | {r['seconds']:.3f} | "
                         f"{bad['seconds']:.3f} | {r['x_badge']:.2f} ({r['x_badge_min']:.2f}-"
                         f"{r['x_badge_max']:.2f}) | {r['solver']} | {_load(run['meta'])} |")
    rows = {r["method"]: r for r in big["rows"]}
    b = rows["badge"]["seconds"]
    lines += ["", "## n = 100,000, d = 512, b = 1,000 (one call each)", "",
              "| method | s | BADGE / method | peak +MB |", "|---|---:|---:|---:|"]
    for m in ("default", "iht", "badge"):
        r = rows[m]
        lines.append(f"| {m} | {r['seconds']:.2f} | {b / r['seconds']:.1f} | "
                     f"{r['peak_mb']:.0f} |")
    rows = {r["method"]: r for r in skal["rows"]}
    lines += ["", "## scikit-activeml 1.0.1 `Badge`, n = 20,000, b = 500, d = 128 (one call each)",
              "", "| method | s | / `SparseApproxSampler(solver=\"iht\")` |", "|---|---:|---:|"]
    for m in ("ours-iht", "badge", "skactiveml-badge", "skactiveml-coreset"):
        r = rows[m]
        lines.append(f"| {m} | {r['seconds']:.3f} | {r['seconds'] / rows['ours-iht']['seconds']:.1f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--collect"]:
        runs = {k: json.load(open(os.path.join(argv[1], v))) for k, v in RUNS.items()}
        with open(STORE, "w") as fh:
            json.dump(runs, fh, indent=1)
    with open(STORE) as fh:
        text = render(json.load(fh))
    with open(os.path.join(RESULTS, "speed_sidebyside.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
