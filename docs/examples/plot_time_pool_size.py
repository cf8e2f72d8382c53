"""
Query time against pool size
============================

How long one ``fit_query`` takes as the pool grows, for the two solvers and BADGE, with a
logistic regression on 64 synthetic features and 10 classes, batches of 50. The time covers the
whole call: the model's probabilities over the pool, the embedding, and the solver
(``alpha_reliability=None`` here, so no extra fits of the model are timed). The pools are small
so the example runs in seconds; times depend on the machine and its load, so compare the
curves with each other, not with another machine. The repository's benchmarks time pools up to
a million points.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sparse_query import BADGE, SparseApproxSampler

SIZES = (1_000, 2_000, 5_000, 10_000, 20_000)
B = 50
X, y = make_classification(n_samples=max(SIZES) + 200, n_features=64, n_informative=32,
                           n_classes=10, random_state=0)
X = X.astype(np.float32)
model = LogisticRegression(max_iter=300).fit(X[:200], y[:200])
pool_all = X[200:]

strategies = {
    "greedy": lambda: SparseApproxSampler("greedy", alpha_reliability=None, device="cpu",
                                          random_state=0),
    "iht": lambda: SparseApproxSampler("iht", alpha_reliability=None, device="cpu",
                                       random_state=0),
    "BADGE": lambda: BADGE(device="cpu", random_state=0),
}


def seconds(strategy, pool):
    """The faster of two calls, to damp the noise of a shared machine."""
    best = np.inf
    for _ in range(2):
        t = time.perf_counter()
        strategy.fit_query(pool, model, B)
        best = min(best, time.perf_counter() - t)
    return best


times = {name: [seconds(make(), pool_all[:n]) for n in SIZES] for name, make in strategies.items()}

# %%
# Time per query against the pool size, on log-log axes.

fig, ax = plt.subplots(figsize=(6, 4))
for name, t in times.items():
    ax.loglog(SIZES, t, marker="o", label=name)
    print(name, " ".join(f"{n}: {s:.3f}s" for n, s in zip(SIZES, t)))
ax.set_xlabel("pool size")
ax.set_ylabel("seconds per fit_query")
ax.set_title(f"batch of {B}, logistic regression, 64 features, 10 classes")
ax.legend()
fig.tight_layout()
plt.show()
