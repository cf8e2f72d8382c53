"""embedding="input-gradient": classifiers with predict_proba but no last layer, leaves or
posterior draws (sparse_query.embeddings.input_gradient, adapters.proba_inputs), against an
explicit sum over classes and torch.autograd, and through the sampler, pipelines, sparse and
DataFrame pools, modAL, and the refusals left."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    AdaBoostClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier,
)
from sklearn.linear_model import Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from sparse_query import SparseApproxSampler
from sparse_query.adapters import EmbeddingNotSupportedError, proba_inputs
from sparse_query.embeddings.input_gradient import input_gradient_embedding


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:100], y[:100], X[100:400]


def _sampler(**kw):
    return SparseApproxSampler(device="cpu", random_state=0, **kw)


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


# -- the embedding against brute force ------------------------------------------------------
def _standardized(X, per_column=False):
    """x~ / r_x: centred, one scale (or unit variance per column), unit mean squared norm."""
    sd = X.std(0)
    Xc = np.where(sd > 0, X - X.mean(0), 0.0)
    if per_column:
        Xc = Xc / np.where(sd > 0, sd, 1.0)
    return Xc / np.sqrt(np.mean((Xc ** 2).sum(1)))


def _tiny(n=9, d=4, K=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(K) * 0.7, size=n)
    X = rng.normal(size=(n, d))
    X[:, 1] = 2.5                                   # a constant column
    return p, X


@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("T", [0.0, 0.05, 0.5, 1.0])
def test_embedding_is_the_expected_gradient_over_classes(T, per_column):
    p, X = _tiny()
    X[:, 2] *= 30.0                                 # columns of different scales
    n, K = p.shape
    op, sigma = input_gradient_embedding(np.log(p), X, temperature=T, per_column=per_column)
    z = np.log(p)
    P = np.eye(K)[z.argmax(1)] if T == 0 else np.exp(z / T) / np.exp(z / T).sum(1, keepdims=True)
    Xs = _standardized(X, per_column)
    e = np.zeros((n, K * X.shape[1]))
    spread = np.zeros(n)
    for j in range(n):                     # e_j = sum_y P(y) g_j(y), g_j(y) = (p - e_y) x~
        g = [np.outer(p[j] - np.eye(K)[k], Xs[j]).ravel() for k in range(K)]
        e[j] = sum(P[j, k] * g[k] for k in range(K))
        spread[j] = sum(P[j, k] * np.linalg.norm(g[k] - e[j]) for k in range(K)) / n
    assert_allclose(op.dense().double().numpy(), e, rtol=1e-5, atol=1e-6)
    assert_allclose(sigma.double().numpy(), spread, rtol=1e-5, atol=1e-9)


def test_embedding_is_the_autograd_gradient_of_a_softmax_head_on_standardized_inputs():
    p, X = _tiny(n=7, d=5, K=4, seed=1)
    n, K = p.shape
    T = 0.3
    op, sigma = input_gradient_embedding(np.log(p), X, temperature=T)
    h = torch.as_tensor(_standardized(X))
    logp = torch.as_tensor(np.log(p))
    P = torch.softmax(logp / T, 1)
    want = torch.zeros(n, K, h.shape[1], dtype=torch.float64)
    for j in range(n):
        for y in range(K):    # z = log p + W x~ at W = 0: its softmax is the model's own p
            W = torch.zeros(K, h.shape[1], dtype=torch.float64, requires_grad=True)
            loss = torch.nn.functional.cross_entropy((logp[j] + W @ h[j])[None],
                                                     torch.tensor([y]))
            (g,) = torch.autograd.grad(loss, W)
            want[j] += P[j, y] * g
    torch.testing.assert_close(op.dense().double(), want.reshape(n, -1), rtol=1e-5, atol=1e-6)
    assert torch.all(sigma >= 0)


def test_sparse_inputs_stay_sparse_and_are_scaled_without_centring():
    rng = np.random.default_rng(2)
    X = sp.random(30, 12, density=0.3, format="csr", random_state=2, dtype=np.float64)
    p = rng.dirichlet(np.ones(3), size=30)
    op, sigma = input_gradient_embedding(np.log(p), X, temperature=0.2)
    from sparse_query.operators import SparseFactoredOperator
    assert isinstance(op, SparseFactoredOperator)
    D = X.toarray()
    Xs = D / np.sqrt(np.mean((D ** 2).sum(1)))    # uncentred, one scale
    P = np.exp(np.log(p) / 0.2)
    P /= P.sum(1, keepdims=True)
    e = ((p - P)[:, :, None] * Xs[:, None, :]).reshape(30, -1)
    assert_allclose(op.dense().double().numpy(), e, rtol=1e-5, atol=1e-6)
    dist = np.array([sum(P[j, k] * np.linalg.norm(P[j] - np.eye(3)[k]) for k in range(3))
                     for j in range(30)])
    assert_allclose(sigma.double().numpy(), np.linalg.norm(Xs, axis=1) * dist / 30,
                    rtol=1e-5, atol=1e-9)


def test_embedding_bad_inputs():
    p, X = _tiny()
    with pytest.raises(ValueError, match="inputs has 8 rows but logits has 9"):
        input_gradient_embedding(np.log(p), X[:8], temperature=0.1)
    with pytest.raises(ValueError, match="every one of the 4 input columns is constant"):
        input_gradient_embedding(np.log(p), np.ones_like(X), temperature=0.1)
    with pytest.raises(ValueError, match="need n_classes >= 2"):
        input_gradient_embedding(np.zeros((9, 1)), X, temperature=0.1)
    with pytest.raises(TypeError, match="resolve 'auto'"):
        input_gradient_embedding(np.log(p), X, temperature="auto")
    with pytest.raises(ValueError, match="weight"):
        input_gradient_embedding(np.log(p), X, temperature=0.1, weight=0.0)
    with pytest.raises(TypeError, match="per_column must be True or False"):
        input_gradient_embedding(np.log(p), X, temperature=0.1, per_column="yes")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        input_gradient_embedding(np.log(p), bad, temperature=0.1)


# -- the adapter: the model's own probabilities, the inputs its final step reads -------------
def test_proba_inputs_of_a_pipeline_are_its_transform_and_its_own_predict_proba(digits):
    X, y, pool = digits
    pipe = _fit(make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), X, y)
    out = proba_inputs(pipe, pool, batch_size=64)
    assert_allclose(out.inputs, pipe[:-1].transform(pool).astype(np.float32), rtol=1e-6)
    assert_allclose(torch.softmax(out.logits, 1).numpy(), pipe.predict_proba(pool), atol=1e-9)
    assert_array_equal(out.classes, pipe.classes_)
    plain = _fit(GaussianNB(), X, y)
    assert proba_inputs(plain, pool).inputs is pool          # the pool itself: no copy


def test_pipeline_batch_is_the_final_step_on_the_transformed_pool(digits):
    X, y, pool = digits
    pipe = _fit(make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), X, y)
    s = _sampler()
    got = s.fit_query(pool, pipe, 10, X_labeled=X, y_labeled=y)
    assert s.embedding_kind_ == "input-gradient"
    Xs, Ps = pipe[:-1].transform(X), pipe[:-1].transform(pool)
    want = _sampler().fit_query(Ps, pipe[-1], 10, X_labeled=Xs, y_labeled=y)
    assert_array_equal(got, want)


# -- every family gets a batch ---------------------------------------------------------------
FAMILIES = {
    "svc-pipeline": lambda: make_pipeline(StandardScaler(), SVC(probability=True,
                                                                random_state=0)),
    "svc": lambda: SVC(probability=True, random_state=0),
    "knn": lambda: KNeighborsClassifier(5),
    "gnb": lambda: GaussianNB(),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
    "calibrated": lambda: CalibratedClassifierCV(LinearSVC(), cv=3),
    "calibrated-pipeline": lambda: make_pipeline(StandardScaler(),
                                                 CalibratedClassifierCV(LinearSVC(), cv=3)),
    "adaboost": lambda: AdaBoostClassifier(n_estimators=10, random_state=0),
}


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("solver", ["greedy", "iht"])
def test_every_family_with_predict_proba_gets_b_distinct_indices(name, solver, digits):
    X, y, pool = digits
    model = _fit(FAMILIES[name](), X, y)
    s = _sampler(solver=solver)
    idx = s.fit_query(pool, model, 12, X_labeled=X, y_labeled=y)
    assert s.embedding_kind_ == "input-gradient"
    assert idx.dtype == np.int64 and idx.shape == (12,) and len(set(idx.tolist())) == 12
    assert idx.min() >= 0 and idx.max() < len(pool)
    again = _sampler(solver=solver).fit_query(pool, model, 12, X_labeled=X, y_labeled=y)
    assert_array_equal(idx, again)


def test_permuting_the_pool_permutes_the_batch(digits):
    X, y, pool = digits
    model = _fit(KNeighborsClassifier(5), X, y)
    perm = np.random.default_rng(0).permutation(len(pool))
    a = _sampler(alpha_reliability=None).fit_query(pool, model, 8)
    b = _sampler(alpha_reliability=None).fit_query(pool[perm], model, 8)
    assert_array_equal(np.sort(perm[b]), np.sort(a))


def test_temperature_auto_calibrates_the_log_probabilities(digits):
    X, y, pool = digits
    model = _fit(KNeighborsClassifier(5), X, y)
    s = _sampler(temperature="auto")
    assert s.fit_query(pool, model, 5, X_labeled=X, y_labeled=y).shape == (5,)
    assert s.temperature_source_ == "held-out" and s.temperature_ > 0


def test_explicit_input_gradient_serves_a_model_with_a_last_layer_too(digits):
    from sklearn.linear_model import LogisticRegression
    X, y, pool = digits
    model = _fit(LogisticRegression(max_iter=300), X, y)
    s = _sampler(embedding="input-gradient")
    assert len(set(s.fit_query(pool, model, 7).tolist())) == 7
    assert s.embedding_kind_ == "input-gradient"


def test_single_class_model_warns_and_returns_a_random_batch(digits):
    X, _, pool = digits
    model = _fit(GaussianNB(), X, np.zeros(len(X), dtype=int))
    with pytest.warns(UserWarning, match="single class"):
        idx = _sampler(alpha_reliability=None).fit_query(pool, model, 5)
    assert len(set(idx.tolist())) == 5


@pytest.mark.parametrize("temperature", [0.01, 1.0])
def test_one_hot_probabilities_give_a_seeded_random_batch_not_the_first_rows(digits, temperature):
    """1-NN's probabilities are exactly one-hot: e_j = 0 and sigma_j = 0 for every row, so no
    batch is better than another; the answer is a uniformly random batch (seeded), with a
    warning that names the fix -- not the pool's first rows, which ties would give."""
    X, y, pool = digits
    model = _fit(KNeighborsClassifier(n_neighbors=1), X, y)
    batches = []
    for seed in (0, 1, 0):
        with pytest.warns(UserWarning, match=r"one-hot on every pool point.*uniformly random"):
            s = SparseApproxSampler(device="cpu", random_state=seed, temperature=temperature)
            batches.append(s.fit_query(pool, model, 10))
        assert s.embedding_kind_ == "input-gradient" and s.reliability_source_ is None
    assert sorted(batches[0].tolist()) != list(range(10))
    assert np.array_equal(batches[0], batches[2]) and not np.array_equal(batches[0], batches[1])
    np.testing.assert_array_equal(
        batches[0], np.random.default_rng(0).choice(len(pool), 10, replace=False))


