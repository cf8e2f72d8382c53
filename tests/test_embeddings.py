"""Embeddings against brute force: autograd per-sample gradients and explicit loops over classes."""
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from torch.testing import assert_close

from sparse_query.embeddings import (
    GradientEmbedding,
    PosteriorEmbedding,
    estimate_temperature,
    fit_temperature,
    gradient_embedding,
    posterior_embedding,
)


# ---------------------------------------------------------------------------- oracles
def _label_distribution(z, T):
    if T == 0:
        return torch.nn.functional.one_hot(z.argmax(1), z.shape[1]).to(z.dtype)
    return torch.softmax(z / T, dim=1)


def _autograd_embedding(h, layer, T):
    """e_j and sigma_j from autograd gradients of CE w.r.t. (W, c), enumerating every label."""
    n = h.shape[0]
    z = layer(h).detach()
    P = _label_distribution(z, T)
    K = z.shape[1]
    e_rows, sigma = [], []
    for j in range(n):
        grads = []
        for y in range(K):
            layer.zero_grad()
            loss = torch.nn.functional.cross_entropy(layer(h[j:j + 1]), torch.tensor([y]))
            loss.backward()
            g = layer.weight.grad.clone()
            if layer.bias is not None:
                g = torch.cat([g, layer.bias.grad.clone()[:, None]], dim=1)
            grads.append(g.flatten())
        G = torch.stack(grads)                                   # (K, m)
        e_j = (P[j][:, None] * G).sum(0)
        s_j = sum(P[j, y] * torch.linalg.vector_norm(G[y] - e_j) for y in range(K)) / n
        e_rows.append(e_j)
        sigma.append(s_j)
    return torch.stack(e_rows), torch.stack(sigma), z


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("T", [0.0, 0.3, 1.0, 2.5])
def test_gradient_embedding_matches_autograd(bias, T):
    gen = torch.Generator().manual_seed(int(T * 10) + bias)
    n, d, K = 6, 3, 4
    h = torch.randn(n, d, generator=gen, dtype=torch.float64)
    layer = torch.nn.Linear(d, K, bias=bias).double()
    with torch.no_grad():
        layer.weight.copy_(2.0 * torch.randn(K, d, generator=gen, dtype=torch.float64))
        if bias:
            layer.bias.copy_(torch.randn(K, generator=gen, dtype=torch.float64))
    e_ref, sigma_ref, z = _autograd_embedding(h, layer, T)
    emb = gradient_embedding(z, h, temperature=T, bias=bias)
    assert isinstance(emb, GradientEmbedding)
    assert emb.h.shape == (n, d + bias)
    assert emb.dim == K * (d + bias) and emb.n_samples == n
    assert_close(emb.dense(), e_ref, rtol=1e-10, atol=1e-12)
    assert_close(emb.sigma, sigma_ref, rtol=1e-10, atol=1e-12)
    assert_close(emb.probs, _label_distribution(z, T))
    assert emb.temperature == T


def test_temperature_one_is_pure_uncertainty():
    gen = torch.Generator().manual_seed(1)
    z, h = torch.randn(20, 5, generator=gen), torch.randn(20, 7, generator=gen)
    emb = gradient_embedding(z, h, temperature=1.0)
    assert torch.count_nonzero(emb.a) == 0
    assert torch.count_nonzero(emb.dense()) == 0
    assert bool((emb.sigma > 0).all())


def test_temperature_zero_is_badge():
    gen = torch.Generator().manual_seed(2)
    z, h = torch.randn(20, 5, generator=gen), torch.randn(20, 7, generator=gen)
    p = torch.softmax(z, 1)
    onehot = torch.nn.functional.one_hot(z.argmax(1), 5).float()
    h1 = torch.cat([h, torch.ones(20, 1)], 1)
    badge = ((p - onehot)[:, :, None] * h1[:, None, :]).reshape(20, -1)
    emb = gradient_embedding(z, h, temperature=0)
    assert_close(emb.dense(), badge)
    assert_close(emb.sigma, torch.zeros(20))
    assert_close(emb.h, h1)


