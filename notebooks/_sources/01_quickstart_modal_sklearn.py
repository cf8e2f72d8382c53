# Source of notebooks/01_quickstart_modal_sklearn.ipynb -- edit here, then run notebooks/_build.py.

# %% [markdown]
# # 1 · Quickstart: `sparse_query` with modAL and scikit-learn
#
# **What you will learn.** How to plug the sparse-approximation query strategy into a modAL
# `ActiveLearner` around an ordinary scikit-learn model, what the strategy is trying to do,
# and how to read a learning curve against two baselines: random sampling and modAL's own
# uncertainty batch sampling.
#
# **The setting.** Labels are expensive. We start with 30 labeled handwritten digits, and in
# every *round* we may ask an oracle (here: the held-back true labels) for a *batch* of new
# labels. *Which* points we ask for is the query strategy's job. Asking for a batch rather
# than one point at a time is what makes the problem hard: the 20 "most uncertain" digits
# are usually 20 near-copies of the same confusing 3-vs-8, and labelling all of them teaches
# the model little more than labelling one.
#
# The outputs stored in this notebook come from a full run. Set the environment variable
# `SPARSE_QUERY_NOTEBOOK_FAST=1` before starting Jupyter for a run that finishes in seconds
# (fewer rounds and a single seed); the test suite does that.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from modAL.batch import uncertainty_batch_sampling
from modAL.models import ActiveLearner
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparse_query import RandomSampling, SparseApproxSampler, sparse_greedy

%matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# modAL 0.4.1 still passes scikit-learn's deprecated `force_all_finite`; the warning is not ours.
warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
# The models are tiny: one thread is as fast and does not fight other processes for the CPU.
torch.set_num_threads(1)

FAST = os.environ.get("SPARSE_QUERY_NOTEBOOK_FAST") == "1"
SEED_SIZE = 30                         # labels we start with
BATCH = 20                             # labels bought per round
ROUNDS = 4 if FAST else 10             # rounds of querying
SEEDS = [0] if FAST else [0, 1, 2]     # independent repetitions (different random start sets)
print(f"fast mode: {FAST}; {ROUNDS} rounds of {BATCH}, seeds {SEEDS}")

# %% [markdown]
# ## The data and the model
#
# scikit-learn's handwritten digits ship with scikit-learn (no download): 1,797 images of
# 8×8 pixels, ten classes. A quarter is held out as a test set that is never queried; the
# rest is the *pool* the strategy chooses from. The model is a standardised multinomial
# logistic regression: cheap to retrain, and its last (only) layer is linear, which is all
# the gradient embedding of `sparse_query` needs.

# %%
X, y = load_digits(return_X_y=True)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0)
print("pool", X_pool.shape, " test", X_test.shape)


