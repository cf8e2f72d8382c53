"""kappa (alpha_reliability='held-out') at 30/90/180 labels per family and dataset.

    python benchmarks/results/quality/kappa_diag.py                 # seed 0, every family
    python benchmarks/results/quality/kappa_diag.py --trees 0 1 ... # the tree families over
                                                                    # seeds: range per cell
    python benchmarks/results/quality/kappa_diag.py --pooled 0 1 ... # the three tree families
                                                 # pooled, per dataset and 30 / 60 / 90 labels
The labeled sets are random ones (``bench_quality.fitted_after``); run from ``benchmarks/``'s
parent with ``PYTHONPATH=benchmarks``.
"""
import sys
import warnings; warnings.filterwarnings("ignore")
import numpy as np
import bench_quality as bq
from sparse_query.embeddings.reliability import heldout_reliability
from sparse_query.adapters._ensembles import _column_labels


def kappa(fam, d, seed, nl):
    split, X, unl, _ = bq.fitted_after(d, fam, seed, nl)
    lab = np.setdiff1d(np.arange(len(X)), unl)
    members = bq.FAMILIES[fam](split.n_features, split.n_classes, len(lab), seed)
    return heldout_reliability(members, X[lab], split.y_pool[lab], random_state=seed,
                               column_labels=_column_labels)


if sys.argv[1:2] == ["--pooled"]:
    seeds = [int(s) for s in sys.argv[2:]]
    print("| dataset | labels | kappa range (rf, et, bagging; seeds "
          f"{seeds[0]}-{seeds[-1]}) | states below 0.2 |")
    print("|---|---|---|---|")
    for d in ("digits", "mnist", "mnist1d"):
        for nl in (30, 60, 90):
            ks = np.array([kappa(f, d, s, nl)[0] for f in ("rf", "et", "bagging") for s in seeds])
            print(f"| {d} | {nl} | {ks.min():.2f}-{ks.max():.2f} | {int((ks < 0.2).sum())} of "
                  f"{ks.size} |", flush=True)
    sys.exit()
if sys.argv[1:2] == ["--trees"]:
    seeds = [int(s) for s in sys.argv[2:]]
    print(f"| family | dataset | kappa range over seeds {seeds[0]}-{seeds[-1]} at 30 / 90 / 180 "
          "labels | cases below 0.2 |")
    print("|---|---|---|---|")
    for fam in ("rf", "et", "bagging"):
        for d in ("digits", "mnist", "mnist1d"):
            ks = np.array([[kappa(fam, d, s, nl)[0] for nl in (30, 90, 180)] for s in seeds])
            cells = " / ".join(f"{ks[:, i].min():.2f}-{ks[:, i].max():.2f}" for i in range(3))
            print(f"| {fam} | {d} | {cells} | {int((ks < 0.2).sum())} of {ks.size} |",
                  flush=True)
    sys.exit()
print("| family | dataset | kappa at 30 / 90 / 180 labels (3-fold accuracy) |")
print("|---|---|---|")
for fam in ("rf", "et", "bagging", "committee-sk", "mc-dropout", "vlinear"):
    for d in ("digits", "mnist", "mnist1d"):
        cells = [f"{k:.2f} ({a:.2f})" for k, a in (kappa(fam, d, 0, nl) for nl in (30, 90, 180))]
        print(f"| {fam} | {d} | " + " / ".join(cells) + " |", flush=True)
