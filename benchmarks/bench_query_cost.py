"""What one query costs: the default against nothing refitted, the refitting rule and the peers.

One learner state per model (digits scaled to [0, 1], 60 labels drawn stratified with seed 0,
the rest the pool), the modAL call ``learner.query(X_pool, n_instances=20)`` timed end to end,
``--repeats`` times per strategy, the strategies in turn. Before every timed call the model is fitted again on the same
labels (outside the timing), as ``teach`` does in a modAL loop, so nothing cached for a fitted
model carries over from one call to the next. Strategies:

- ``ours``: ``SparseApproxSampler()`` at its defaults (``alpha_reliability="auto"``);
- ``ours:alpha_reliability=None``: nothing measured, nothing refitted;
- ``ours:alpha_reliability=held-out``: ``kappa`` from three fits of untrained copies;
- ``modal-ubs``: modAL's ``uncertainty_batch_sampling``;
- scikit-activeml 1.0.1's ``Badge``, ``Clue`` and ``TypiClust`` called as its documentation
  calls them (``benchmarks/bench_peers.py``'s ``SkactivemlStrategy``: ``Badge`` and ``Clue``
  fit a copy of the classifier inside ``query``, their default).

For ``ours`` the sampler's own split of the call is kept beside the total: ``embedding_time_``
(the model over the pool and the embedding), ``refit_time_`` (fits of copies) and
``solve_time_``.

    OMP_NUM_THREADS=1 python benchmarks/bench_query_cost.py --repeats 5

writes ``benchmarks/results/query_cost.md`` and ``query_cost.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "benchmarks", "results")

STRATEGIES = ("ours", "ours:alpha_reliability=None", "ours:alpha_reliability=held-out",
              "modal-ubs", "badge-skal", "clue", "typiclust")


def _skorch(valid: bool, seed: int):
    import torch
    from skorch import NeuralNetClassifier
    from skorch.dataset import ValidSplit

    class MLP(torch.nn.Module):
        def __init__(self, d=64, h=128, k=10):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU())
            self.head = torch.nn.Linear(h, k)

        def forward(self, x):
            return self.head(self.body(x))

    torch.manual_seed(seed)
    return NeuralNetClassifier(MLP, criterion=torch.nn.CrossEntropyLoss,
                               optimizer=torch.optim.Adam, lr=1e-2, max_epochs=40,
                               batch_size=32, verbose=0, device="cpu",
                               train_split=ValidSplit(5, stratified=True) if valid else None)


def _linear(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _forest(seed):
    from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(n_estimators=100, random_state=seed)


MODELS = {"linear": _linear, "forest": _forest, "skorch": lambda seed: _skorch(False, seed),
          "skorch-valid": lambda seed: _skorch(True, seed)}
LABELS = {
    "linear": "`StandardScaler` + `LogisticRegression`",
    "forest": "`RandomForestClassifier(100)`",
    "skorch": "skorch MLP (64-128-10), `train_split=None`",
    "skorch-valid": "skorch MLP, `train_split=ValidSplit(5)`",
}


def _strategy(spec):
    from benchmarks.bench_peers import SkactivemlStrategy
    from sparse_query import SparseApproxSampler

    if spec == "ours":
        return SparseApproxSampler(random_state=0, device="cpu")
    if spec.startswith("ours:"):
        k, _, v = spec[5:].partition("=")
        return SparseApproxSampler(random_state=0, device="cpu",
                                   **{k: None if v == "None" else v})
    if spec == "modal-ubs":
        from modAL.batch import uncertainty_batch_sampling
        return uncertainty_batch_sampling
    return SkactivemlStrategy(spec, 10, 0)


def _one(model_name, spec, strategy, X, y, lab, pool):
    """One timed ``learner.query`` on a freshly fitted model; (seconds, sampler parts)."""
    from modAL.models import ActiveLearner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner = ActiveLearner(estimator=MODELS[model_name](0), query_strategy=strategy,
                                X_training=X[lab], y_training=y[lab])
        t0 = time.perf_counter()
        out = learner.query(X[pool], n_instances=20)
        total = time.perf_counter() - t0
    idx = np.asarray(out[0] if isinstance(out, tuple) else out).ravel()
    assert len(np.unique(idx)) == 20
    if not spec.startswith("ours"):
        return total, None
    return total, (strategy.embedding_time_, strategy.refit_time_, strategy.solve_time_,
                   strategy.reliability_source_)


def measure(model_name, specs, X, y, lab, pool, repeats):
    """Every strategy on one model, the repeats taken in turn (strategy after strategy), so
    that a change of the machine's load falls on all of them alike."""
    strategies = {spec: _strategy(spec) for spec in specs}
    calls = {spec: [] for spec in specs}
    for _ in range(repeats):
        for spec in specs:
            calls[spec].append(_one(model_name, spec, strategies[spec], X, y, lab, pool))
    rows = []
    for spec in specs:
        totals = [c[0] for c in calls[spec]]
        row = {"model": model_name, "strategy": spec, "repeats": repeats,
               "total_s": float(np.median(totals)), "total_min_s": float(np.min(totals))}
        if calls[spec][0][1] is not None:
            e, f, s = np.median(np.asarray([c[1][:3] for c in calls[spec]]), axis=0)
            row.update(embedding_s=float(e), refit_s=float(f), solve_s=float(s),
                       reliability_source=calls[spec][-1][1][3])
        rows.append(row)
    return rows


