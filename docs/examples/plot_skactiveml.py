"""
A scikit-activeml loop with the sparse approximation
=====================================================

scikit-activeml keeps the whole data set in ``X`` and marks the unlabeled rows of ``y``
with ``MISSING_LABEL``. :class:`sparse_query.skactiveml.SparseApproxQueryStrategy` answers
its pool-strategy call ``query(X, y, clf, batch_size=...)`` by running
:class:`~sparse_query.SparseApproxSampler` on the unlabeled rows, with the labeled rows as
its labeled set and the scikit-learn model inside scikit-activeml's ``SklearnClassifier``
as its model. Here it runs scikit-activeml's own loop on the digits, beside
scikit-activeml's ``RandomSampling``, from the same 20 random labels; the curve is the
test accuracy of a logistic regression after each batch of 10 labels, averaged over three
seeds.

It needs ``pip install scikit-activeml`` (or the ``skactiveml`` extra).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from skactiveml.classifier import SklearnClassifier
from skactiveml.pool import RandomSampling
from skactiveml.utils import MISSING_LABEL

from sparse_query import SparseApproxSampler
from sparse_query.skactiveml import SparseApproxQueryStrategy

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=500, random_state=0,
                                                  stratify=y)
N_START, BATCH, N_CYCLES, SEEDS = 20, 10, 6, (0, 1, 2)

# %%
# The loop
# --------
# It is scikit-activeml's: query with the strategy, label what it chose, refit. The first 20
# labels come from ``RandomSampling`` for both strategies, so the curves start together.


def learning_curve(qs, seed):
    clf = SklearnClassifier(LogisticRegression(C=0.5, max_iter=500), classes=np.arange(10))
    y_train = np.full(len(X_pool), MISSING_LABEL)
    start = RandomSampling(random_state=seed).query(X_pool, y_train, batch_size=N_START)
    y_train[start] = y_pool[start]
    clf.fit(X_pool, y_train)
    accuracy = [clf.score(X_test, y_test)]
    for _ in range(N_CYCLES):
        if isinstance(qs, RandomSampling):
            idx = qs.query(X_pool, y_train, batch_size=BATCH)
        else:
            idx = qs.query(X_pool, y_train, clf, fit_clf=False, batch_size=BATCH)
        y_train[idx] = y_pool[idx]
        clf.fit(X_pool, y_train)
        accuracy.append(clf.score(X_test, y_test))
    return np.array(accuracy)


curves = {
    "SparseApproxQueryStrategy": [
        learning_curve(SparseApproxQueryStrategy(SparseApproxSampler(device="cpu"),
                                                 random_state=s), s) for s in SEEDS],
    "RandomSampling": [learning_curve(RandomSampling(random_state=s), s) for s in SEEDS],
}

# %%
# The learning curves
# -------------------
n_labels = N_START + BATCH * np.arange(N_CYCLES + 1)
fig, ax = plt.subplots(figsize=(6, 4))
for name, runs in curves.items():
    runs = np.array(runs)
    ax.plot(n_labels, runs.mean(axis=0), marker="o", label=name)
    ax.fill_between(n_labels, runs.min(axis=0), runs.max(axis=0), alpha=0.2)
    print(f"{name}: mean test accuracy at {n_labels[-1]} labels {runs[:, -1].mean():.3f}")
ax.set_xlabel("labels")
ax.set_ylabel("test accuracy (mean and range over 3 seeds)")
ax.set_title("Digits, logistic regression, scikit-activeml's loop")
ax.legend()
plt.show()
