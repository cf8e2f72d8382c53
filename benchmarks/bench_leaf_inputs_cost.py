"""Issue 14, cost of ``embedding="leaf-input-gradient"``: time and peak memory through the call a
user makes, beside the leaf-only embedding and modAL's ``uncertainty_batch_sampling``.

A ``RandomForestClassifier(50)`` fitted on 90 points with labels independent of the inputs (so
its held-out ``kappa`` is near 0 and ``embedding="auto"`` adds the inputs) queries a batch from
a Gaussian pool of ``n`` rows and ``d`` columns. Rows per (n, d, b):

- ``auto`` -- ``SparseApproxSampler()`` at its defaults through ``fit_query`` (the held-out
  fits for ``kappa``, the leaves, the inputs, the solve), the sampler's solve time beside it;
- ``leaf-gradient`` -- the leaves alone (``embedding="leaf-gradient"``), same defaults;
- ``modal-ubs`` -- modAL's ``uncertainty_batch_sampling`` through ``ActiveLearner.query``.

Every call pays its own held-out fits (the ``kappa`` cache is cleared). Peak memory is the
RSS increment over the inputs during the call (``bench_solvers._PeakRSS``);
1 torch thread; each row runs in its own process (a warm-up call on a tiny pool first), one call
per row (medians of ``--repeats``). The development machine has 2
cores shared with other jobs: read the times as ratios within one run.

    python benchmarks/bench_leaf_inputs_cost.py --pools 10000 100000 --dims 40 784 --batches 30 300

Writes ``benchmarks/results/leaf_inputs_cost.json`` and ``leaf_inputs_cost.md``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_solvers import _PeakRSS  # noqa: E402

OUT = Path(__file__).parent / "results"


def _setup(n, d, seed=0):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 90, d), dtype=np.float32)
    y = rng.integers(0, 10, size=n + 90)            # labels independent of X: near chance
    rf = RandomForestClassifier(50, random_state=seed, n_jobs=1).fit(X[:90], y[:90])
    return X[90:], rf, X[:90], y[:90]


def _call(method, pool, rf, Xl, yl, b):
    import sparse_query as sq

    if method == "modal-ubs":
        from modAL.batch import uncertainty_batch_sampling
        from modAL.models import ActiveLearner

        learner = ActiveLearner(estimator=rf, query_strategy=uncertainty_batch_sampling)
        learner.X_training, learner.y_training = Xl, yl   # already fitted on them
        learner.query(pool, n_instances=b)
        return {}
    from sparse_query.sampler import _RELIABILITIES, _TEMPERATURES

    _RELIABILITIES.clear(), _TEMPERATURES.clear()  # every row pays its own held-out fits
    kw = {} if method == "auto" else {"embedding": method}
    s = sq.SparseApproxSampler(device="cpu", random_state=0, **kw)
    s.fit_query(pool, rf, b, X_labeled=Xl, y_labeled=yl)
    return {"embedding_kind": s.embedding_kind_, "kappa": s.reliability_,
            "embedding_s": s.embedding_time_, "solve_s": s.solve_time_}


def one(n, d, b, method, repeats):
    """One row, in this (fresh) process: warm up, then time and measure ``repeats`` calls."""
    import torch

    torch.set_num_threads(1)
    _call(method, *_setup(500, 8), 10)                 # imports and first-call costs
    pool, rf, Xl, yl = _setup(n, d)
    times, info, peak = [], {}, 0.0
    for _ in range(repeats):
        gc.collect()
        with _PeakRSS() as mem:
            base = mem.peak
            t0 = time.perf_counter()
            info = _call(method, pool, rf, Xl, yl, b)
            times.append(time.perf_counter() - t0)
        peak = max(peak, (mem.peak - base) / 2**20)
    return dict(n=n, d=d, b=b, method=method, seconds=statistics.median(times), peak_mb=peak,
                pool_mb=pool.nbytes / 2**20, loadavg=os.getloadavg()[0], **info)


def run(pools, dims, batches, methods, repeats):
    """Every row in its own process, so that no row's peak memory rides on another's."""
    rows = []
    for n in pools:
        for d in dims:
            for b in batches:
                for m in methods:
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", str(n), str(d), str(b), m,
                         "--repeats", str(repeats)],
                        check=True, capture_output=True, text=True,
                        env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout
                    row = json.loads(out.strip().splitlines()[-1])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def render(rows):
    lines = ["| n | d | b | method | embedding | total s | solve s | peak +MB | pool MB | load |",
             "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        solve = f"{r['solve_s']:.2f}" if "solve_s" in r else "–"
        lines.append(f"| {r['n']:,} | {r['d']} | {r['b']} | {r['method']} | "
                     f"{r.get('embedding_kind', '–')} | {r['seconds']:.2f} | {solve} | "
                     f"{r['peak_mb']:.0f} | {r['pool_mb']:.0f} | {r['loadavg']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pools", nargs="+", type=int, default=[10000, 100000])
    ap.add_argument("--dims", nargs="+", type=int, default=[40, 784])
    ap.add_argument("--batches", nargs="+", type=int, default=[30, 300])
    ap.add_argument("--methods", nargs="+", default=["auto", "leaf-gradient", "modal-ubs"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--one", nargs=4, metavar=("N", "D", "B", "METHOD"),
                    help="run one row in this process and print it (what each row's process does)")
    a = ap.parse_args(argv)
    if a.one:
        import warnings

        warnings.simplefilter("ignore")
        n, d, b, m = a.one
        print(json.dumps(one(int(n), int(d), int(b), m, a.repeats)))
        return
    rows = run(a.pools, a.dims, a.batches, a.methods, a.repeats)
    OUT.mkdir(exist_ok=True)
    (OUT / "leaf_inputs_cost.json").write_text(json.dumps(rows, indent=1))
    cmd = "python benchmarks/bench_leaf_inputs_cost.py " + " ".join(argv or sys.argv[1:])
    (OUT / "leaf_inputs_cost.md").write_text(
        "# Cost of the near-chance tree embedding (issue 14)\n\n`" + cmd.strip() + "`\n\n"
        + render(rows))


if __name__ == "__main__":
    main()