def render(res):
    rows, meta = res["rows"], res["meta"]
    lines = [
        "# What one query costs: the default, nothing refitted, the refitting rule, the peers",
        "",
        f"`{meta['command']}` at `{meta['commit']}`; scikit-learn {meta['sklearn']}, "
        f"scikit-activeml {meta['skactiveml']}, torch {meta['torch']}, 1 thread; 1-minute load "
        f"average {meta['load_start']:.1f} at the start and {meta['load_end']:.1f} at the end, on "
        "2 shared cores. Digits, 60 labels, a pool of 1,737, `learner.query(X_pool, "
        "n_instances=20)` timed end to end; median of "
        f"{rows[0]['repeats']} calls, each on a freshly fitted model (how the script works: its "
        "docstring). For `ours` the sampler's parts of the same calls are shown beside the "
        "total; `x none` is the total over `ours:alpha_reliability=None`'s on the same model.",
        "",
        "| model | strategy | total s | x none | embedding s | refit s | solve s | reliability "
        "source |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in MODELS:
        base = next((r["total_s"] for r in rows if r["model"] == m
                     and r["strategy"] == "ours:alpha_reliability=None"), None)
        for r in (r for r in rows if r["model"] == m):
            ratio = f"{r['total_s'] / base:.2f}" if base else "–"
            ours = "embedding_s" in r
            lines.append(
                f"| {LABELS[m]} | `{r['strategy']}` | {r['total_s']:.3f} | {ratio} | "
                + (f"{r['embedding_s']:.3f} | {r['refit_s']:.3f} | {r['solve_s']:.3f} | "
                   f"{(r['reliability_source'] or '–').split(':')[0]} |" if ours
                   else "– | – | – | – |"))
    lines += ["", _reading(rows), ""]
    return "\n".join(lines)


def _reading(rows):
    """One line per question the table answers, from its numbers."""
    def ratio(m, spec):
        base = next(r["total_s"] for r in rows
                    if r["model"] == m and r["strategy"] == "ours:alpha_reliability=None")
        return next(r["total_s"] for r in rows
                    if r["model"] == m and r["strategy"] == spec) / base
    models = sorted({r["model"] for r in rows}, key=list(MODELS).index)
    d = [ratio(m, "ours") for m in models]
    h = [ratio(m, "ours:alpha_reliability=held-out") for m in models]
    peers = [r["total_s"] / next(b["total_s"] for b in rows if b["model"] == r["model"]
                                 and b["strategy"] == "ours")
             for r in rows if not r["strategy"].startswith("ours")]
    return (f"The default costs {min(d):.2f}-{max(d):.2f}x a query with nothing refitted over "
            f"the {len(models)} models, the refitting rule {min(h):.1f}-{max(h):.1f}x; the peers' "
            f"calls take {min(peers):.2f}-{max(peers):.2f}x the default's.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    import sklearn
    import skactiveml
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    lab, pool = train_test_split(np.arange(len(y)), train_size=60, stratify=y, random_state=0)
    load_start = os.getloadavg()[0]
    rows = []
    for m in a.models:
        _one(m, "ours", _strategy("ours"), X, y, np.sort(lab), np.sort(pool))  # warm-up
        for row in measure(m, a.strategies, X, y, np.sort(lab), np.sort(pool), a.repeats):
            rows.append(row)
            print(json.dumps(row), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "sparse_query"], cwd=ROOT,
                      capture_output=True, text=True).stdout.strip():
        commit += "-dirty"              # the library differs from the commit
    cmd = "OMP_NUM_THREADS=1 python benchmarks/bench_query_cost.py --repeats " + str(a.repeats)
    res = {"meta": {"command": cmd, "commit": commit, "sklearn": sklearn.__version__,
                    "skactiveml": skactiveml.__version__, "torch": torch.__version__,
                    "python": platform.python_version(), "load_start": load_start,
                    "load_end": os.getloadavg()[0]}, "rows": rows}
    with open(os.path.join(RESULTS, "query_cost.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    text = render(res)
    with open(os.path.join(RESULTS, "query_cost.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
