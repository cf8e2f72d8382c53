"""embedding="leaf-input-gradient": the leaves and the trees' standardized inputs as one last
layer (sparse_query.embeddings.leaf_inputs), against a brute-force construction."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline

from sparse_query import SparseApproxSampler
from sparse_query.adapters._trees import leaf_last_layer
from sparse_query.embeddings.leaf_inputs import (
    leaf_input_gradient_embedding,
    standardized_inputs,
)


def _forest_and_pool(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 2] = 3.0                                     # a constant column
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    rf = RandomForestClassifier(7, max_depth=3, random_state=seed).fit(X[:30], y[:30])
    return rf, X


def _brute(logits, leaves, inputs, T, w, n):
    """Gram matrix and sigma of e_j = (p_j - P_j) (outer) [l_j / r_l, w x~_j / r_x]."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    p, P = torch.softmax(z, 1), torch.softmax(z / T, 1)
    L = np.asarray(leaves.todense(), dtype=np.float64)
    X = np.asarray(inputs, dtype=np.float64)
    sd = X.std(0)
    Xs = np.where(sd > 0, (X - X.mean(0)) / np.where(sd > 0, sd, 1), 0.0)
    r_l = np.sqrt(np.mean((L ** 2).sum(1)))
    r_x = np.sqrt(np.mean((Xs ** 2).sum(1)))
    H = torch.as_tensor(np.hstack([L / r_l, w * Xs / r_x]))
    a = p - P
    gram = (a @ a.T) * (H @ H.T)
    K = z.shape[1]
    eye = torch.eye(K, dtype=torch.float64)
    spread = torch.stack([(P[j] * torch.linalg.norm(P[j][None] - eye, dim=1)).sum()
                          for j in range(z.shape[0])])
    return gram, torch.linalg.norm(H, dim=1) * spread / n


@pytest.mark.parametrize("w", [0.5, 2.0])
def test_embedding_matches_brute_force(w):
    rf, X = _forest_and_pool()
    ll = leaf_last_layer(rf, X, with_inputs=True)
    assert ll.inputs is X                  # the pool itself: no copy
    op, sigma = leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs,
                                              temperature=0.1, input_weight=w)
    gram, sig = _brute(ll.logits, ll.features, X, 0.1, w, len(X))
    E = op.dense().double()
    np.testing.assert_allclose((E @ E.T).numpy(), gram.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sigma.double().numpy(), sig.numpy(), rtol=1e-4, atol=1e-9)


def test_zero_weight_is_the_scaled_leaf_embedding():
    rf, X = _forest_and_pool()
    ll = leaf_last_layer(rf, X, with_inputs=True)
    op, _ = leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs, temperature=0.1,
                                          input_weight=0.0)
    assert len(op.blocks) == 1
    gram, _ = _brute(ll.logits, ll.features, X, 0.1, 0.0, len(X))
    E = op.dense().double()
    np.testing.assert_allclose((E @ E.T).numpy(), gram.numpy(), rtol=1e-4, atol=1e-6)


def test_standardized_inputs_dense_and_sparse():
    rng = np.random.default_rng(1)
    X = rng.normal(2.0, 3.0, size=(50, 4))
    X[:, 1] = -7.0
    Xs = standardized_inputs(X)
    assert Xs.dtype == np.float32
    np.testing.assert_allclose(Xs.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(Xs.std(0), [1, 0, 1, 1], atol=1e-5)
    S = sp.random(50, 30, density=0.1, random_state=0, format="csr")
    Ss = standardized_inputs(S)
    assert sp.issparse(Ss) and Ss.nnz == S.nnz          # scaled, not centred: stays sparse
    rms = np.sqrt(np.asarray(Ss.multiply(Ss).mean(0))).ravel()
    nonzero = np.asarray((S != 0).sum(0)).ravel() > 0
    np.testing.assert_allclose(rms[nonzero], 1, rtol=1e-5)
    assert np.all(rms[~nonzero] == 0)


def test_sparse_inputs_stay_sparse_through_the_sampler():
    rng = np.random.default_rng(2)
    X = sp.random(200, 500, density=0.02, random_state=2, format="csr", dtype=np.float64)
    y = rng.integers(0, 3, size=200)
    rf = RandomForestClassifier(10, random_state=0).fit(X[:80], y[:80])
    ll = leaf_last_layer(rf, X, with_inputs=True)
    assert sp.issparse(ll.inputs) and ll.inputs.shape == (200, 500)
    op, _ = leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs, temperature=0.01,
                                          input_weight=0.5)
    assert [type(b).__name__ for b in op.blocks] == ["SparseFactoredOperator"] * 2
    s = SparseApproxSampler(embedding="leaf-input-gradient", random_state=0, device="cpu")
    idx = np.asarray(s.fit(X[80:], rf).query(12))
    assert len(set(idx.tolist())) == 12 and s.embedding_kind_ == "leaf-input-gradient"