def test_temperature_zero_ties_go_to_lowest_class():
    z = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    emb = gradient_embedding(z, torch.ones(2, 1), temperature=0)
    assert_close(emb.probs, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_small_temperature_approaches_one_hot_limit():
    gen = torch.Generator().manual_seed(3)
    z, h = torch.randn(10, 4, generator=gen, dtype=torch.float64), torch.randn(10, 3, generator=gen,
                                                                                dtype=torch.float64)
    lim = gradient_embedding(z, h, temperature=0)
    near = gradient_embedding(z, h, temperature=1e-4)
    assert_close(near.dense(), lim.dense(), rtol=0, atol=1e-8)
    assert_close(near.sigma, lim.sigma, rtol=0, atol=1e-8)


def test_gradient_chunking_and_dtypes():
    rng = np.random.default_rng(4)
    z, h = rng.normal(size=(13, 3)), rng.normal(size=(13, 2))
    whole = gradient_embedding(z, h, temperature=0.5)
    parts = gradient_embedding(z, h, temperature=0.5, chunk_size=4)
    assert whole.a.dtype == torch.float64                      # numpy float64 kept
    for name in ("a", "h", "sigma", "probs"):
        assert_close(getattr(parts, name), getattr(whole, name))
    f32 = gradient_embedding(z.astype(np.float32), h.astype(np.float32), temperature=0.5)
    assert f32.a.dtype == torch.float32 and f32.sigma.dtype == torch.float32
    assert_allclose(f32.sigma.numpy(), whole.sigma.numpy(), rtol=1e-5)
    ints = gradient_embedding(np.array([[1, 0], [0, 2]]), np.array([[1], [2]]), temperature=0.5)
    assert ints.a.dtype == torch.float32


def test_sigma_closed_form_by_hand():
    # K = 2, P = (0.75, 0.25): ||P - e_0|| = ||P - e_1|| = 0.25 * sqrt(2) * ... computed directly
    z = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.float64)
    h = torch.tensor([[3.0]], dtype=torch.float64)              # [h, 1] has norm sqrt(10)
    emb = gradient_embedding(z, h, temperature=1.0)
    d0 = math.hypot(0.75 - 1.0, 0.25)
    d1 = math.hypot(0.75, 0.25 - 1.0)
    assert_allclose(float(emb.sigma[0]), math.sqrt(10) * (0.75 * d0 + 0.25 * d1))