# -- pools -----------------------------------------------------------------------------------
def test_sparse_pool_stays_sparse(digits):
    rng = np.random.default_rng(0)
    counts = sp.random(300, 200, density=0.05, format="csr", random_state=0,
                       data_rvs=lambda k: rng.integers(1, 4, k).astype(float))
    y = rng.integers(0, 3, 300)
    model = MultinomialNB().fit(counts[:80], y[:80])
    pool = counts[80:]
    out = proba_inputs(model, pool)
    assert sp.issparse(out.inputs) and out.inputs.shape == pool.shape
    s = _sampler(alpha_reliability=None)
    idx = s.fit_query(pool, model, 10)
    assert s.embedding_kind_ == "input-gradient" and len(set(idx.tolist())) == 10
    # the sparse path gives the same batch as the embedding built by hand from its parts
    from sparse_query.problem import SparseApproxProblem
    from sparse_query.solvers import greedy
    op, sigma = input_gradient_embedding(out.logits, out.inputs, temperature=0.01)
    alpha = 0.1 * pool.shape[0] ** 2 / 10
    res = greedy(SparseApproxProblem(op, sigma, 10, alpha=alpha, beta=1e-3, device="cpu"))
    assert_array_equal(np.sort(idx), np.sort(res.indices))


def test_dataframe_pool_gives_the_numpy_batch(digits):
    pd = pytest.importorskip("pandas")
    X, y, pool = digits
    cols = [f"px{i}" for i in range(X.shape[1])]
    frame_model = _fit(make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
                       pd.DataFrame(X, columns=cols), y)
    array_model = _fit(make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
                       X, y)
    got = _sampler(alpha_reliability=None).fit_query(pd.DataFrame(pool, columns=cols),
                                                     frame_model, 10)
    want = _sampler(alpha_reliability=None).fit_query(pool, array_model, 10)
    assert_array_equal(got, want)
    with pytest.raises(ValueError, match="feature names"):
        _sampler(alpha_reliability=None).fit_query(
            pd.DataFrame(pool[:, ::-1], columns=cols[::-1]), frame_model, 5)


