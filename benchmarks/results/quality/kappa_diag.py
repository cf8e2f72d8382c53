"""kappa (alpha_reliability='held-out') at 30/90/180 labels, seed 0, per family and dataset."""
import warnings; warnings.filterwarnings("ignore")
import numpy as np
import bench_quality as bq
from sparse_query.benchmark.datasets import split_dataset
from sparse_query.embeddings.reliability import heldout_reliability
from sparse_query.adapters._ensembles import _column_labels
print("| family | dataset | kappa at 30 / 90 / 180 labels (3-fold accuracy) |")
print("|---|---|---|")
for fam in ("rf", "et", "bagging", "committee-sk", "mc-dropout", "vlinear"):
    for d in ("digits", "mnist", "mnist1d"):
        cells = []
        for nl in (30, 90, 180):
            split, X, unl, _ = bq.fitted_after(d, fam, 0, nl)
            lab = np.setdiff1d(np.arange(len(X)), unl)
            members = bq.FAMILIES[fam](split.n_features, split.n_classes, len(lab), 0)
            k, a = heldout_reliability(members, X[lab], split.y_pool[lab], random_state=0,
                                       column_labels=_column_labels)
            cells.append(f"{k:.2f} ({a:.2f})")
        print(f"| {fam} | {d} | " + " / ".join(cells) + " |", flush=True)