def test_sigma_float32_keeps_relative_precision_near_one_hot():
    # confident rows: ||P - onehot(argmax)|| is tiny and must not drown in cancellation
    rng = np.random.default_rng(9)
    z, h = 12.0 * rng.normal(size=(200, 10)), rng.normal(size=(200, 5))
    ref = gradient_embedding(z, h, temperature=1.0).sigma.numpy()
    s32 = gradient_embedding(z.astype(np.float32), h.astype(np.float32), temperature=1.0)
    assert ref.min() < 1e-9                                          # the regime in question
    assert_allclose(s32.sigma.numpy(), ref, rtol=1e-4)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(logits=np.zeros(4)), ValueError, "logits must be 2-D"),
    (dict(features=np.zeros((3, 2))), ValueError, "features has 3 rows but logits has 4"),
    (dict(logits=np.zeros((4, 1))), ValueError, "n_classes >= 2"),
    (dict(logits=np.zeros((0, 3)), features=np.zeros((0, 2))), ValueError, "no rows"),
    (dict(logits=np.array([[0, np.nan, 0]] * 4)), ValueError, "logits contains NaN or inf"),
    (dict(features=np.array([[0, np.inf]] * 4)), ValueError, "features contains NaN or inf"),
    (dict(features=np.array([["a", "b"]] * 4)), TypeError, "features must be a numeric"),
    (dict(temperature=-0.5), ValueError, r"temperature=-0.5 must be >= 0"),
    (dict(temperature=float("nan")), ValueError, "temperature=nan must be finite"),
    (dict(temperature="auto"), TypeError, "estimate_temperature"),
    (dict(bias="yes"), TypeError, "bias must be True or False"),
    (dict(chunk_size=0), ValueError, "chunk_size=0 must be >= 1"),
    (dict(chunk_size=2.5), TypeError, "chunk_size must be an integer"),
])
def test_gradient_embedding_bad_inputs(kwargs, exc, match):
    args = dict(logits=np.zeros((4, 3)), features=np.zeros((4, 2)))
    args.update(kwargs)
    logits, features = args.pop("logits"), args.pop("features")
    with pytest.raises(exc, match=match):
        gradient_embedding(logits, features, **args)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), K=st.integers(2, 5), d=st.integers(1, 4),
       T=st.sampled_from([0.0, 0.1, 0.7, 1.0, 3.0]), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_gradient_embedding_properties(n, K, d, T, seed, scale):
    rng = np.random.default_rng(seed)
    z, h = scale * rng.normal(size=(n, K)), rng.normal(size=(n, d))
    emb = gradient_embedding(z, h, temperature=T)
    assert bool(torch.isfinite(emb.dense()).all()) and bool((emb.sigma >= 0).all())
    assert_allclose(emb.probs.sum(1).numpy(), 1.0, rtol=1e-12)
    perm = rng.permutation(n)
    emb_p = gradient_embedding(z[perm], h[perm], temperature=T)
    assert_close(emb_p.a, emb.a[perm])
    assert_close(emb_p.h, emb.h[perm])
    assert_close(emb_p.sigma, emb.sigma[perm])


# ---------------------------------------------------------------------------- posterior
def _loop_posterior(p, eps):
    """Plain-Python loops over j, y, i of SPEC eq. 13."""
    M, n, K = p.shape
    e = np.zeros((n, M))
    sigma = np.zeros(n)
    P = p.mean(0)
    for j in range(n):
        g = np.zeros((K, M))
        for y in range(K):
            losses = [-math.log(max(p[i, j, y], eps)) for i in range(M)]
            mean = sum(losses) / M
            for i in range(M):
                g[y, i] = (losses[i] - mean) / math.sqrt(M)
        for y in range(K):
            e[j] += P[j, y] * g[y]
        for y in range(K):
            sigma[j] += P[j, y] * math.sqrt(sum((g[y, i] - e[j, i]) ** 2 for i in range(M)))
        sigma[j] /= n
    return e, sigma, P


@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
def test_posterior_embedding_matches_loops(chunk_size):
    rng = np.random.default_rng(5)
    logits = 2.0 * rng.normal(size=(4, 5, 3))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p[0, 0] = [1.0, 0.0, 0.0]                                     # exercises the clamp
    e_ref, s_ref, P_ref = _loop_posterior(p, 1e-12)
    emb = posterior_embedding(p, chunk_size=chunk_size)
    assert isinstance(emb, PosteriorEmbedding)
    assert emb.e.dtype == torch.float64 and emb.dim == 4 and emb.n_samples == 5
    assert_allclose(emb.e.numpy(), e_ref, rtol=1e-10, atol=1e-12)
    assert_allclose(emb.sigma.numpy(), s_ref, rtol=1e-10, atol=1e-12)
    assert_allclose(emb.probs.numpy(), P_ref, rtol=1e-12)
    assert_close(emb.dense(), emb.e)


def test_posterior_eps_changes_clamped_losses():
    p = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    a = posterior_embedding(p, eps=1e-12)
    b = posterior_embedding(p, eps=1e-3)
    e_ref, s_ref, _ = _loop_posterior(p, 1e-3)
    assert_allclose(b.e.numpy(), e_ref, rtol=1e-10)
    assert float(a.sigma[0]) > float(b.sigma[0]) > 0


