"""The variance term of nets at the default temperature: which pool points it singles out.

At ``temperature=0.01`` the label distribution ``P_j = softmax(z_j / T)`` is one-hot unless the
top two logits of point ``j`` are within a few ``T`` of each other, so ``sigma_j`` is
non-zero only on those near-ties. For one labeled set per dataset (seed 0: 30 seed labels and
60 random ones, as round 2 of the quality matrix) this script counts the pool points whose
variance bonus ``alpha_eff * sigma_j^2`` at the default ``alpha=0.1`` exceeds the 99th
percentile of greedy's first bias gradient ``|grad f1(0)_j|``, and how many of a batch of 30
come from that set at ``alpha`` = 0.1, 0.03 and 0::

    OMP_NUM_THREADS=1 python benchmarks/diag_near_ties.py

Writes ``benchmarks/results/quality/near_ties.md``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import bench_quality as bq  # noqa: E402
from sparse_query import adapters  # noqa: E402
from sparse_query.embeddings import gradient_embedding  # noqa: E402

ALPHAS = (0.1, 0.03, 0.0)


def one(family, dataset, seed=0, n_labeled=90, b=30):
    split, X, unl, model = bq.fitted_after(dataset, family, seed, n_labeled)
    acc = float(np.mean(model.predict(split.X_test.astype(np.float32)) == split.y_test))
    ll = adapters.last_layer_outputs(model, X[unl])
    emb = gradient_embedding(ll.logits.double(), ll.features.double(), temperature=0.01,
                             bias=ll.bias)
    E = emb.dense().numpy()
    grad = np.abs((2.0 / b) * E @ E.mean(axis=0))
    n = len(unl)
    hot = 0.1 * n * n / b * emb.sigma.numpy() ** 2 > np.percentile(grad, 99)
    picks = []
    for a in ALPHAS:
        pick = np.asarray(bq._strategy(f"ours:alpha={a}", seed).fit_query(X[unl], model, b))
        picks.append(int(hot[pick].sum()))
    return acc, float(hot.mean()), picks


def main():
    import torch
    torch.set_num_threads(1)
    lines = ["| family | dataset | test accuracy | pool share with a dominant variance bonus | "
             + " | ".join(f"of the batch of 30 at alpha = {a:g}" for a in ALPHAS) + " |",
             "|---|---|---|---|" + "---|" * len(ALPHAS)]
    for f in ("vlinear", "mc-dropout"):
        for d in ("digits", "mnist", "mnist1d"):
            acc, share, picks = one(f, d)
            print(f, d, acc, share, picks, flush=True)
            lines.append(f"| {f} | {d} | {acc:.2f} | {share:.4f} | "
                         + " | ".join(str(p) for p in picks) + " |")
    with open(os.path.join(bq.DEFAULT_OUT, "near_ties.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