def test_dataframe_with_categories_reads_them_as_indicators(digits):
    pd = pytest.importorskip("pandas")
    X, y, pool = digits

    def frame(A):
        f = pd.DataFrame(A[:, :6], columns=list("abcdef"))
        f["g"] = pd.Categorical(np.where(A[:, 10] > 8, "hi", np.where(A[:, 10] > 2, "mid", "lo")),
                                categories=["lo", "mid", "hi"])
        return f

    model = _fit(HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype",
                                                random_state=0), frame(X), y)
    out = proba_inputs(model, frame(pool))
    assert out.inputs.shape == (len(pool), 6 + 3)
    assert_allclose(out.inputs[:, 6:].sum(1), 1.0)
    assert_allclose(out.inputs[:, :6], pool[:, :6])
    s = _sampler(alpha_reliability=None)
    assert len(set(s.fit_query(frame(pool), model, 6).tolist())) == 6


def test_dask_pool_is_refused_with_the_fix(digits, inproc_client):
    da = pytest.importorskip("dask.array")
    X, y, pool = digits
    model = _fit(GaussianNB(), X, y)
    with pytest.raises(ValueError, match="supports embedding='gradient' only.*'input-gradient'"):
        _sampler(alpha_reliability=None).fit_query(da.from_array(pool, chunks=100), model, 5)


