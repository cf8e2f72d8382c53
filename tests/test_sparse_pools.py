"""Sparse pools (TF-IDF, one-hot): every strategy on a scipy.sparse pool, never densified.

The oracle is the densified pool: the same strategy, seed and model must return the same
batch on ``X`` and on ``X.toarray()``, and every product of the sparse operator must equal
the dense factored operator's.
"""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from sparse_query import SparseApproxSampler
from sparse_query.adapters import last_layer_outputs
from sparse_query.baselines import (
    BADGE, BALD, EntropySampling, KCenterGreedy, LeastConfidenceSampling, MarginSampling,
    RandomSampling, badge_kmeanspp, kcenter_greedy,
)
from benchmarks.harness.text import make_topic_corpus
from sparse_query.embeddings import gradient_embedding
from sparse_query.embeddings.gradient_sparse import SparseGradientEmbedding
from sparse_query.problem import FactoredOperator, SparseApproxProblem, as_operator, sketch
from sparse_query.operators.sparse import (
    SparseFactoredOperator, append_ones_column, as_csr, factored_operator, row_sqnorms,
)
from sparse_query.solvers import greedy, proximal_iht


def _pool(n=260, d=400, density=0.03, seed=0):
    X = sp.random(n, d, density=density, random_state=seed, format="csr")
    X.data = 0.2 + X.data
    y = np.random.default_rng(seed).integers(0, 3, n)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _pool()
    clf = LogisticRegression(max_iter=500).fit(X[:60], y[:60])
    return X[60:], X[:60], y[:60], clf


# ---------------------------------------------------------------------------------------------
# the operator against the dense factored operator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_operator_products_match_dense(bias, dtype):
    X, _ = _pool(50, 300)
    z = np.random.default_rng(1).normal(size=(50, 4))
    es = gradient_embedding(z, X, temperature=0.1, bias=bias)
    ed = gradient_embedding(z, X.toarray(), temperature=0.1, bias=bias)
    assert isinstance(es, SparseGradientEmbedding) and sp.issparse(es.h)
    assert es.h.shape == tuple(ed.h.shape)
    S = as_operator((es.a, es.h), device="cpu", dtype=dtype)
    D = as_operator((ed.a, ed.h), device="cpu", dtype=dtype)
    assert isinstance(S, SparseFactoredOperator) and isinstance(D, FactoredOperator)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(50, generator=g, dtype=dtype)
    R = torch.randn(S.space_shape, generator=g, dtype=dtype)
    idx = torch.tensor([3, 7, 1, 40])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for name, args in [("combine", (u,)), ("combine_rows", (idx, u[:4])), ("project", (R,)),
                       ("project_rows", (R, idx)), ("gram_columns", (idx,)),
                       ("gram_block", (idx, idx[:2])), ("sqnorms", ()), ("mean", ()),
                       ("dense", ())]:
        got, want = getattr(S, name)(*args), getattr(D, name)(*args)
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(S.take(idx).dense(), D.take(idx).dense(), **tol)
    assert S.column_cost < D.column_cost and S.project_cost < D.project_cost


