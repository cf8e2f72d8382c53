"""Why the forest rows of the quality matrix move with ``alpha``: tied vote fractions.

A forest of fully grown trees predicts vote fractions (multiples of 1/n_trees), so the top two
classes of many pool points are exactly tied. At the default ``temperature=0.01`` the label
distribution ``P_j = softmax(log p_j / T)`` is one-hot except on those ties, where it splits the
mass between the tied classes, so ``sigma_j`` is zero except on tied points. This script
measures, for one labeled set per dataset (seed 0: 30 seed labels + 60 random ones, the state of
round 2 of the matrix), the share of the pool that is tied, how many of a batch of 30 each
``alpha`` spends on tied points, and the two terms of greedy's first score: the bias gradient
``|grad f1(0)_j|`` and the variance bonus ``alpha_eff * sigma_j^2`` of the tied points::

    OMP_NUM_THREADS=1 python benchmarks/diag_leaf_ties.py [--families rf et bagging]

Output: one line per (family, dataset, alpha) and a markdown table in
``benchmarks/results/quality/leaf_ties.md``.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import bench_quality as bq  # noqa: E402
from sparse_query.adapters._trees import leaf_last_layer  # noqa: E402
from sparse_query.embeddings import gradient_embedding  # noqa: E402


def one(dataset, family, alphas, seed=0, n_labeled=90, b=30):
    split, X, unl, model = bq.fitted_after(dataset, family, seed, n_labeled)
    p = model.predict_proba(X[unl])
    tied = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    acc = float(np.mean(model.predict(split.X_test.astype(np.float32)) == split.y_test))
    ll = leaf_last_layer(model, X[unl])
    emb = gradient_embedding(ll.logits, ll.features.toarray().astype(np.float64),
                             temperature=0.01, bias=False)
    E = emb.dense().numpy()
    grad = np.abs((2.0 / b) * E @ E.mean(axis=0))
    n = len(unl)
    rows = []
    for a in alphas:
        s = bq._strategy(f"ours:alpha={a}", seed)
        pick = np.asarray(s.fit_query(X[unl], model, b))
        bonus = a * n * n / b * emb.sigma.numpy() ** 2
        rows.append(dict(family=family, dataset=dataset, accuracy=acc, tied_share=float(tied.mean()),
                         alpha=a, tied_picks=int(tied[pick].sum()),
                         grad_q99=float(np.percentile(grad, 99)),
                         bonus_tied=float(np.median(bonus[tied])) if tied.any() else 0.0))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=["rf", "et", "bagging"])
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist", "mnist1d"])
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.1, 0.03, 0.0])
    ap.add_argument("--out", default=os.path.join(bq.DEFAULT_OUT, "leaf_ties.md"))
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    lines = ["| family | dataset | test accuracy | pool share tied | alpha | tied points in the batch "
             "of 30 | bias gradient, 99th pct | variance bonus of a tied point (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for f in a.families:
        for d in a.datasets:
            for r in one(d, f, a.alphas):
                print(r, flush=True)
                lines.append(f"| {f} | {d} | {r['accuracy']:.2f} | {r['tied_share']:.3f} | "
                             f"{r['alpha']:g} | {r['tied_picks']} | {r['grad_q99']:.4f} | "
                             f"{r['bonus_tied']:.4f} |")
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