def test_posterior_single_draw_warns_and_is_zero():
    p = torch.softmax(torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(0)), -1)
    with pytest.warns(UserWarning, match="single posterior draw"):
        emb = posterior_embedding(p)
    assert_close(emb.e, torch.zeros(6, 1))
    assert_close(emb.sigma, torch.zeros(6))
    assert_close(emb.probs, p[0])


def test_posterior_identical_draws_give_zero():
    p = torch.softmax(torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(0)), -1)
    emb = posterior_embedding(p.expand(5, 6, 3))
    assert_close(emb.e, torch.zeros(6, 5))
    assert_close(emb.sigma, torch.zeros(6))


@pytest.mark.parametrize("probs, kwargs, exc, match", [
    (np.full((4, 3), 1 / 3), {}, ValueError, r"probs\[None\]"),
    (np.full((2, 4, 1), 1.0), {}, ValueError, "n_classes >= 2"),
    (np.full((0, 4, 3), 1 / 3), {}, ValueError, "at least one draw"),
    (np.full((2, 4, 3), 2.0), {}, ValueError, r"probabilities in \[0, 1\].*not logits"),
    (np.full((2, 4, 3), 0.2), {}, ValueError, "sum to 1 over the class axis"),
    (np.full((2, 4, 3), np.nan), {}, ValueError, "probs contains NaN or inf"),
    (np.full((2, 4, 3), 1 / 3), dict(eps=0.0), ValueError, "eps=0.0 must be > 0"),
    (np.full((2, 4, 3), 1 / 3), dict(eps=2.0), ValueError, "eps=2.0 must be <= 1"),
    (np.full((2, 4, 3), 1 / 3), dict(chunk_size=0), ValueError, "chunk_size=0 must be >= 1"),
    (np.full((2, 4, 3), 1 / 3), dict(atol=-1.0), ValueError, "atol=-1.0 must be >= 0"),
])
def test_posterior_embedding_bad_inputs(probs, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        posterior_embedding(probs, **kwargs)


@settings(max_examples=30, deadline=None)
@given(M=st.integers(2, 6), n=st.integers(1, 8), K=st.integers(2, 4), seed=st.integers(0, 2**16),
       scale=st.sampled_from([0.1, 1.0, 50.0]))
def test_posterior_embedding_properties(M, n, K, seed, scale):
    rng = np.random.default_rng(seed)
    p = torch.softmax(torch.from_numpy(scale * rng.normal(size=(M, n, K))).float(), -1)
    emb = posterior_embedding(p)
    assert bool(torch.isfinite(emb.e).all()) and bool((emb.sigma >= 0).all())
    # permuting the pool permutes the rows
    perm = torch.from_numpy(rng.permutation(n))
    emb_p = posterior_embedding(p[:, perm])
    assert_close(emb_p.e, emb.e[perm])
    assert_close(emb_p.sigma, emb.sigma[perm])
    # permuting the draws permutes e's columns and leaves sigma unchanged
    dperm = torch.from_numpy(rng.permutation(M))
    emb_d = posterior_embedding(p[dperm])
    assert_close(emb_d.e, emb.e[:, dperm], rtol=1e-4, atol=1e-5)
    assert_close(emb_d.sigma, emb.sigma, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("T_true", [0.5, 2.0])
def test_fit_temperature_recovers_known_temperature(T_true):
    gen = torch.Generator().manual_seed(7)
    z = 3.0 * torch.randn(4000, 6, generator=gen, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / T_true, 1), 1, generator=gen).squeeze(1)
    T = fit_temperature(z, y)
    assert_allclose(T, T_true, rtol=0.05)


def test_fit_temperature_is_the_nll_minimiser():
    gen = torch.Generator().manual_seed(8)
    z = 2.0 * torch.randn(300, 4, generator=gen, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / 1.3, 1), 1, generator=gen).squeeze(1)
    T = fit_temperature(z, y.numpy())
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2001))
    nll = [float(torch.nn.functional.cross_entropy(z / t, y)) for t in grid]
    assert_allclose(T, grid[int(np.argmin(nll))], rtol=5e-3)


