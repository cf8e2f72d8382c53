"""Issue 14: leaf embeddings of tree ensembles, committee gradients, draws on cached features."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    BaggingClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
    HistGradientBoostingClassifier, RandomForestClassifier,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from torch import nn
from torch.testing import assert_close

from sparse_query import SparseApproxSampler
from sparse_query.embeddings.committee import committee_gradient_embedding
from sparse_query.operators import ConcatOperator
from sparse_query.adapters import EmbeddingNotSupportedError, posterior_probas
from sparse_query.adapters._draws import committee_has_last_layers
from sparse_query.adapters._dropout import cached_dropout_layer, cached_dropout_probas
from sparse_query.adapters._torch_draws import _torch_posterior
from sparse_query.adapters._trees import has_leaf_layer, leaf_last_layer
from sparse_query.embeddings import gradient_embedding
from sparse_query.problem import FactoredOperator


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:80], y[:80], X[300:600], y[300:600]


ENSEMBLES = {
    "rf": lambda: RandomForestClassifier(n_estimators=12, random_state=0),
    "et": lambda: ExtraTreesClassifier(n_estimators=12, min_samples_leaf=2, random_state=0),
    "bagging": lambda: BaggingClassifier(DecisionTreeClassifier(), n_estimators=6,
                                         max_features=0.6, random_state=0),
    "gb": lambda: GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0),
    "pipeline": lambda: make_pipeline(StandardScaler(),
                                      RandomForestClassifier(n_estimators=5, random_state=0)),
}


# ---------------------------------------------------------------------------------------------
# leaf indicators
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ENSEMBLES))
def test_leaf_logits_reproduce_predict_proba(digits, name):
    X0, y0, Xp, _ = digits
    est = ENSEMBLES[name]().fit(X0, y0)
    ll = leaf_last_layer(est, Xp, batch_size=64)  # chunked: rows must not depend on it
    assert_allclose(torch.softmax(ll.logits, 1).numpy(), est.predict_proba(Xp), atol=1e-9)
    H = ll.features
    assert sp.isspmatrix_csr(H) and H.shape[0] == len(Xp)
    assert_array_equal(np.diff(H.indptr), ll.n_trees)          # one leaf per tree and row
    assert_array_equal(H.data, 1.0)
    assert_array_equal(ll.dense_features().numpy(), H.toarray())  # dense == sparse
    assert ll.bias == (name == "gb")
    whole = leaf_last_layer(est, Xp)
    assert (whole.features != H).nnz == 0
    assert_allclose(whole.logits.numpy(), ll.logits.numpy())


def test_forest_is_linear_in_its_leaves(digits):
    """p = H @ V with V the leaves' class distributions / n_trees: a true last layer."""
    X0, y0, Xp, _ = digits
    rf = RandomForestClassifier(n_estimators=7, random_state=1).fit(X0, y0)
    H = leaf_last_layer(rf, Xp).features
    V = np.concatenate([t.tree_.value[t.tree_.children_left == -1, 0, :] /
                        t.tree_.value[t.tree_.children_left == -1, 0, :].sum(1, keepdims=True)
                        for t in rf.estimators_]) / 7
    assert_allclose(H @ V, rf.predict_proba(Xp), atol=1e-12)


def test_binary_boosting_gets_two_columns(digits):
    X0, y0, Xp, _ = digits
    gb = GradientBoostingClassifier(n_estimators=4, random_state=0).fit(X0, (y0 < 5).astype(int))
    ll = leaf_last_layer(gb, Xp)
    assert ll.logits.shape == (len(Xp), 2) and ll.n_trees == 4
    assert_allclose(torch.softmax(ll.logits, 1).numpy(), gb.predict_proba(Xp), atol=1e-12)


def test_leaf_check_refuses_a_model_whose_trees_are_not_its_predictions(digits):
    X0, y0, Xp, _ = digits
    rf = RandomForestClassifier(n_estimators=4, random_state=0).fit(X0, y0)
    rf.predict_proba = lambda X: np.full((len(X), 10), 0.1)   # not what the leaves say
    with pytest.raises(RuntimeError, match=r"leaf reconstruction .* embedding='posterior'"):
        leaf_last_layer(rf, Xp)