def make_model():
    """A fresh, unfitted model: every round retrains one from scratch on all labels so far."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# %% [markdown]
# ## One query, by hand
#
# `sparse_greedy` is a ready-made `SparseApproxSampler(solver="greedy")`. It has modAL's
# query-strategy signature, so it goes straight into `ActiveLearner`. `learner.query` returns
# the chosen positions in the pool we pass (and, in modAL 0.4.1, the chosen rows).

# %%
rng = np.random.default_rng(0)
start = rng.choice(len(X_pool), SEED_SIZE, replace=False)
unlabeled = np.setdiff1d(np.arange(len(X_pool)), start)

learner = ActiveLearner(estimator=make_model(), query_strategy=sparse_greedy,
                        X_training=X_pool[start], y_training=y_pool[start])
print(f"test accuracy with {SEED_SIZE} labels: {learner.score(X_test, y_test):.3f}")

query_idx, _ = learner.query(X_pool[unlabeled], n_instances=BATCH)
chosen = unlabeled[query_idx]
print("chosen pool indices:", chosen)

# %% [markdown]
# What did it pick? Below are the 20 images with the model's current guess and the weight the
# solver gave each point. Look for two things: the batch should contain **hard** digits (the
# guess is often wrong or the image ambiguous) and it should be **diverse** (not twenty copies
# of one confusion).
# The weight $w_j$ says how much point $j$ stands in for the rest of the pool in the bias
# term below; a point with weight 0 is in the batch for its uncertainty alone.

# %%
guess = learner.predict(X_pool[chosen])
fig, axes = plt.subplots(2, BATCH // 2, figsize=(BATCH * 0.55, 2.6))
for ax, j, g, w in zip(axes.ravel(), chosen, guess, sparse_greedy.weights_):
    ax.imshow(X_pool[j].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{g}→{y_pool[j]}\nw={w:.2f}", fontsize=8,
                 color="black" if g == y_pool[j] else "crimson")
    ax.axis("off")
fig.suptitle("first batch: model guess → true label (red: the model was wrong)", fontsize=10)
plt.tight_layout()
plt.show()
print(f"guess accuracy on the batch: {(guess == y_pool[chosen]).mean():.2f}  "
      f"(on the test set: {learner.score(X_test, y_test):.2f})")

# %% [markdown]
# ## What the strategy optimises
#
# For every pool point $j$ the sampler builds the **gradient embedding** $e_j$: the expected
# gradient of the loss on $j$ with respect to the last layer, the expectation being over the
# labels $y$ the point might have. It then looks for a small weighted set $S$ of $b$ points
# ($w \ge 0$, exactly $b$ non-zero weights) that minimises
#
# $$
# \underbrace{\Big\| \tfrac1n \textstyle\sum_j e_j - \tfrac1b \sum_{j \in S} w_j e_j \Big\|^2}_{\text{bias: does the batch represent the pool?}}
# \;+\; \beta \|w - 1\|^2
# \;-\; \alpha \underbrace{\textstyle\sum_{j \in S} \sigma_j^2}_{\text{variance removed by labelling } S}
# $$
#
# * The **bias** (representation) term asks that training on the weighted batch moves the
#   model the way training on the whole pool would. A batch of twenty near-duplicates fails
#   it: their gradients all point the same way.
# * The **variance** (uncertainty) term rewards points whose label we cannot predict:
#   $\sigma_j$ is the spread of the gradient over the possible labels of $j$. Labelling such a
#   point removes that spread.
# * $\alpha$ trades the two (`alpha`, default 0.1; with `alpha_scale="pool"` it is rescaled by
#   $n^2/b$ so the same value means the same trade-off on any pool and batch size). It can
#   also be multiplied by $\kappa$, the model's chance-corrected accuracy on labeled points
#   it did not train on (0 at chance, 1 when every held-out label is predicted): $\sigma_j$
#   is computed under the model's own label distribution, which is only worth trusting as far
#   as the model predicts labels it has not seen. The default (`alpha_reliability="auto"`)
#   does so only where the model already holds such predictions (a bootstrap forest's
#   out-of-bag predictions, a skorch net's validation split) and never refits the model: the
#   logistic regression here keeps $\alpha$ as given. `alpha_reliability="held-out"`
#   cross-validates three copies of any model on the labeled set (three fits per query).
# * The **temperature** $T$ decides which label distribution the expectations use,
#   $P_j = \mathrm{softmax}(z_j / T)$. At $T = 1$ (the model's own probabilities) every $e_j$
#   is zero: the bias term vanishes and the sampler is pure uncertainty sampling. As
#   $T \to 0$ the labels are the model's guesses, $\sigma_j = 0$, and the sampler is pure
#   representation (BADGE's embedding). The default $T = 0.01$ sits close to the
#   representation end with a little uncertainty left in $\sigma_j$; it was the best value in
#   the ablation on this very data set (`BENCHMARKS.md`).
#
# Greedy (Algorithm 1) adds one point per step; proximal IHT (Algorithm 2) improves the whole
# batch per iteration. Notebook 4 opens both up on a 2-D pool you can see.
#
# The fitted sampler keeps what it computed:

# %%
print(f"temperature used:  {sparse_greedy.temperature_}  ({sparse_greedy.temperature_source_})")
print(f"reliability: {sparse_greedy.reliability_source_}")
print(f"alpha given to the problem (alpha * n^2 / b): {sparse_greedy.alpha_effective_:.4g}")
print(f"objective of the batch: {sparse_greedy.objective_:.4g}")
print(f"embedding: {sparse_greedy.embedding_time_ * 1e3:.1f} ms, "
      f"solver: {sparse_greedy.solve_time_ * 1e3:.1f} ms")

# %% [markdown]
# ### Temperature and alpha are real knobs
#
# The two knobs decide how much of the batch is "uncertainty" and how much "representation".
# To see it, we compute the embedding ourselves (`adapters.last_layer_outputs` finds the
# features and logits of the pipeline's last layer, `gradient_embedding` turns them into
# $e_j$ and $\sigma_j$) and compare each batch with the **pure-uncertainty batch**: the 20
# points of largest $\sigma_j$. Note that $\sigma_j$ is the spread of a *gradient*, so it
# grows with the size of the point's features as well as with the uncertainty of its label:
# it is not the same ranking as predictive entropy.
#
# The table counts, for a grid of temperatures and alphas, how many of the 20 chosen points
# are in that pure-uncertainty batch, and how many different digits the batch holds.

# %%
from sparse_query import adapters
from sparse_query.embeddings import gradient_embedding

last = adapters.last_layer_outputs(learner.estimator, X_pool[unlabeled])
print(f"{'T':>5} {'alpha':>6}   in top-sigma batch   digits in batch")
for T in [1.0, 0.1, 0.0]:
    sigma = gradient_embedding(last.logits, last.features, temperature=T).sigma.numpy()
    top_sigma = set(np.argsort(-sigma, kind="stable")[:BATCH])
    for alpha in [1.0, 0.01, 0.0]:
        s = SparseApproxSampler(solver="greedy", temperature=T, alpha=alpha, device="cpu")
        batch = s.fit_query(X_pool[unlabeled], learner.estimator, BATCH)
        n_digits = len(np.unique(y_pool[unlabeled][batch]))
        print(f"{T:5} {alpha:6}   {len(top_sigma & set(batch)):12d}/{BATCH}   {n_digits:15d}")

# %% [markdown]
# How to read it:
#
# * At $T = 1$ every $e_j$ is zero, the bias term is constant, and any $\alpha > 0$ gives
#   exactly the top-$\sigma$ batch: pure uncertainty sampling. (At $\alpha = 0$ nothing is
#   left to optimise and the order of the pool decides.)
# * At $T = 0$ every $\sigma_j$ is zero, so $\alpha$ has no effect: pure representation.
# * In between, $\alpha$ slides from one to the other. At $T = 0.1$ and $\alpha = 1$ the
#   variance term dominates on this pool (the batch is the top-$\sigma$ points, 20 of 20); the
#   default ($T = 0.01$, $\alpha = 0.1$) hands more of the batch to representation, which
#   buys more diverse batches. Which mix wins depends on the data and the budget: the loop
#   below compares the default with $\alpha = 0.01$.

# %% [markdown]
# ## The active-learning loop
#
# Each round: query a batch from the points still unlabeled, reveal their labels, **retrain
# the model from scratch** on everything labeled so far, and record the test accuracy.
# modAL's `teach` does the retraining: by default it refits the estimator on all of
# `X_training`. Retraining from scratch (rather than continuing from the previous fit) is the
# protocol of the paper: it makes every point on the learning curve the model you would
# actually deploy with that many labels, independent of the order the labels came in.
#
# We compare five strategies, each from the same random start sets:
#
# * `sparse greedy` and `sparse IHT`: this library with its defaults, and greedy with a
#   smaller `alpha` (more representation);
# * `random`: the baseline every strategy must beat;
# * `modAL uncertainty batch`: modAL's `uncertainty_batch_sampling` (Cardoso et al.'s ranked
#   batch mode), which also mixes uncertainty with diversity, by a different recipe.

# %%
def run_active_learning(strategy, seed):
    """Labels, test accuracies and seconds per query of one run."""
    start = np.random.default_rng(seed).choice(len(X_pool), SEED_SIZE, replace=False)
    labeled = np.zeros(len(X_pool), dtype=bool)
    labeled[start] = True
    learner = ActiveLearner(estimator=make_model(), query_strategy=strategy,
                            X_training=X_pool[start], y_training=y_pool[start])
    n_labels, accuracy, seconds = [SEED_SIZE], [learner.score(X_test, y_test)], []
    for _ in range(ROUNDS):
        pool_idx = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        q, _ = learner.query(X_pool[pool_idx], n_instances=BATCH)
        seconds.append(time.perf_counter() - t0)
        chosen = pool_idx[q]
        learner.teach(X_pool[chosen], y_pool[chosen])   # refits from scratch on all labels
        labeled[chosen] = True
        n_labels.append(labeled.sum())
        accuracy.append(learner.score(X_test, y_test))
    return np.array(n_labels), np.array(accuracy), np.array(seconds)


strategies = {
    "sparse greedy": lambda seed: SparseApproxSampler("greedy", device="cpu", random_state=seed),
    "sparse IHT": lambda seed: SparseApproxSampler("iht", device="cpu", random_state=seed),
    "sparse greedy, alpha=0.01": lambda seed: SparseApproxSampler(
        "greedy", alpha=0.01, device="cpu", random_state=seed),
    "random": lambda seed: RandomSampling(random_state=seed),
    "modAL uncertainty batch": lambda seed: uncertainty_batch_sampling,
}
results = {}
for name, make_strategy in strategies.items():
    runs = [run_active_learning(make_strategy(seed), seed) for seed in SEEDS]
    results[name] = {
        "labels": runs[0][0],
        "accuracy": np.stack([r[1] for r in runs]),
        "seconds": np.concatenate([r[2] for r in runs]),
    }
    print(f"{name:>26}: final accuracy {results[name]['accuracy'][:, -1].mean():.3f}")

# %% [markdown]
# ## Reading the learning curve
#
# Each line is the test accuracy after retraining, against the number of labels bought; the
# band is the spread (min to max) over the repetitions. A better strategy is a curve that is
# **higher earlier**: it reaches the same accuracy with fewer labels. The area under the curve
# (AUC, normalised by the label range so that it reads like an accuracy) summarises a whole
# curve in one number. Differences of a few tenths of a point are within the noise of three
# seeds; differences against random sampling usually are not.

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for name, r in results.items():
    mean = r["accuracy"].mean(0)
    ax.plot(r["labels"], mean, marker="o", ms=3, label=name)
    if len(SEEDS) > 1:
        ax.fill_between(r["labels"], r["accuracy"].min(0), r["accuracy"].max(0), alpha=0.15)
ax.set_xlabel("number of labels")
ax.set_ylabel("test accuracy")
ax.set_title(f"digits, logistic regression ({len(SEEDS)} seed(s))")
ax.legend()
plt.show()

print(f"{'strategy':>26}  {'AUC':>6}  {'ms / query':>10}")
for name, r in results.items():
    labels = r["labels"]
    auc = np.trapezoid(r["accuracy"].mean(0), labels) / (labels[-1] - labels[0])
    print(f"{name:>26}  {auc:6.3f}  {1e3 * r['seconds'].mean():10.1f}")

# %% [markdown]
# ## Take-aways
#
# * Plugging in the sampler is one argument: `ActiveLearner(estimator, query_strategy=sparse_greedy)`.
#   It works on any scikit-learn classifier with a linear last layer (logistic regression,
#   `SGDClassifier(loss="log_loss")`, `MLPClassifier`, pipelines ending in one), and on tree
#   ensembles and modAL committees too: the default `embedding="auto"` picks the embedding by
#   model family (leaf-indicator gradients for tree ensembles, the members' gradients for a
#   committee whose members have them); `embedding="posterior"` uses posterior draws instead
#   (notebook 3).
# * Without modAL: `SparseApproxSampler(...).fit(X_pool, fitted_model).query(b)` returns `b`
#   pool indices.
# * The knobs that matter are the temperature (uncertainty ↔ representation) and `alpha`
#   (scaled by how well the model predicts held-out labels where the model measures that
#   itself, or with `alpha_reliability="held-out"`);
#   `solver="iht"` scales better with the batch size than `"greedy"` (notebook 4), and the
#   default `solver="auto"` picks whichever costs fewer operations for the pool and batch.