# -- modAL -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["svc-pipeline", "knn", "gnb", "hgb"])
def test_in_the_modal_loop(name, digits):
    pytest.importorskip("modAL")
    from modAL.models import ActiveLearner
    X, y, pool = digits
    X_all, y_all = load_digits(return_X_y=True)
    y_pool = y_all[100:400]
    sampler = SparseApproxSampler(device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner = ActiveLearner(estimator=FAMILIES[name](), query_strategy=sampler,
                                X_training=X[:40], y_training=y[:40])
        left = np.arange(len(pool))
        for _ in range(2):
            out = learner.query(pool[left], n_instances=10)
            idx = np.asarray(out[0] if isinstance(out, tuple) else out)
            assert len(set(idx.tolist())) == 10 and idx.max() < len(left)
            assert sampler.embedding_kind_ == "input-gradient"
            # the learner's labeled set reached "auto", which does not refit this model
            assert sampler.reliability_source_.startswith("fallback: the model holds no")
            learner.teach(pool[left[idx]], y_pool[left[idx]])
            left = np.delete(left, idx)
    assert len(learner.X_training) == 60


# -- what is still refused, and that the refusal names the model -----------------------------
def test_a_model_without_predict_proba_is_refused_by_name(digits):
    X, y, pool = digits
    with pytest.raises(EmbeddingNotSupportedError, match=r"^SVC has no predict_proba"):
        _sampler().fit_query(pool, _fit(SVC(), X, y), 5)
    pipe = _fit(make_pipeline(StandardScaler(), SVC()), X, y)
    with pytest.raises(EmbeddingNotSupportedError,
                       match=r"^SVC \(the final step of the Pipeline\) has no predict_proba.*"
                             r"probability=True"):
        _sampler().fit_query(pool, pipe, 5)
    with pytest.raises(EmbeddingNotSupportedError,
                       match=r"SVC \(the final step of the Pipeline\) has no predict_proba"):
        _sampler(embedding="input-gradient").fit_query(pool, pipe, 5)


def test_a_regressor_pipeline_is_refused_by_its_final_step(digits):
    X, y, pool = digits
    pipe = _fit(make_pipeline(StandardScaler(), Ridge()), X, y.astype(float))
    with pytest.raises(EmbeddingNotSupportedError,
                       match=r"^Ridge \(the final step of the Pipeline\) is a regressor"):
        _sampler().fit_query(pool, pipe, 5)


def test_input_gradient_refuses_committees_and_nets(digits):
    pytest.importorskip("modAL")
    from modAL.models import ActiveLearner, Committee
    X, y, pool = digits
    committee = Committee([ActiveLearner(GaussianNB(), X_training=X, y_training=y),
                           ActiveLearner(KNeighborsClassifier(3), X_training=X, y_training=y)])
    with pytest.raises(EmbeddingNotSupportedError, match="Committee.*'committee-gradient'"):
        _sampler(embedding="input-gradient").fit_query(pool, committee, 5)
    net = torch.nn.Sequential(torch.nn.Linear(64, 10))
    with pytest.raises(EmbeddingNotSupportedError, match="torch model.*embedding='gradient'"):
        _sampler(embedding="input-gradient").fit_query(pool.astype(np.float32), net, 5)


def test_gradient_boosting_under_auto(digits):
    X, y, pool = digits
    gb = _fit(GradientBoostingClassifier(n_estimators=5, random_state=0), X, y)
    with pytest.raises(EmbeddingNotSupportedError, match="does not serve GradientBoosting"):
        _sampler().fit_query(pool, gb, 5)
    s = _sampler(embedding="input-gradient")
    assert len(set(s.fit_query(pool, gb, 5).tolist())) == 5


class _Scores(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose predict_proba is softmax probabilities, cast and offset."""

    def __init__(self, dtype=np.float64, offset=0.0):
        self.dtype, self.offset = dtype, offset
        self.classes_, self.n_features_in_ = np.arange(3), 4

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        z = np.asarray(X)[:, :3]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return (p + self.offset / 3).astype(self.dtype)


@pytest.mark.parametrize("dtype, offset, ok", [
    (np.float32, 6e-6, True),     # float32 rounding of a real predict_proba (sklearn 1.9's NB)
    (np.float64, 6e-6, False),    # the same miss in float64 is not rounding
    (np.float32, 1e-3, False),    # scores, not probabilities
])
def test_probability_check_allows_float32_rounding_only(dtype, offset, ok):
    X = np.random.default_rng(0).normal(size=(40, 4))
    model = _Scores(dtype, offset)
    if ok:
        out = proba_inputs(model, X)
        assert out.logits.shape == (40, 3)
    else:
        with pytest.raises(EmbeddingNotSupportedError, match="not probabilities"):
            proba_inputs(model, X)