def test_leaf_errors(digits):
    X0, y0, Xp, _ = digits
    with pytest.raises(NotFittedError):
        leaf_last_layer(RandomForestClassifier(), Xp)
    logreg = LogisticRegression(max_iter=200).fit(X0, y0)
    with pytest.raises(EmbeddingNotSupportedError, match=r"not a supported tree ensemble"):
        leaf_last_layer(logreg, Xp)
    hgb = HistGradientBoostingClassifier(max_iter=3).fit(X0, y0)  # no public apply()
    assert not has_leaf_layer(hgb)
    bag_lr = BaggingClassifier(LogisticRegression(max_iter=200), n_estimators=3,
                               random_state=0).fit(X0, y0)
    assert not has_leaf_layer(bag_lr)
    with pytest.raises(EmbeddingNotSupportedError, match=r"leaf-gradient"):
        SparseApproxSampler(embedding="leaf-gradient", device="cpu").fit(Xp, logreg)


def test_leaf_gradient_sampler_matches_the_embedding_on_dense_leaves(digits):
    X0, y0, Xp, _ = digits
    rf = RandomForestClassifier(n_estimators=6, random_state=0).fit(X0, y0)
    s = SparseApproxSampler(device="cpu", random_state=0, dtype="float64").fit(Xp, rf)
    assert s.embedding_kind_ == "leaf-gradient" and s.temperature_ == 0.01
    ll = leaf_last_layer(rf, Xp)
    emb = gradient_embedding(ll.logits, ll.dense_features(torch.float64), temperature=0.01,
                             bias=False)
    assert_close(s._operator.dense(), emb.dense())
    assert_close(s._sigma, emb.sigma)
    idx = s.query(15)
    assert len(np.unique(idx)) == 15 and idx.dtype == np.int64
    again = SparseApproxSampler(device="cpu", random_state=0, dtype="float64").fit_query(Xp, rf, 15)
    assert_array_equal(idx, again)


def test_leaf_gradient_auto_temperature(digits):
    X0, y0, Xp, _ = digits
    rf = RandomForestClassifier(n_estimators=6, random_state=0).fit(X0, y0)
    s = SparseApproxSampler(device="cpu", random_state=0, temperature="auto").fit(
        Xp, rf, X_labeled=X0, y_labeled=y0)
    assert s.temperature_ > 0 and s.temperature_source_ != "fixed"


# ---------------------------------------------------------------------------------------------
# embedding="auto" per family
# ---------------------------------------------------------------------------------------------
def _committee(members, X0, y0):
    from modAL.models import ActiveLearner, Committee

    return Committee([ActiveLearner(m, X_training=X0, y_training=y0) for m in members])


def test_auto_choice_per_family(digits):
    X0, y0, Xp, _ = digits
    pytest.importorskip("modAL")

    def kind(est):
        return SparseApproxSampler(device="cpu", random_state=0).fit(Xp, est).embedding_kind_

    for name in ("rf", "et", "bagging", "pipeline"):
        assert kind(ENSEMBLES[name]().fit(X0, y0)) == "leaf-gradient"
    gb = ENSEMBLES["gb"]().fit(X0, y0)  # measured: not served well -> documented refusal
    with pytest.raises(EmbeddingNotSupportedError,
                       match=r"does not serve GradientBoostingClassifier.*embedding='leaf-gradient'"):
        kind(gb)
    assert SparseApproxSampler(embedding="leaf-gradient", device="cpu").fit(
        Xp, gb).embedding_kind_ == "leaf-gradient"
    assert kind(LogisticRegression(max_iter=200).fit(X0, y0)) == "gradient"
    assert kind(MLPClassifier((8,), max_iter=50, random_state=0).fit(X0, y0)) == "gradient"
    mixed = _committee([LogisticRegression(max_iter=200),
                        RandomForestClassifier(n_estimators=4, random_state=0)], X0, y0)
    assert committee_has_last_layers(mixed) and kind(mixed) == "committee-gradient"
    with_svc = _committee([LogisticRegression(max_iter=200), SVC(probability=True)], X0, y0)
    assert not committee_has_last_layers(with_svc) and kind(with_svc) == "posterior"
    # a member that never saw a class: its columns cannot be aligned -> posterior
    partial = _committee([LogisticRegression(max_iter=200)], X0, y0)
    partial.learner_list.append(type(partial.learner_list[0])(
        LogisticRegression(max_iter=200), X_training=X0[y0 < 5], y_training=y0[y0 < 5]))
    partial._set_classes()
    assert kind(partial) == "posterior"


def test_committee_gradient_rejects_auto_temperature(digits):
    X0, y0, Xp, _ = digits
    pytest.importorskip("modAL")
    com = _committee([LogisticRegression(max_iter=200, C=c) for c in (0.1, 1.0)], X0, y0)
    with pytest.raises(ValueError, match=r"temperature='auto' is not supported"):
        SparseApproxSampler(temperature="auto", device="cpu").fit(Xp, com)