def test_pipeline_inputs_are_what_the_trees_split_on():
    rf, X = _forest_and_pool()
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=len(X))
    pipe = make_pipeline(PCA(3, random_state=0),
                         RandomForestClassifier(5, random_state=0)).fit(X, y)
    ll = leaf_last_layer(pipe, X, with_inputs=True)
    np.testing.assert_allclose(ll.inputs, pipe[:-1].transform(X).astype(np.float32), rtol=1e-6)
    idx = np.asarray(SparseApproxSampler(embedding="leaf-input-gradient", random_state=0,
                                         device="cpu").fit(X, pipe).query(5))
    assert len(set(idx.tolist())) == 5


def test_copies_of_one_row_are_not_picked_twice():
    rf, X = _forest_and_pool()
    pool = np.vstack([X, np.repeat(X[:3], 20, axis=0)])  # 60 copies of three rows
    idx = np.asarray(SparseApproxSampler(embedding="leaf-input-gradient", random_state=0,
                                         device="cpu").fit(pool, rf).query(20))
    rows = {tuple(r) for r in pool[idx]}
    assert len(rows) == 20


def test_boosting_and_mismatched_rows_are_refused():
    rf, X = _forest_and_pool()
    y = (X[:, 0] > 0).astype(int)
    gb = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"leaf-input-gradient' serves forests.*"
                                         r"embedding='leaf-gradient'"):
        SparseApproxSampler(embedding="leaf-input-gradient", device="cpu").fit(X, gb)
    ll = leaf_last_layer(rf, X, with_inputs=True)
    with pytest.raises(ValueError, match="inputs has 10 rows but leaves has 60"):
        leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs[:10], temperature=0.1,
                                      input_weight=0.5)
    with pytest.raises(ValueError, match="input_weight"):
        leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs, temperature=0.1,
                                      input_weight=-1.0)


def test_dask_pool_names_the_embedding_it_cannot_serve(inproc_client):
    da = pytest.importorskip("dask.array")
    rf, X = _forest_and_pool()
    with pytest.raises(ValueError, match="embedding='gradient' only.*'leaf-input-gradient'"):
        SparseApproxSampler(embedding="leaf-input-gradient", device="cpu").fit(
            da.from_array(X, chunks=20), rf)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_through_a_modal_learner_and_a_dataframe_pool():
    """The call a modAL user makes: a near-chance forest (labels independent of the inputs)
    behind an ActiveLearner, on a DataFrame pool, picks with the inputs beside the leaves; the
    same batch as the numpy pool."""
    modAL = pytest.importorskip("modAL")
    pd = pytest.importorskip("pandas")
    from modAL.models import ActiveLearner

    from sparse_query import SparseApproxSampler

    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 6))
    y = rng.integers(0, 4, size=500)
    cols = [f"f{i}" for i in range(6)]
    frame = pd.DataFrame(X, columns=cols)
    s = SparseApproxSampler(random_state=0, device="cpu")
    learner = ActiveLearner(estimator=RandomForestClassifier(20, random_state=0),
                            query_strategy=s, X_training=frame.iloc[:90], y_training=y[:90])
    idx, _ = learner.query(frame.iloc[90:], n_instances=15)
    assert s.embedding_kind_ == "leaf-input-gradient" and s.reliability_ < 0.2
    assert len(set(np.asarray(idx).tolist())) == 15
    plain = SparseApproxSampler(random_state=0, device="cpu").fit_query(
        X[90:], learner.estimator, 15, X_labeled=frame.iloc[:90], y_labeled=y[:90])
    assert sorted(np.asarray(idx).tolist()) == sorted(plain.tolist())
