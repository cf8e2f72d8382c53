"""Acquisition-time scaling of every strategy on the same embeddings (issue 6).

``python benchmarks/bench_al.py acq`` times one query call (``fit_query``: inference on the
pool, embedding and selection) of Ours-Greedy, Ours-IHT (exact and with ``sketch_dim=128``),
BADGE, KCenter and BatchBALD on synthetic last-layer features: a 10-class Gaussian mixture in
``d`` dimensions (default 128) behind a fixed linear head with MC dropout on its input
(``nn.Sequential(Dropout(0.1), Linear(d, 10))``), so every method sees the same pool, the same
features and the same logits. A labeled set of 100 points is passed to every method (KCenter
starts from it). When scikit-activeml is importable (run this script with a Python that has
it, e.g. a separate venv), its ``Badge`` and ``CoreSet`` are timed on the same features and
probabilities too.

Times are medians over ``--repeats`` calls (a single call when the first one takes longer than
``--single-above`` seconds); a method is skipped for larger batches of the same pool once one
call exceeds ``--cap`` seconds, and skipped configurations are recorded as such. Writes
``acq_scaling.json``, ``acq_scaling.csv``, ``acq_scaling.md`` and ``acq_scaling.png`` to
``--out``.

This is the strategy-level comparison; solver-level scaling up to 1M points lives in
``benchmarks/bench_scale.py``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time

import numpy as np
import torch


def make_pool(n, d, k=10, seed=0):
    """Gaussian-mixture features (float32) and a head whose logits are moderately confident."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    X = centres[y] + 1.5 * rng.normal(size=(n, d)).astype(np.float32)
    gen = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(d, k)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(centres) / d ** 0.5 + 0.05 * torch.randn(k, d, generator=gen))
        head.bias.zero_()
    model = torch.nn.Sequential(torch.nn.Dropout(0.1), head).eval()
    return X, y, model


def ours(**kw):
    from sparse_query import SparseApproxSampler

    return lambda seed: SparseApproxSampler(device="cpu", random_state=seed, **kw)


def baseline(name, **kw):
    import sparse_query as sq

    cls = getattr(sq, name)
    return lambda seed: cls(device="cpu", random_state=seed, **kw)


METHODS = {
    "ours-greedy": ours(solver="greedy"),
    "ours-iht": ours(solver="iht"),
    "ours-greedy-sketch128": ours(solver="greedy", sketch_dim=128),
    "ours-iht-sketch128": ours(solver="iht", sketch_dim=128),
    "badge": baseline("BADGE"),
    "kcenter": baseline("KCenterGreedy"),
    "batchbald": baseline("BatchBALD"),
}


def _skactiveml_methods(model):
    """scikit-activeml's Badge and CoreSet on the same features and probabilities, if installed."""
    try:
        from skactiveml.base import SkactivemlClassifier
        from skactiveml.pool import Badge, CoreSet
    except ImportError:
        return {}

    class FixedHead(SkactivemlClassifier):
        """The benchmark's fixed linear head as a scikit-activeml classifier (no training)."""

        def __init__(self, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)

        def fit(self, X, y, sample_weight=None):
            self._validate_data(X, y)
            return self

        def predict_proba(self, X, return_embeddings=False):
            with torch.no_grad():
                p = torch.softmax(model[1](torch.as_tensor(X, dtype=torch.float32)), 1).numpy()
            return (p, X) if return_embeddings else p

    def badge_call(X_pool, X_lab, y_lab, b, seed):
        X = np.concatenate([X_lab, X_pool])
        y = np.concatenate([y_lab.astype(float), np.full(len(X_pool), np.nan)])
        clf = FixedHead(classes=np.arange(10)).fit(X, y)
        q = Badge(clf_embedding_flag_name="return_embeddings", random_state=seed)
        return q.query(X, y, clf, fit_clf=False, candidates=np.arange(len(X_lab), len(X)),
                       batch_size=b)

    def coreset_call(X_pool, X_lab, y_lab, b, seed):
        X = np.concatenate([X_lab, X_pool])
        y = np.concatenate([y_lab.astype(float), np.full(len(X_pool), np.nan)])
        return CoreSet(random_state=seed).query(X, y, batch_size=b)

    return {"skactiveml-badge": badge_call, "skactiveml-coreset": coreset_call}