def test_operator_chunking_does_not_change_results():
    X, _ = _pool(90, 200)
    A = torch.randn(90, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    big = SparseFactoredOperator(A, X)
    small = SparseFactoredOperator(A, X, chunk_size=7)
    u = torch.linspace(-1, 1, 90, dtype=torch.float64)
    torch.testing.assert_close(big.combine(u), small.combine(u))
    R = big.combine(u)
    torch.testing.assert_close(big.project(R), small.project(R))
    torch.testing.assert_close(big.gram_columns(torch.tensor([5, 9])),
                               small.gram_columns(torch.tensor([5, 9])))


def test_sketch_matches_dense_factored_sketch():
    X, _ = _pool(70, 250)
    z = np.random.default_rng(2).normal(size=(70, 3))
    es, ed = gradient_embedding(z, X, temperature=0.0), gradient_embedding(z, X.toarray(),
                                                                           temperature=0.0)
    ks = sketch(factored_operator(es.a, es.h), 24, generator=torch.Generator().manual_seed(5))
    kd = sketch(FactoredOperator(ed.a, ed.h), 24, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ks.E, kd.E, rtol=1e-10, atol=1e-12)


def test_gradient_embedding_sparse_matches_dense_and_torch_sparse_input():
    X, _ = _pool(40, 120)
    z = torch.randn(40, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ed = gradient_embedding(z, X.toarray(), temperature=0.3)
    for feats in (X, X.tocoo(), sp.csr_array(X), torch.from_numpy(X.toarray()).to_sparse_csr(),
                  torch.from_numpy(X.toarray()).to_sparse()):
        es = gradient_embedding(z, feats, temperature=0.3)
        assert sp.issparse(es.h)
        torch.testing.assert_close(es.a, ed.a)
        torch.testing.assert_close(es.sigma, ed.sigma, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(es.probs, ed.probs)
        torch.testing.assert_close(es.dense(), ed.dense())
    # sigma uses ||[h_j, 1]|| from the sparse row norms
    hn = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel() + 1.0)
    assert_allclose(es.sigma.numpy() / hn, ed.sigma.numpy() / hn, rtol=1e-12)
    # float32 in, float32 out (as dense)
    e32 = gradient_embedding(z.float(), X.astype(np.float32), temperature=0.3)
    assert e32.a.dtype == torch.float32 and e32.h.dtype == np.float32


def test_sparse_helpers():
    X, _ = _pool(30, 50)
    Xb = append_ones_column(X)
    assert_allclose(Xb.toarray(), np.hstack([X.toarray(), np.ones((30, 1))]))
    assert_allclose(row_sqnorms(X), (X.toarray() ** 2).sum(1))
    empty = sp.csr_matrix((3, 4))
    assert_allclose(append_ones_column(empty).toarray(), np.hstack([np.zeros((3, 4)),
                                                                    np.ones((3, 1))]))
    assert_allclose(row_sqnorms(empty), 0.0)


def test_bad_sparse_inputs_name_the_problem():
    X, _ = _pool(20, 30)
    bad = X.copy()
    bad.data[5] = np.nan
    row = int(np.searchsorted(bad.indptr, 5, side="right") - 1)
    with pytest.raises(ValueError, match=f"features contains NaN or inf \\(first in row {row}\\)"):
        gradient_embedding(np.zeros((20, 2)), bad)
    with pytest.raises(ValueError, match="features has 20 rows but logits has 19"):
        gradient_embedding(np.zeros((19, 2)), X)
    with pytest.raises(ValueError, match="logits has 1 column"):
        gradient_embedding(np.zeros((20, 1)), X)
    with pytest.raises(ValueError, match="A has 19, H has 20"):
        SparseFactoredOperator(torch.zeros(19, 2, dtype=torch.float64), X)
    with pytest.raises(TypeError, match="must be a 2-D scipy.sparse matrix"):
        as_csr(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="must hold real numbers"):
        as_csr(sp.csr_matrix(np.ones((2, 2), dtype=complex)))


# ---------------------------------------------------------------------------------------------
# same batch on the sparse and the densified pool
# ---------------------------------------------------------------------------------------------
STRATEGIES = {
    "greedy": lambda: SparseApproxSampler("greedy", random_state=0),
    "greedy-float64": lambda: SparseApproxSampler("greedy", random_state=0, dtype="float64"),
    "iht": lambda: SparseApproxSampler("iht", random_state=0),
    "iht-sketch": lambda: SparseApproxSampler("iht", sketch_dim=32, random_state=0),
    "greedy-sketch": lambda: SparseApproxSampler("greedy", sketch_dim=32, random_state=0),
    "iht-auto-T": lambda: SparseApproxSampler("iht", temperature="auto", random_state=0),
    "badge": lambda: BADGE(random_state=0),
    "kcenter": lambda: KCenterGreedy(),
    "kcenter-random": lambda: KCenterGreedy(init="random", random_state=3),
    "entropy": lambda: EntropySampling(),
    "margin": lambda: MarginSampling(),
    "least-confidence": lambda: LeastConfidenceSampling(),
    "random": lambda: RandomSampling(random_state=0),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("b", [1, 12])
def test_same_batch_sparse_and_densified(fitted, name, b):
    pool, X_l, y_l, clf = fitted
    kw = dict(X_labeled=X_l, y_labeled=y_l) if name in ("kcenter", "iht-auto-T") else {}
    kw_dense = ({k: (v.toarray() if sp.issparse(v) else v) for k, v in kw.items()})
    got = STRATEGIES[name]().fit_query(pool, clf, b, **kw)
    want = STRATEGIES[name]().fit_query(pool.toarray(), clf, b, **kw_dense)
    assert_array_equal(got, want)
    assert len(np.unique(got)) == b


@pytest.mark.parametrize("mode", ["gram", "residual"])
def test_greedy_modes_and_iht_on_the_problem(mode):
    X, _ = _pool(120, 300)
    z = np.random.default_rng(4).normal(size=(120, 3))
    es, ed = gradient_embedding(z, X, temperature=0.05), gradient_embedding(z, X.toarray(),
                                                                            temperature=0.05)
    kw = dict(alpha=50.0, beta=1e-3, device="cpu", dtype="float64")
    ps = SparseApproxProblem((es.a, es.h), es.sigma, 15, **kw)
    pd_ = SparseApproxProblem((ed.a, ed.h), ed.sigma, 15, **kw)
    rs, rd = greedy(ps, _mode=mode), greedy(pd_, _mode=mode)
    assert_array_equal(rs.indices, rd.indices)
    assert_allclose(rs.objective, rd.objective, rtol=1e-9)
    rs, rd = proximal_iht(ps), proximal_iht(pd_)
    assert_array_equal(rs.indices, rd.indices)
    assert_allclose(rs.weights, rd.weights, rtol=1e-8, atol=1e-12)


def test_badge_and_kcenter_functions_accept_sparse():
    X, _ = _pool(80, 200)
    a = torch.randn(80, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = append_ones_column(X)
    got = badge_kmeanspp(a, h, 9, generator=torch.Generator().manual_seed(1))
    want = badge_kmeanspp(a, torch.from_numpy(h.toarray()), 9,
                          generator=torch.Generator().manual_seed(1))
    assert_array_equal(got.indices, want.indices)
    torch.testing.assert_close(got.scores, want.scores)
    for labeled in (None, X[:5], X[:5].toarray()):
        lab_dense = None if labeled is None else (labeled.toarray() if sp.issparse(labeled)
                                                  else labeled)
        got = kcenter_greedy(X[5:], 7, labeled)
        want = kcenter_greedy(X[5:].toarray(), 7, lab_dense)
        assert_array_equal(got.indices, want.indices)
        torch.testing.assert_close(got.scores, want.scores)
    with pytest.raises(ValueError, match="labeled_features has 3 features but features has 200"):
        kcenter_greedy(X, 2, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_instances=81 must be <= 80"):
        kcenter_greedy(X, 81)


def test_bald_on_a_sparse_pool_with_a_forest(fitted):
    pool, X_l, y_l, _ = fitted
    rf = RandomForestClassifier(n_estimators=6, random_state=0).fit(X_l, y_l)
    assert_array_equal(BALD().fit_query(pool, rf, 10), BALD().fit_query(pool.toarray(), rf, 10))


def test_last_layer_outputs_keep_sparse_features(fitted):
    pool, _, _, clf = fitted
    out = last_layer_outputs(clf, pool, batch_size=37)
    assert sp.issparse(out.features) and out.features.shape == pool.shape
    dense = last_layer_outputs(clf, pool.toarray())
    assert_allclose(out.features.toarray(), dense.features.numpy())
    torch.testing.assert_close(out.logits, dense.logits)
    with pytest.raises(ValueError, match="fitted on 400 features"):
        last_layer_outputs(clf, pool[:, :399])


@pytest.mark.parametrize("vectoriser", [
    lambda: TfidfVectorizer(),
    lambda: HashingVectorizer(n_features=2**14, alternate_sign=False),
])
def test_text_pipelines_same_batch_as_dense(vectoriser):
    docs, y = make_topic_corpus(300, vocab_size=3000, n_classes=4, random_state=0)
    docs = np.asarray(docs, dtype=object)
    pipe = Pipeline([("vec", vectoriser()), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(docs[:60], y[:60])
    H = pipe[:-1].transform(docs[60:])
    dense_clf = pipe[-1]
    for make in (STRATEGIES["greedy"], STRATEGIES["iht"], STRATEGIES["badge"]):
        assert_array_equal(make().fit_query(docs[60:], pipe, 8),
                           make().fit_query(H.toarray(), dense_clf, 8))


def test_one_hot_pipeline_stays_sparse():
    rng = np.random.default_rng(0)
    Xc = rng.integers(0, 30, size=(200, 4))
    y = (Xc[:, 0] % 3 + Xc[:, 1] % 2) % 3
    pipe = Pipeline([("oh", OneHotEncoder(handle_unknown="ignore")),
                     ("clf", LogisticRegression(max_iter=500))]).fit(Xc[:50], y[:50])
    out = last_layer_outputs(pipe, Xc[50:])
    assert sp.issparse(out.features)
    H = pipe[:-1].transform(Xc[50:])
    assert_array_equal(SparseApproxSampler("iht", random_state=0).fit_query(Xc[50:], pipe, 10),
                       SparseApproxSampler("iht", random_state=0).fit_query(H.toarray(),
                                                                            pipe[-1], 10))


# ---------------------------------------------------------------------------------------------
# end to end through modAL, with densification forbidden
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def no_wide_densify(monkeypatch):
    """Make toarray/todense raise on any sparse matrix as wide as the vocabulary."""
    state = {"width": None, "calls": 0}

    def guard(orig):
        def wrapped(self, *a, **k):
            state["calls"] += 1
            if state["width"] is not None and self.shape[1] >= state["width"]:
                raise AssertionError(f"densified a {self.shape} sparse matrix")
            return orig(self, *a, **k)
        return wrapped

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array,
                sp.coo_array):
        for meth in ("toarray", "todense"):
            monkeypatch.setattr(cls, meth, guard(getattr(cls, meth)))
    return state


def test_guard_catches_densification(no_wide_densify):
    no_wide_densify["width"] = 10
    with pytest.raises(AssertionError, match="densified"):
        sp.random(3, 20, density=0.5, format="csr").toarray()


@pytest.mark.parametrize("name", ["greedy", "iht", "iht-sketch", "badge", "kcenter", "entropy",
                                  "margin", "random"])
def test_tfidf_pipeline_through_modal_never_densifies(name, no_wide_densify):
    modal = pytest.importorskip("modAL.models")
    docs, y = make_topic_corpus(600, vocab_size=5000, n_classes=4, random_state=1)
    docs = np.asarray(docs, dtype=object)
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(max_iter=500))])
    learner = modal.ActiveLearner(estimator=pipe, query_strategy=STRATEGIES[name](),
                                  X_training=docs[:80], y_training=y[:80])
    width = len(learner.estimator[0].vocabulary_)
    assert width > 1000
    no_wide_densify["width"] = width
    pool = docs[80:]
    idx, X_query = learner.query(pool, n_instances=10)
    idx = np.asarray(idx)
    assert idx.shape == (10,) and len(np.unique(idx)) == 10
    learner.teach(X_query, y[80:][idx])
    idx2, _ = learner.query(np.delete(pool, idx), n_instances=10)
    assert len(np.unique(idx2)) == 10


def test_memory_is_bounded_by_the_pool_not_its_dense_size():
    """Extra peak memory on a 3,000 x 30,000 pool stays far below its dense size (720 MB)."""
    rng = np.random.default_rng(0)
    n, d = 3000, 30000
    X = sp.random(n, d, density=0.002, random_state=1, format="csr")
    y = rng.integers(0, 5, n)
    clf = LogisticRegression(max_iter=200).fit(X[:300], y[:300])
    pool = X[300:]
    dense_bytes = pool.shape[0] * pool.shape[1] * 8
    for make in (STRATEGIES["greedy"], STRATEGIES["iht"], STRATEGIES["iht-sketch"],
                 STRATEGIES["badge"], STRATEGIES["entropy"],
                 lambda: KCenterGreedy()):
        tracemalloc.start()
        try:
            make().fit_query(pool, clf, 20)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < dense_bytes / 10, (make, peak)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["greedy", "iht", "iht-sketch"])
def test_sparse_pool_on_cuda_same_batch_as_cpu(fitted, name):
    pool, _, _, clf = fitted
    solver = "greedy" if name == "greedy" else "iht"
    sk = 32 if name == "iht-sketch" else None
    on = {dev: SparseApproxSampler(solver, sketch_dim=sk, device=dev, dtype="float64",
                                   random_state=0).fit_query(pool, clf, 10)
          for dev in ("cpu", "cuda")}
    assert_array_equal(on["cpu"], on["cuda"])
    emb = gradient_embedding(np.random.default_rng(0).normal(size=(pool.shape[0], 3)), pool)
    op = factored_operator(emb.a.cuda(), emb.h)
    assert op.project(op.combine(torch.ones(pool.shape[0], dtype=emb.a.dtype,
                                            device="cuda"))).device.type == "cuda"


@pytest.mark.parametrize("solver", ["greedy", "iht"])
def test_copies_in_a_sparse_pool_are_grouped(solver):
    """Re-crawled documents: a TF-IDF pool with planted copies never spends two labels on one
    document, and groups exactly as its densified copy does."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from sparse_query import SparseApproxSampler
    from benchmarks.harness.text import make_topic_corpus

    docs, y = make_topic_corpus(400, vocab_size=3000, n_classes=4, random_state=1)
    docs = np.asarray(docs, dtype=object)
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(docs[:120], y[:120])
    pool = np.concatenate([np.repeat(docs[120:130], 30), docs[130:]])   # 10 docs x 30 copies
    sampler = SparseApproxSampler(solver=solver, random_state=0, device="cpu")
    idx = sampler.fit_query(pool, pipe, 20)
    assert len(set(pool[idx].tolist())) == 20
    X = pipe[0].transform(pool)
    assert sp.issparse(X)
    dense = SparseApproxSampler(solver=solver, random_state=0, device="cpu").fit_query(
        X.toarray(), pipe[-1], 20)
    np.testing.assert_array_equal(np.sort(idx), np.sort(dense))