# ---------------------------------------------------------------------------------------------
# committee gradient embedding and the concatenated operator
# ---------------------------------------------------------------------------------------------
def test_committee_gradient_with_one_member_is_the_gradient_embedding():
    g = torch.Generator().manual_seed(0)
    z, h = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randn(30, 6, generator=g,
                                                                            dtype=torch.float64)
    for T in (0.0, 0.05, 1.0):
        op, sigma, P = committee_gradient_embedding([z], [h], temperature=T, biases=[True])
        emb = gradient_embedding(z, h, temperature=T, bias=True)
        assert_close(op.dense(), emb.dense())
        assert_close(sigma, emb.sigma)
        assert_close(P, torch.softmax(z, 1))


def test_committee_gradient_against_explicit_sums_over_classes():
    g = torch.Generator().manual_seed(1)
    n, K = 9, 3
    zs = [torch.randn(n, K, generator=g, dtype=torch.float64) for _ in range(2)]
    hs = [torch.randn(n, 4, generator=g, dtype=torch.float64),
          torch.randn(n, 2, generator=g, dtype=torch.float64)]
    T = 0.3
    op, sigma, _ = committee_gradient_embedding(zs, hs, temperature=T, biases=[True, False])
    ps = [torch.softmax(z, 1) for z in zs]
    P = sum(ps) / 2
    Q = torch.softmax(torch.log(P) / T, 1)
    ht = [torch.cat([hs[0], torch.ones(n, 1, dtype=torch.float64)], 1), hs[1]]
    for j in range(n):
        grads = []
        for y in range(K):
            oh = torch.nn.functional.one_hot(torch.tensor(y), K).double()
            grads.append(torch.cat([torch.outer(p[j] - oh, hh[j]).reshape(-1)
                                    for p, hh in zip(ps, ht)]) / 2)
        grads = torch.stack(grads)
        e = (Q[j][:, None] * grads).sum(0)
        assert_close(op.dense()[j], e)
        s = (Q[j] * torch.linalg.vector_norm(grads - e, dim=1)).sum() / n
        assert_close(sigma[j], s)


def test_concat_operator_products_match_dense():
    g = torch.Generator().manual_seed(2)
    blocks = [FactoredOperator(torch.randn(20, 3, generator=g), torch.randn(20, 5, generator=g)),
              FactoredOperator(torch.randn(20, 3, generator=g), torch.randn(20, 2, generator=g))]
    op = ConcatOperator(blocks)
    E = op.dense()
    assert E.shape == (20, 21) and op.space_shape == (21,)
    u = torch.randn(20, generator=g)
    r = torch.randn(21, generator=g)
    idx = torch.tensor([3, 7, 11])
    assert_close(op.combine(u), E.T @ u)
    assert_close(op.combine_rows(idx, u[idx]), E[idx].T @ u[idx])
    assert_close(op.project(r), E @ r)
    assert_close(op.project_rows(r, idx), E[idx] @ r)
    assert_close(op.gram_columns(idx), E @ E[idx].T)
    assert_close(op.gram_block(idx, idx), E[idx] @ E[idx].T)
    assert_close(op.sqnorms(), (E * E).sum(1))
    assert_close(op.take(idx).dense(), E[idx])
    sk = op.sketched(4000, generator=torch.Generator().manual_seed(0)).E
    assert_close(sk @ sk.T, E @ E.T, rtol=0.2, atol=0.3 * float((E * E).sum(1).mean()))
    with pytest.raises(ValueError, match=r"same pool"):
        ConcatOperator([blocks[0], blocks[1].take(torch.arange(5))])


# ---------------------------------------------------------------------------------------------
# MC-dropout draws on cached features
# ---------------------------------------------------------------------------------------------
def _net(kind, d=8, K=3):
    torch.manual_seed(0)
    if kind == "last":       # dropout feeds the last layer: cached draws apply
        return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, K))
    if kind == "early":      # dropout before a hidden layer: full forward passes
        return nn.Sequential(nn.Dropout(0.3), nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, K))
    if kind == "two":
        return nn.Sequential(nn.Dropout(0.2), nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(16, K))
    if kind == "between":    # something between the dropout and the last layer
        return nn.Sequential(nn.Linear(d, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, K))
    raise ValueError(kind)