def time_call(fn, repeats, single_above):
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t0)
        if r == 0 and times[0] > single_above:
            break
    return statistics.median(times), len(times)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, len(ns), figsize=(5.5 * len(ns), 4.2), squeeze=False)
    try:
        for ax, n in zip(axes[0], ns):
            for m in dict.fromkeys(r["method"] for r in rows):
                pts = [(r["b"], r["seconds"]) for r in rows
                       if r["n"] == n and r["method"] == m and r["seconds"] is not None]
                if pts:
                    b, s = zip(*pts)
                    ax.loglog(b, s, "o-" if m.startswith("ours") else "s--", label=m)
            ax.set_title(f"pool n = {n:,}")
            ax.set_xlabel("batch size b")
            ax.set_ylabel("seconds per query (median)")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def acq(args):
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    json_path = os.path.join(args.out, "acq_scaling.json")
    methods = [m for m in args.methods]
    for n in args.pools:
        X, y, model = make_pool(n + 100, args.dim)
        X_lab, y_lab, X_pool = X[:100], y[:100], X[100:]
        extra = _skactiveml_methods(model) if args.skactiveml else {}
        capped = set()
        for b in args.batches:
            for m in methods + list(extra):
                row = {"n": n, "b": b, "d": args.dim, "method": m, "seconds": None,
                       "repeats": 0, "note": ""}
                if m in capped:
                    row["note"] = f"skipped: a smaller batch already took > {args.cap:.0f} s"
                elif m == "batchbald" and b > args.batchbald_max_b:
                    row["note"] = f"skipped: greedy joint entropy, b > {args.batchbald_max_b} infeasible"
                elif m == "skactiveml-badge" and n * b > args.skal_max_nb:
                    row["note"] = "skipped: stores a b x n utilities matrix and the dense n x Kd embedding"
                else:
                    if m in extra:
                        call = lambda s, m=m: extra[m](X_pool, X_lab, y_lab, b, s)
                    else:
                        make = METHODS[m]
                        call = lambda s, make=make: make(s).fit_query(
                            X_pool, model, b, X_labeled=X_lab, y_labeled=y_lab)
                    try:
                        sec, reps = time_call(call, args.repeats, args.single_above)
                        row.update(seconds=sec, repeats=reps)
                        if sec > args.cap:
                            capped.add(m)
                    except Exception as exc:  # record and move on: a timing table, not a test
                        row["note"] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
                rows.append(row)
                print(f"n={n} b={b} {m}: "
                      + (f"{row['seconds']:.3f} s ({row['repeats']} runs)" if row["seconds"] is not None
                         else row["note"]), flush=True)
                with open(json_path, "w") as fh:
                    json.dump({"rows": rows, "args": vars(args),
                               "torch_threads": torch.get_num_threads()}, fh, indent=1)
    render(args.out)


def render(out):
    """``acq_scaling.{csv,md,png}`` (with ratios to BADGE) from ``acq_scaling.json`` in ``out``."""
    json_path = os.path.join(out, "acq_scaling.json")
    with open(json_path) as fh:
        stored = json.load(fh)
    rows = stored["rows"]
    badge = {(r["n"], r["b"]): r["seconds"] for r in rows if r["method"] == "badge"}
    for r in rows:
        ref = badge.get((r["n"], r["b"]))
        r["ratio_to_badge"] = (r["seconds"] / ref) if r["seconds"] and ref else None
    with open(json_path, "w") as fh:
        json.dump(stored, fh, indent=1)
    with open(os.path.join(out, "acq_scaling.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["| n | b | method | s / query (median) | runs | × BADGE time |", "|---|---|---|---|---|---|"]
    for r in rows:
        s = f"{r['seconds']:.3f}" if r["seconds"] is not None else r["note"]
        ratio = f"{r['ratio_to_badge']:.2f}" if r["ratio_to_badge"] else "–"
        lines.append(f"| {r['n']:,} | {r['b']} | {r['method']} | {s} | {r['repeats']} | {ratio} |")
    with open(os.path.join(out, "acq_scaling.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    plot(rows, os.path.join(out, "acq_scaling.png"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("acq", help="acquisition time vs pool and batch size")
    a.add_argument("--pools", nargs="+", type=int, default=[10_000, 100_000])
    a.add_argument("--batches", nargs="+", type=int, default=[100, 1000, 5000])
    a.add_argument("--dim", type=int, default=128)
    a.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--single-above", type=float, default=20.0)
    a.add_argument("--cap", type=float, default=150.0)
    a.add_argument("--batchbald-max-b", type=int, default=100)
    a.add_argument("--skal-max-nb", type=int, default=10_000 * 5000)
    a.add_argument("--no-skactiveml", dest="skactiveml", action="store_false")
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--out", default="benchmarks/results")
    m = sub.add_parser("merge", help="join the rows of several acq runs and render them")
    m.add_argument("parts", nargs="+", help="folders holding acq_scaling.json")
    m.add_argument("--out", required=True)
    r = sub.add_parser("render", help="tables and plot from a (possibly partial) acq_scaling.json")
    r.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if args.command == "merge":
        rows, meta = [], []
        for part in args.parts:
            with open(os.path.join(part, "acq_scaling.json")) as fh:
                d = json.load(fh)
            rows += [r for r in d["rows"] if r["seconds"] is not None or not any(
                (q["n"], q["b"], q["method"]) == (r["n"], r["b"], r["method"]) for q in rows)]
            meta.append({"part": part, "args": d["args"]})
        # a later part that measured what an earlier one skipped wins
        seen = {}
        for r in rows:
            key = (r["n"], r["b"], r["method"])
            if key not in seen or r["seconds"] is not None:
                seen[key] = r
        rows = sorted(seen.values(), key=lambda r: (r["n"], r["b"], list(METHODS).index(r["method"])
                                                    if r["method"] in METHODS else 99))
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "acq_scaling.json"), "w") as fh:
            json.dump({"rows": rows, "parts": meta}, fh, indent=1)
        render(args.out)
    elif args.command == "render":
        render(args.out)
    else:
        acq(args)


if __name__ == "__main__":
    main()
