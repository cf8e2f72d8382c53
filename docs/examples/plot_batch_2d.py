"""
The batch on a 2-D pool
=======================

A pool you can see: three Gaussian blobs in two dimensions, a logistic regression trained on 12
labels, and the batch of 15 points each strategy picks. Top-b entropy piles its batch onto the
decision boundaries; random sampling ignores them; the sparse approximation spreads the batch
over the pool (the bias term) while preferring uncertain points (the variance term). At the
default ``temperature=0.01`` the label distribution is close to the predicted label and
representation dominates; a higher temperature gives the variance term more weight.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from sparse_query import EntropySampling, RandomSampling, SparseApproxSampler

X, y = make_blobs(n_samples=600, centers=3, cluster_std=1.6, random_state=3)
rng = np.random.default_rng(0)
labeled = np.concatenate([rng.choice(np.flatnonzero(y == k), 4, replace=False) for k in range(3)])
pool = np.setdiff1d(np.arange(len(X)), labeled)
model = LogisticRegression().fit(X[labeled], y[labeled])
B = 15

strategies = {
    "SparseApproxSampler()": SparseApproxSampler(device="cpu", random_state=0),
    "SparseApproxSampler(temperature=0.3)": SparseApproxSampler(temperature=0.3, device="cpu",
                                                                random_state=0),
    "EntropySampling()": EntropySampling(device="cpu"),
    "RandomSampling()": RandomSampling(random_state=0),
}

# %%
# Each panel shows the pool (grey), the labeled points (black crosses), the model's
# probability of its predicted class as a background (lighter is less certain) and the batch
# (red).

xx, yy = np.meshgrid(np.linspace(X[:, 0].min() - 1, X[:, 0].max() + 1, 200),
                     np.linspace(X[:, 1].min() - 1, X[:, 1].max() + 1, 200))
conf = model.predict_proba(np.c_[xx.ravel(), yy.ravel()]).max(1).reshape(xx.shape)
fig, axes = plt.subplots(2, 2, figsize=(8, 7), sharex=True, sharey=True)
for ax, (name, strategy) in zip(axes.ravel(), strategies.items()):
    idx = strategy.fit_query(X[pool], model, B, X_labeled=X[labeled], y_labeled=y[labeled])
    assert len(np.unique(idx)) == B
    ax.contourf(xx, yy, conf, levels=10, cmap="Blues", alpha=0.5)
    ax.scatter(*X[pool].T, s=6, c="0.6")
    ax.scatter(*X[labeled].T, marker="x", c="k", s=40)
    ax.scatter(*X[pool[idx]].T, s=40, c="tab:red", edgecolors="k")
    ax.set_title(name, fontsize=10)
    print(f"{name:36s} mean confidence of the batch "
          f"{model.predict_proba(X[pool[idx]]).max(1).mean():.2f}")
fig.tight_layout()
plt.show()
