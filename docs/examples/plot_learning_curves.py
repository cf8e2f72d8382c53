"""
Learning curves on digits
=========================

The active-learning loop on scikit-learn's digits with a logistic regression: start from 30
random labels, then query 20 points per round and retrain. The sampler (its defaults) is
compared with random sampling and with top-b entropy. Test accuracy is measured on a held-out
third of the data after every round; two seeds keep the example fast, so expect noise between
seeds (the benchmark runs more seeds and rounds).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sparse_query import EntropySampling, RandomSampling, SparseApproxSampler

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_pool_all, X_test, y_pool_all, y_test = train_test_split(X, y, test_size=1 / 3,
                                                          random_state=0, stratify=y)
N_START, BATCH, ROUNDS, SEEDS = 30, 20, 6, (0, 1)


def run(make_strategy, seed):
    """Test accuracy after each round of one loop."""
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(X_pool_all), N_START, replace=False)
    pool = np.setdiff1d(np.arange(len(X_pool_all)), labeled)
    strategy = make_strategy(seed)
    scores = []
    for _ in range(ROUNDS + 1):
        model = LogisticRegression(max_iter=1000).fit(X_pool_all[labeled], y_pool_all[labeled])
        scores.append(model.score(X_test, y_test))
        if len(scores) > ROUNDS:
            break
        idx = strategy.fit_query(X_pool_all[pool], model, BATCH,
                                 X_labeled=X_pool_all[labeled], y_labeled=y_pool_all[labeled])
        labeled, pool = np.concatenate([labeled, pool[idx]]), np.delete(pool, idx)
    return np.array(scores)


strategies = {
    "SparseApproxSampler": lambda s: SparseApproxSampler(device="cpu", random_state=s),
    "entropy": lambda s: EntropySampling(device="cpu", random_state=s),
    "random": lambda s: RandomSampling(random_state=s),
}
n_labels = N_START + BATCH * np.arange(ROUNDS + 1)
curves = {name: np.mean([run(make, s) for s in SEEDS], axis=0)
          for name, make in strategies.items()}

# %%
# The mean test accuracy over the seeds, and the area under each curve (divided by the label
# range, so it reads like an accuracy).

fig, ax = plt.subplots(figsize=(6, 4))
for name, acc in curves.items():
    auc = np.trapezoid(acc, n_labels) / (n_labels[-1] - n_labels[0])
    ax.plot(n_labels, acc, marker="o", label=f"{name} (AUC {auc:.3f})")
    print(f"{name:20s} final accuracy {acc[-1]:.3f}, AUC {auc:.3f}")
ax.set_xlabel("labels")
ax.set_ylabel("test accuracy")
ax.set_title(f"digits, logistic regression, mean of {len(SEEDS)} seeds")
ax.legend()
fig.tight_layout()
plt.show()