def test_fit_temperature_at_bound_warns():
    z = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    with pytest.warns(UserWarning, match="lies on bounds"):
        T = fit_temperature(z, [0, 1], bounds=(0.1, 5.0))
    assert T == pytest.approx(0.1)


@pytest.mark.parametrize("y, kwargs, match", [
    ([0, 1, 2], {}, "y has 3 labels but logits has 4 rows"),
    ([0, 1, 1, 3], {}, r"class indices must be in \[0, 2\]"),
    ([0, 1, 1, -1], {}, r"class indices must be in \[0, 2\]"),
    ([0.5, 1, 1, 0], {}, "integer class indices"),
    (["a", "b", "a", "b"], {}, "Map labels to column indices"),
    ([[0, 1, 1, 0]], {}, "y must be 1-D"),
    ([0, 1, 1, 0], dict(bounds=(2.0, 1.0)), "low < high"),
    ([0, 1, 1, 0], dict(bounds=(0.0, 1.0)), r"bounds\[0\]=0.0 must be > 0"),
    ([0, 1, 1, 0], dict(bounds=3.0), "must be a pair"),
])
def test_fit_temperature_bad_inputs(y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(np.zeros((4, 3)), y, **kwargs)


def test_fit_temperature_bad_logits():
    with pytest.raises(ValueError, match="logits must be 2-D"):
        fit_temperature(np.zeros(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="n_classes >= 2"):
        fit_temperature(np.zeros((4, 1)), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="logits contains NaN"):
        fit_temperature(np.full((2, 2), np.nan), [0, 1])


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _lr():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500)


def _logits(est, X):
    return est.decision_function(X)


def test_estimate_temperature_validation_path(digits):
    X, y = digits
    est = _lr().fit(X[:150], y[:150])
    T, source = estimate_temperature(est, X[:150], y[:150], logits_fn=_logits,
                                     validation=(X[150:600], y[150:600]))
    assert source == "validation"
    assert_allclose(T, fit_temperature(est.decision_function(X[150:600]), y[150:600]), rtol=1e-9)
    # held-out labels the model has no column for are dropped, not an error
    sub = y[:150] < 7
    est7 = _lr().fit(X[:150][sub], y[:150][sub])
    T7, source7 = estimate_temperature(est7, X[:150], y[:150], logits_fn=_logits,
                                       validation=(X[150:600], y[150:600]))
    keep = y[150:600] < 7
    assert source7 == "validation"
    assert_allclose(T7, fit_temperature(est7.decision_function(X[150:600][keep]),
                                        y[150:600][keep]), rtol=1e-9)


def test_estimate_temperature_held_out_path(digits):
    X, y = digits
    perm = np.random.default_rng(0).permutation(len(y))
    L, V = perm[:200], perm[200:]
    T, source = estimate_temperature(_lr(), X[L], y[L], logits_fn=_logits, random_state=0)
    assert source == "held-out"
    T2, _ = estimate_temperature(_lr(), X[L], y[L], logits_fn=_logits, random_state=0)
    assert T == T2                                                  # seeded: deterministic
    # arbitrary class labels map through classes_ (same order, same split, same T)
    names = np.array([f"digit{k}" for k in y[L]])
    T_names, _ = estimate_temperature(_lr(), X[L], names, logits_fn=_logits, random_state=0)
    assert_allclose(T_names, T, rtol=1e-9)
    # the temperature of a model fitted on all 200 and calibrated on the 1,597 others, to
    # within the noise of a 60-point held-out set (measured: single splits miss by up to ~2.5x)
    ref = fit_temperature(_lr().fit(X[L], y[L]).decision_function(X[V]), y[V])
    assert 0.3 < T / ref < 3.0
    assert 0.06 < T < 10.0                                          # not stuck on a bound
    # torch and list inputs go through the same split
    T_t, _ = estimate_temperature(_lr(), torch.from_numpy(X[L]), y[L], logits_fn=_logits,
                                  random_state=0)
    assert_allclose(T_t, T, rtol=1e-9)


def test_estimate_temperature_perfect_held_out_gives_lower_bound(digits):
    # the first 200 digits are easy: the held-out 60 are all classified correctly, the NLL
    # keeps falling as T -> 0 and the answer is the lower bound, without a warning
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T, source = estimate_temperature(_lr(), X[:200], y[:200], logits_fn=_logits,
                                         random_state=0, bounds=(0.07, 20.0))
    assert source == "held-out"
    assert T == pytest.approx(0.07)


class _Unfittable:
    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y):
        raise RuntimeError("cannot fit this")


