"""``variance_temperature``: sigma under its own label distribution, e_j under ``P_j`` (issue 14).

Oracles are explicit sums over the classes of the per-label gradients ``g_j(y)``, written out
as vectors (no shared helper of the library), on tiny problems.
"""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler
from sparse_query.embeddings import (
    class_block_gradient_embedding,
    committee_gradient_embedding,
    gradient_embedding,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def _softmax(z, T=1.0):
    if T == 0:
        out = np.zeros_like(z)
        out[np.arange(len(z)), z.argmax(1)] = 1.0
        return out
    u = z / T
    u = np.exp(u - u.max(1, keepdims=True))
    return u / u.sum(1, keepdims=True)


def _brute_sigma(grads, Q, n):
    """``(1/n) sum_y Q(y) ||g(y) - sum_y' Q(y') g(y')||`` from per-label gradient vectors.

    grads : (n, K, m) with ``grads[j, y]`` the gradient of point j's loss for label y.
    """
    mean = np.einsum("jy,jym->jm", Q, grads)
    dev = np.linalg.norm(grads - mean[:, None, :], axis=2)
    return (Q * dev).sum(1) / n


def _last_layer_grads(z, h):
    """``g_j(y) = (p_j - onehot(y)) (outer) [h_j, 1]`` for every y, as (n, K, K (d + 1))."""
    n, K = z.shape
    p = _softmax(z)
    ht = np.hstack([h, np.ones((n, 1))])
    eye = np.eye(K)
    return np.stack([np.stack([np.outer(p[j] - eye[y], ht[j]).ravel() for y in range(K)])
                     for j in range(n)])


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 4)) * 3
    z[0, :2] = z[0].max() + 1.0  # an exact tie between the top two classes
    h = rng.normal(size=(7, 3))
    return z, h


@pytest.mark.parametrize("T,Tv", [(0.01, 1.0), (0.01, 0.3), (0.1, 2.0), (0.0, 1.0), (1.0, 0.01)])
def test_sigma_is_the_spread_under_the_variance_distribution(tiny, T, Tv):
    z, h = tiny
    emb = gradient_embedding(torch.tensor(z), torch.tensor(h), temperature=T,
                             variance_temperature=Tv)
    n = len(z)
    grads = _last_layer_grads(z, h)
    assert_allclose(emb.sigma.numpy(), _brute_sigma(grads, _softmax(z, Tv), n), rtol=1e-10,
                    atol=1e-14)
    # e_j keeps the label distribution of `temperature`: e_j = E_{y~P_j} g_j(y)
    P = _softmax(z, T)
    assert_allclose(emb.probs.numpy(), P, rtol=1e-10, atol=1e-14)
    assert_allclose(emb.dense().numpy(), np.einsum("jy,jym->jm", P, grads), atol=1e-12)


def test_variance_temperature_one_is_the_models_own_distribution(tiny):
    z, h = tiny
    zt, ht = torch.tensor(z), torch.tensor(h)
    emb = gradient_embedding(zt, ht, temperature=0.01, variance_temperature=1.0)
    at_one = gradient_embedding(zt, ht, temperature=1.0)
    assert_allclose(emb.sigma.numpy(), at_one.sigma.numpy(), rtol=1e-12)
    assert (emb.sigma > 0).all()          # non-zero on every point, not only on the tie
    sharp = gradient_embedding(zt, ht, temperature=0.01)
    assert (sharp.sigma[1:] < 1e-10).all() and sharp.sigma[0] > 0.01   # only the tie


def test_none_and_equal_temperature_leave_the_embedding_unchanged(tiny):
    z, h = tiny
    zt, ht = torch.tensor(z), torch.tensor(h)
    ref = gradient_embedding(zt, ht, temperature=0.01)
    for vt in (None, 0.01):
        emb = gradient_embedding(zt, ht, temperature=0.01, variance_temperature=vt)
        torch.testing.assert_close(emb.sigma, ref.sigma, rtol=0, atol=0)
        torch.testing.assert_close(emb.a, ref.a, rtol=0, atol=0)
    # and the paper's formula itself at T = 0.01 (sigma under P_j)
    assert_allclose(ref.sigma.numpy(), _brute_sigma(_last_layer_grads(z, h), _softmax(z, 0.01),
                                                    len(z)), rtol=1e-10, atol=1e-14)


def test_sparse_features_match_dense(tiny):
    z, h = tiny
    h[h < 0] = 0.0
    dense = gradient_embedding(torch.tensor(z), torch.tensor(h), temperature=0.01,
                               variance_temperature=1.0)
    sparse = gradient_embedding(torch.tensor(z), sp.csr_matrix(h), temperature=0.01,
                                variance_temperature=1.0)
    assert_allclose(sparse.sigma.numpy(), dense.sigma.numpy(), rtol=1e-12)
    assert_allclose(sparse.a.numpy(), dense.a.numpy(), rtol=1e-12)


