"""Out-of-bag kappa beside the 3-fold kappa of alpha_reliability, on the tree families' states.

    PYTHONPATH=$PWD python benchmarks/results/quality/kappa_oob.py 0 1 2 3 4 5 6 7 8 9

The labeled sets are random ones (``bench_quality.fitted_after``): the seed set plus random
points up to 60 or 90 labels. Run from the repository root.
"""
import sys, time, warnings; warnings.filterwarnings("ignore")
import numpy as np
sys.path.insert(0, "benchmarks")
import bench_quality as bq
from sparse_query import adapters
from sparse_query.adapters._trees import out_of_bag_proba
from sparse_query.embeddings.reliability import heldout_reliability, proba_reliability
from sparse_query.adapters._ensembles import _column_labels
seeds = [int(s) for s in sys.argv[1:]]
print("| family | dataset | labels | 3-fold kappa range | OOB kappa range | mean abs diff | below 0.2 (3-fold / OOB) |")
print("|---|---|---|---|---|---|---|")
for fam in ("rf", "bagging"):
    for d in ("digits", "mnist", "mnist1d"):
        for nl in (60, 90):
            a, b = [], []
            for s in seeds:
                split, X, unl, model = bq.fitted_after(d, fam, s, nl)
                lab = np.setdiff1d(np.arange(len(X)), unl)
                members = bq.FAMILIES[fam](split.n_features, split.n_classes, len(lab), s)
                a.append(heldout_reliability(members, X[lab], split.y_pool[lab], random_state=s, column_labels=_column_labels)[0])
                oob = out_of_bag_proba(model, X[lab])
                assert oob is not None, (fam, d, s)
                b.append(proba_reliability(*oob, adapters.classes_of(model), split.y_pool[lab])[0])
            a, b = np.array(a), np.array(b)
            print(f"| {fam} | {d} | {nl} | {a.min():.2f}-{a.max():.2f} | {b.min():.2f}-{b.max():.2f} | {np.abs(a-b).mean():.3f} | {(a<0.2).sum()} / {(b<0.2).sum()} of {len(a)} |", flush=True)