def test_estimate_temperature_fallbacks(digits):
    X, y = digits
    T, source = estimate_temperature(_lr(), X[:10], y[:10], logits_fn=_logits)
    assert (T, source) == (0.1, "fallback: only 10 labeled samples (min_samples=50)")
    T, source = estimate_temperature(_lr(), X[:10], y[:10], logits_fn=_logits, fallback=0.0)
    assert T == 0.0
    y_single = y[:80].copy()
    y_single[0] = 99                                               # a class with one member
    T, source = estimate_temperature(_lr(), X[:80], y_single, logits_fn=_logits)
    assert source == "fallback: class 99 has 1 labeled sample(s) (< 2)"
    T, source = estimate_temperature(_Unfittable(), X[:80], y[:80], logits_fn=_logits)
    assert T == 0.1
    assert source.startswith("fallback: the cloned estimator could not be fitted (RuntimeError")
    T, source = estimate_temperature(_lr(), X[:60], np.zeros(60, int), logits_fn=_logits)
    assert source == "fallback: the labeled set holds a single class"
    T, source = estimate_temperature(_lr(), X[:60], y[:60], logits_fn=_logits, test_size=0.1)
    assert source.startswith("fallback: a 0.1 split of 60 samples cannot hold all 10 classes")


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(logits_fn=None), TypeError, "logits_fn must be a callable"),
    (dict(test_size=1.5), ValueError, r"test_size=1.5 must be in \(0, 1\)"),
    (dict(test_size="0.3"), TypeError, "test_size must be a float"),
    (dict(min_samples=1), ValueError, "min_samples=1 must be >= 2"),
    (dict(fallback=-1.0), ValueError, "fallback=-1.0 must be >= 0"),
    (dict(bounds=(1.0, 1.0)), ValueError, "low < high"),
    (dict(validation=(1, 2, 3)), ValueError, r"validation must be a pair"),
    (dict(random_state=-3), ValueError, "random_state=-3 must be a non-negative"),
])
def test_estimate_temperature_bad_inputs(digits, kwargs, exc, match):
    X, y = digits
    args = dict(logits_fn=_logits)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        estimate_temperature(_lr(), X[:100], y[:100], **args)


def test_estimate_temperature_length_mismatch(digits):
    X, y = digits
    with pytest.raises(ValueError, match="X_labeled has 100 rows but y_labeled has 99"):
        estimate_temperature(_lr(), X[:100], y[:99], logits_fn=_logits)
    est = _lr().fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="validation has 50 inputs but 49 labels"):
        estimate_temperature(est, X[:100], y[:100], logits_fn=_logits,
                             validation=(X[:50], y[:49]))


def test_import_without_optional_libraries():
    code = ("import sys\n"
            "for m in ('skorch', 'modAL', 'tqdm', 'dask', 'distributed'): sys.modules[m] = None\n"
            "import sparse_query.embeddings, sparse_query.nn\n")
    subprocess.run([sys.executable, "-c", code], check=True)