def test_committee_sigma_brute_force():
    rng = np.random.default_rng(1)
    n, K, M = 6, 3, 2
    zs = [rng.normal(size=(n, K)) * 2 for _ in range(M)]
    hs = [rng.normal(size=(n, 2 + m)) for m in range(M)]
    Tv = 1.0
    _, sigma, P = committee_gradient_embedding([torch.tensor(z) for z in zs],
                                               [torch.tensor(h) for h in hs], temperature=0.01,
                                               biases=[True, False], variance_temperature=Tv)
    ps = [_softmax(z) for z in zs]
    Pm = np.mean(ps, axis=0)
    eye = np.eye(K)
    hts = [np.hstack([hs[0], np.ones((n, 1))]), hs[1]]
    grads = np.stack([np.stack([np.concatenate([np.outer(ps[m][j] - eye[y], hts[m][j]).ravel()
                                                for m in range(M)]) / M for y in range(K)])
                      for j in range(n)])
    Qv = _softmax(np.log(Pm), Tv)            # = Pm at Tv = 1
    assert_allclose(Qv, Pm, rtol=1e-12)
    assert_allclose(sigma.numpy(), _brute_sigma(grads, Qv, n), rtol=1e-10)
    _, sigma0, _ = committee_gradient_embedding([torch.tensor(z) for z in zs],
                                                [torch.tensor(h) for h in hs], temperature=0.01,
                                                biases=[True, False])
    assert_allclose(sigma0.numpy(), _brute_sigma(grads, _softmax(np.log(Pm), 0.01), n),
                    rtol=1e-10, atol=1e-14)


def test_class_block_sigma_brute_force():
    rng = np.random.default_rng(2)
    n, K = 5, 3
    z = rng.normal(size=(n, K)) * 2
    H = (rng.random(size=(n, 7)) < 0.5).astype(float)
    column_class = np.array([0, 0, 1, 1, 1, 2, 2])
    _, sigma = class_block_gradient_embedding(torch.tensor(z), torch.tensor(H), column_class,
                                              temperature=0.01, bias=True,
                                              variance_temperature=0.5)
    p, eye = _softmax(z), np.eye(K)
    blocks = [np.hstack([H[:, column_class == k], np.ones((n, 1))]) for k in range(K)]
    grads = np.stack([np.stack([np.concatenate([(p[j, k] - eye[y, k]) * blocks[k][j]
                                                for k in range(K)]) for y in range(K)])
                      for j in range(n)])
    assert_allclose(sigma.numpy(), _brute_sigma(grads, _softmax(z, 0.5), n), rtol=1e-10)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_sampler_default_path_unchanged(digits):
    X, y = digits
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    pool = X[60:400]
    kw = dict(solver="greedy", device="cpu", dtype="float64", random_state=0)
    a = SparseApproxSampler(**kw).fit(pool, model)
    b = SparseApproxSampler(variance_temperature=0.01, **kw).fit(pool, model)
    assert SparseApproxSampler().variance_temperature is None
    torch.testing.assert_close(a._sigma, b._sigma, rtol=0, atol=0)
    assert a.query(10).tolist() == b.query(10).tolist()
    assert a.variance_temperature_ == a.temperature_ == 0.01
    # the default's sigma is the paper's (under P_j = softmax(z / 0.01))
    z = model.decision_function(pool)
    grads = _last_layer_grads(z, pool)
    assert_allclose(a._sigma.numpy(), _brute_sigma(grads, _softmax(z, 0.01), len(pool)),
                    rtol=1e-8, atol=1e-15)


def test_sampler_variance_temperature_on_a_linear_model(digits):
    X, y = digits
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    pool = X[60:200]
    s = SparseApproxSampler(solver="greedy", device="cpu", dtype="float64",
                            variance_temperature=1.0).fit(pool, model)
    z = model.decision_function(pool)
    assert_allclose(s._sigma.numpy(), _brute_sigma(_last_layer_grads(z, pool), _softmax(z),
                                                   len(pool)), rtol=1e-8)
    assert s.variance_temperature_ == 1.0 and s.temperature_ == 0.01
    idx = s.query(10)
    assert len(set(idx.tolist())) == 10