def test_cached_draws_equal_full_forward_draws():
    X = torch.randn(50, 8, generator=torch.Generator().manual_seed(3))
    net = _net("last")
    fast = cached_dropout_probas(net, X, n_samples=40, random_state=5, batch_size=16)
    full = _torch_posterior(net, None, X, [], n_samples=40, random_state=5, batch_size=16,
                            device=None, progress=False)
    assert fast is not None and fast.shape == (40, 50, 3)
    assert_close(fast, full, rtol=1e-5, atol=1e-6)
    # the public entry point takes the cached path and gives the same draws
    assert_close(posterior_probas(net, X, n_samples=40, random_state=5), full,
                 rtol=1e-5, atol=1e-6)
    assert net.training  # modes restored (Sequential starts in training mode)
    other = cached_dropout_probas(net, X, n_samples=40, random_state=6)
    assert not torch.allclose(other, fast)


@pytest.mark.parametrize("kind", ["early", "two", "between"])
def test_cached_draws_refused_when_dropout_does_not_feed_the_last_layer(kind):
    X = torch.randn(10, 8)
    net = _net(kind)
    assert cached_dropout_layer(net, X[:2]) is None
    assert cached_dropout_probas(net, X, n_samples=4, random_state=0) is None
    # posterior_probas still works, through full forward passes
    assert posterior_probas(net, X, n_samples=4, random_state=0).shape == (4, 10, 3)


def test_cached_draws_on_a_skorch_mc_dropout_net(digits):
    pytest.importorskip("skorch")
    from benchmarks.harness.models import fit_model, make_model

    X0, y0, Xp, _ = digits
    net = make_model("mlp-dropout", 64, 10, len(X0), epochs=2, seed=0)
    fit_model(net, X0, y0, seed=0)
    from sparse_query.adapters._torch import _torch_module

    module, dev = _torch_module(net)
    full = _torch_posterior(module, dev, Xp, [], n_samples=30, random_state=1, batch_size=1024,
                            device=None, progress=False)
    fast = cached_dropout_probas(net, Xp, n_samples=30, random_state=1)
    assert fast is not None
    assert_close(fast, full, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# gradient boosting: class-block gradients against autograd
# ---------------------------------------------------------------------------------------------
def test_class_block_embedding_against_autograd():
    from sparse_query.embeddings.committee import class_block_gradient_embedding

    g = torch.Generator().manual_seed(4)
    n, K, L = 6, 3, 7
    H = (torch.rand(n, L, generator=g) < 0.5).double()
    column_class = np.array([0, 0, 1, 1, 1, 2, 2])
    W = torch.randn(L, generator=g, dtype=torch.float64)
    c = torch.randn(K, generator=g, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(column_class), K).double()  # (L, K)
    z = H @ (W[:, None] * onehot) + c
    T = 0.5
    op, sigma = class_block_gradient_embedding(z, H, column_class, temperature=T, bias=True,
                                               dtype=torch.float64)
    P = torch.softmax(z / T, 1)
    E = op.dense()
    for j in range(n):
        grads = []
        for y in range(K):
            Wv, cv = W.clone().requires_grad_(True), c.clone().requires_grad_(True)
            zj = H[j] @ (Wv[:, None] * onehot) + cv
            loss = torch.nn.functional.cross_entropy(zj[None], torch.tensor([y]))
            gW, gc = torch.autograd.grad(loss, (Wv, cv))
            # block k: [dW over leaves of class k, dc_k]
            grads.append(torch.cat([torch.cat([gW[column_class == k], gc[k:k + 1]])
                                    for k in range(K)]))
        grads = torch.stack(grads)
        e = (P[j][:, None] * grads).sum(0)
        assert_close(E[j], e)
        assert_close(sigma[j], (P[j] * torch.linalg.vector_norm(grads - e, dim=1)).sum() / n)


def test_boosting_sampler_uses_class_blocks(digits):
    X0, y0, Xp, _ = digits
    gb = GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X0, y0)
    s = SparseApproxSampler(embedding="leaf-gradient", device="cpu", random_state=0).fit(Xp, gb)
    assert s.embedding_kind_ == "leaf-gradient" and isinstance(s._operator, ConcatOperator)
    assert len(s._operator.blocks) == 10
    idx = s.query(12)
    assert len(np.unique(idx)) == 12


def test_string_labels_and_multi_output(digits):
    X0, y0, Xp, _ = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                       "nine"])[y0]
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X0, labels)
    ll = leaf_last_layer(rf, Xp)
    assert_array_equal(ll.classes, rf.classes_)
    assert_allclose(torch.softmax(ll.logits, 1).numpy(), rf.predict_proba(Xp), atol=1e-9)
    multi = RandomForestClassifier(n_estimators=3, random_state=0).fit(
        X0, np.stack([y0, y0 % 2], 1))
    assert not has_leaf_layer(multi)
    with pytest.raises(EmbeddingNotSupportedError, match=r"not a supported tree ensemble"):
        leaf_last_layer(multi, Xp)


def test_committee_of_nets_with_extra_outputs_is_refused(digits):
    pytest.importorskip("skorch")
    pytest.importorskip("modAL")
    from sparse_query.adapters._draws import committee_last_layers
    from benchmarks.harness.models import fit_model, make_model

    X0, y0, Xp, _ = digits
    keep = y0 < 9                       # the nets have 10 outputs but see 9 classes
    nets = [fit_model(make_model("torch-mlp", 64, 10, int(keep.sum()), epochs=1, seed=s),
                      X0[keep], y0[keep], seed=s) for s in (0, 1)]
    com = _committee(nets, X0[keep], y0[keep])
    with pytest.raises(EmbeddingNotSupportedError, match=r"10 logit columns for the committee's 9"):
        committee_last_layers(com, Xp)


def test_single_class_forest_warns_and_returns_a_batch(digits):
    X0, _, Xp, _ = digits
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X0, np.zeros(len(X0), int))
    with pytest.warns(UserWarning, match=r"single class"):
        idx = SparseApproxSampler(device="cpu", random_state=0).fit_query(Xp, rf, 7)
    assert len(np.unique(idx)) == 7
    # an explicit reliability rule is not asked to measure a one-class model either
    with pytest.warns(UserWarning, match=r"single class"):
        idx = SparseApproxSampler(device="cpu", random_state=0, alpha_reliability="held-out"
                                  ).fit_query(Xp, rf, 7, X_labeled=X0,
                                              y_labeled=np.zeros(len(X0), int))
    assert len(np.unique(idx)) == 7


@pytest.mark.gpu
def test_committee_and_boosting_blocks_on_cuda(digits):
    pytest.importorskip("modAL")
    X0, y0, Xp, _ = digits
    com = _committee([LogisticRegression(max_iter=200),
                      RandomForestClassifier(n_estimators=4, random_state=0)], X0, y0)
    gb = ENSEMBLES["gb"]().fit(X0, y0)
    rf = ENSEMBLES["rf"]().fit(X0, y0)
    for est, emb in ((com, "auto"), (gb, "leaf-gradient"), (rf, "auto"),
                     (rf, "leaf-input-gradient")):  # a sparse and a dense block
        cpu = SparseApproxSampler(embedding=emb, device="cpu", dtype="float64",
                                  random_state=0).fit_query(Xp, est, 10)
        gpu = SparseApproxSampler(embedding=emb, device="cuda", dtype="float64",
                                  random_state=0).fit_query(Xp, est, 10)
        assert_array_equal(np.sort(cpu), np.sort(gpu))
    X = torch.randn(50, 8)
    net = _net("last").cuda()
    fast = cached_dropout_probas(net, X, n_samples=20, random_state=5)
    full = _torch_posterior(net, None, X, [], n_samples=20, random_state=5, batch_size=16,
                            device=None, progress=False)
    assert_close(fast, full, rtol=1e-4, atol=1e-5)


def test_forest_leaf_gradient_stays_sparse_and_matches_the_dense_path():
    """The forest's indicators go through the sparse factored operator: never densified, and
    the same batch as the dense factored operator on the densified indicators."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from sparse_query import SparseApproxSampler
    from sparse_query.adapters import leaf_last_layer
    from sparse_query.embeddings import gradient_embedding
    from sparse_query.problem import FactoredOperator, SparseApproxProblem
    from sparse_query.operators.sparse import SparseFactoredOperator
    from sparse_query.solvers import greedy

    X, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(20, random_state=0).fit(X[:200], y[:200])
    pool = X[200:900]
    s = SparseApproxSampler(solver="greedy", device="cpu", dtype="float64", random_state=0)
    s.fit(pool, rf)
    assert s.embedding_kind_ == "leaf-gradient"
    assert isinstance(s._operator, SparseFactoredOperator)
    got = s.query(15)
    ll = leaf_last_layer(rf, pool)
    emb = gradient_embedding(ll.logits, ll.dense_features(torch.float64), temperature=0.01,
                             bias=ll.bias)
    n = pool.shape[0]
    prob = SparseApproxProblem(FactoredOperator(emb.a, emb.h), emb.sigma, 15,
                               alpha=0.1 * n ** 2 / 15, beta=1e-3, device="cpu", dtype="float64")
    np.testing.assert_array_equal(got, greedy(prob).indices)