def test_sampler_variance_temperature_on_a_forest(digits):
    X, y = digits
    rf = RandomForestClassifier(10, random_state=0).fit(X[:80], y[:80])
    pool = X[80:300]
    s = SparseApproxSampler(solver="greedy", device="cpu", dtype="float64",
                            variance_temperature=1.0).fit(pool, rf)
    assert s.embedding_kind_ == "leaf-gradient"
    # leaf indicators: one 1 per tree and no bias column for a forest, so ||h|| = sqrt(10);
    # the forest's probabilities are its predict_proba
    p = rf.predict_proba(pool)
    eye = np.eye(p.shape[1])
    dist = np.array([sum(p[j, k] * np.linalg.norm(p[j] - eye[k]) for k in range(p.shape[1]))
                     for j in range(len(p))])
    assert_allclose(s._sigma.numpy(), np.sqrt(10.0) * dist / len(pool), rtol=1e-6, atol=1e-12)


def test_sampler_variance_temperature_on_a_committee(digits):
    modAL = pytest.importorskip("modAL")
    X, y = digits
    learners = [modAL.models.ActiveLearner(LogisticRegression(max_iter=300, C=c),
                                           X_training=X[:60], y_training=y[:60])
                for c in (0.1, 1.0)]
    com = modAL.models.Committee(learner_list=learners)
    pool = X[60:200]
    s = SparseApproxSampler(solver="greedy", device="cpu", dtype="float64",
                            variance_temperature=1.0).fit(pool, com)
    assert s.embedding_kind_ == "committee-gradient"
    P = com.predict_proba(pool)
    eye = np.eye(P.shape[1])
    dist = np.array([sum(P[j, k] * np.linalg.norm(P[j] - eye[k]) for k in range(P.shape[1]))
                     for j in range(len(P))])
    hnorm = np.sqrt(2 * ((pool * pool).sum(1) + 1.0))      # two members, each [x, 1]
    assert_allclose(s._sigma.numpy(), hnorm / 2 * dist / len(pool), rtol=1e-6)


@pytest.mark.parametrize("value,exc,match", [
    ("auto", ValueError, r"variance_temperature='auto' must be None .* or a number >= 0"),
    ("1.0", ValueError, r"variance_temperature='1.0' must be None"),
    (-0.5, ValueError, r"variance_temperature=-0.5 must be >= 0"),
    (float("nan"), ValueError, r"variance_temperature=nan must be finite"),
    ([1.0], TypeError, r"variance_temperature must be a real number"),
])
def test_sampler_rejects_bad_variance_temperature(digits, value, exc, match):
    X, y = digits
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    with pytest.raises(exc, match=match):
        SparseApproxSampler(variance_temperature=value).fit(X[60:100], model)


def test_gradient_embedding_rejects_bad_variance_temperature(tiny):
    z, h = tiny
    with pytest.raises(TypeError, match=r"variance_temperature='auto' must be None"):
        gradient_embedding(torch.tensor(z), torch.tensor(h), variance_temperature="auto")
    with pytest.raises(ValueError, match=r"variance_temperature=-1.0 must be >= 0"):
        gradient_embedding(torch.tensor(z), torch.tensor(h), variance_temperature=-1)


def test_posterior_embedding_refuses_variance_temperature(digits):
    X, y = digits
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    s = SparseApproxSampler(embedding="posterior", variance_temperature=1.0)
    with pytest.raises(ValueError, match=r"variance_temperature=1.0 applies to the gradient, "
                                         r"leaf-gradient and committee-gradient embeddings only"):
        s.fit(X[60:100], model)


def test_dask_pool_takes_the_variance_temperature(digits, inproc_client):
    da = pytest.importorskip("dask.array")
    X, y = digits
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    pool = X[60:400]
    kw = dict(solver="greedy", device="cpu", dtype="float64", variance_temperature=1.0,
              random_state=0)
    local = SparseApproxSampler(**kw).fit(pool, model)
    remote = SparseApproxSampler(**kw).fit(da.from_array(pool, chunks=(100, -1)), model)
    assert_allclose(remote._sigma.numpy(), local._sigma.numpy(), rtol=1e-10)
    assert sorted(remote.query(8).tolist()) == sorted(local.query(8).tolist())


# -- alpha_reliability="held-out": alpha times the chance-corrected cross-validated accuracy --

def test_heldout_reliability_is_the_cross_validated_accuracy(digits):
    from sklearn.model_selection import KFold, cross_val_predict

    from sparse_query._utils import numpy_rng
    from sparse_query.embeddings.reliability import heldout_reliability

    X, y = digits
    Xl, yl = X[:45], y[:45]
    kappa, acc = heldout_reliability([LogisticRegression(max_iter=300)], Xl, yl, n_classes=None,
                                     random_state=3)
    seed = int(numpy_rng(3).integers(0, 2**31 - 1))
    pred = cross_val_predict(LogisticRegression(max_iter=300), Xl, yl,
                             cv=KFold(3, shuffle=True, random_state=seed))
    want = float(np.mean(pred == yl))
    assert acc == pytest.approx(want)
    assert kappa == pytest.approx(max(0.0, (want - 0.1) / 0.9))
    assert 0.0 < kappa < 1.0


def test_heldout_reliability_limits():
    from sklearn.dummy import DummyClassifier
    from sklearn.neighbors import KNeighborsClassifier

    from sparse_query.embeddings.reliability import heldout_reliability

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    X = y[:, None] * 100.0 + rng.normal(size=(30, 2))    # three far-apart clusters
    assert heldout_reliability([KNeighborsClassifier(1)], X, y, n_classes=3,
                               random_state=0) == (1.0, 1.0)
    # a constant prediction is at or below chance: kappa clipped to 0
    kappa, acc = heldout_reliability([DummyClassifier(strategy="most_frequent")], X, y,
                                     n_classes=3, random_state=0)
    assert kappa == 0.0 and acc <= 1 / 3 + 1e-12


def test_sampler_alpha_reliability_scales_alpha(digits):
    modAL = pytest.importorskip("modAL")
    X, y = digits
    al = modAL.models.ActiveLearner(LogisticRegression(max_iter=300), X_training=X[:60],
                                    y_training=y[:60])
    pool = X[60:300]
    s = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="held-out",
                            random_state=0)
    s.fit(pool, al)
    idx = s.query(10)
    assert 0.0 < s.reliability_ <= 1.0 and 0.0 < s.heldout_accuracy_ <= 1.0
    assert s.reliability_ == pytest.approx((s.heldout_accuracy_ - 0.1) / 0.9)
    assert s.alpha_effective_ == pytest.approx(0.1 * len(pool) ** 2 / 10 * s.reliability_)
    assert len(set(idx.tolist())) == 10
    # the same labels through fit's X_labeled / y_labeled on the bare estimator
    t = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="held-out",
                            random_state=0).fit(pool, al.estimator, X_labeled=X[:60],
                                                y_labeled=y[:60])
    assert t.reliability_ == s.reliability_
    sq = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="held-out-squared",
                             random_state=0).fit(pool, al)
    sq.query(10)
    assert sq.reliability_ == s.reliability_
    assert sq.alpha_effective_ == pytest.approx(0.1 * len(pool) ** 2 / 10 * s.reliability_ ** 2)
    plain = SparseApproxSampler(solver="greedy", device="cpu").fit(pool, al)
    assert plain.reliability_ is None
    plain.query(10)
    assert plain.alpha_effective_ == pytest.approx(0.1 * len(pool) ** 2 / 10)


def test_sampler_alpha_reliability_on_a_committee(digits):
    modAL = pytest.importorskip("modAL")
    X, y = digits
    learners = [modAL.models.ActiveLearner(m, X_training=X[:60], y_training=y[:60])
                for m in (LogisticRegression(max_iter=300), RandomForestClassifier(10,
                                                                                  random_state=0))]
    com = modAL.models.Committee(learner_list=learners)
    s = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="held-out",
                            random_state=0).fit(X[60:200], com)
    assert s.embedding_kind_ == "committee-gradient" and 0.0 < s.reliability_ <= 1.0


@pytest.mark.parametrize("value", ["cv", True, 1.0])
def test_sampler_rejects_bad_alpha_reliability(digits, value):
    X, y = digits
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"alpha_reliability=.* must be None \(alpha as given\), "
                                         r"'held-out' .* or 'held-out-squared'"):
        SparseApproxSampler(alpha_reliability=value).fit(X[60:100], model)


def test_alpha_reliability_needs_the_labeled_set(digits):
    from sparse_query.embeddings.reliability import ReliabilityError

    X, y = digits
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    s = SparseApproxSampler(alpha_reliability="held-out")
    with pytest.raises(ValueError, match=r"alpha_reliability='held-out' needs the labeled set"):
        s.fit(X[60:100], model)
    with pytest.raises(ReliabilityError, match=r"needs at least 6 labeled points .* got 4"):
        s.fit(X[60:100], model, X_labeled=X[:4], y_labeled=y[:4])


def test_heldout_reliability_on_a_net_with_more_outputs_than_classes_seen(digits):
    pytest.importorskip("skorch")
    from sparse_query.adapters._ensembles import _column_labels
    from sparse_query.benchmark.models import make_model
    from sparse_query.embeddings.reliability import heldout_reliability

    X, y = digits
    keep = y < 4                        # 10 output units, labels 0..3 only
    Xl, yl = X[keep][:40].astype(np.float32), y[keep][:40]
    net = make_model("torch-mlp", X.shape[1], 10, len(yl), seed=0).set_params(max_epochs=30)
    kappa, acc = heldout_reliability([net], Xl, yl, random_state=0, column_labels=_column_labels)
    assert 0.0 <= kappa <= 1.0 and kappa == pytest.approx(max(0.0, (acc - 0.25) / 0.75))
    assert acc > 0.5                    # digits 0-3 are easy; the columns were mapped right
