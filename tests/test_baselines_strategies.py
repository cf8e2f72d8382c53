"""Baseline strategies as scikit-learn estimators and modAL query strategies (both releases)."""
import inspect
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sparse_query import baselines
from sparse_query.baselines import (
    BADGE, BALD, BatchBALD, BayesianCoreset, EntropySampling, KCenterGreedy,
    LeastConfidenceSampling, MarginSampling, RandomSampling,
)

NON_BAYESIAN = [RandomSampling, EntropySampling, MarginSampling, LeastConfidenceSampling,
                KCenterGreedy, BADGE]
BAYESIAN = [BALD, BatchBALD, BayesianCoreset]
ALL = NON_BAYESIAN + BAYESIAN


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0)[:300]
    return X, y[:300]


def _lr(X, y):
    return LogisticRegression(max_iter=300).fit(X, y)


def _rf(X, y):
    return RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)


def _model_for(cls, X, y):
    return _rf(X, y) if cls in BAYESIAN else _lr(X, y)


def _check_batch(idx, n, b):
    idx = np.asarray(idx)
    assert idx.dtype == np.int64 and idx.shape == (b,)
    assert len(np.unique(idx)) == b and idx.min() >= 0 and idx.max() < n


# ---------------------------------------------------------------------------------------------
# scikit-learn estimator rules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_get_params_and_clone_round_trip(cls):
    params = {k: v for k, v in cls().get_params().items()}
    assert params["device"] == "auto" and params["random_state"] is None
    changed = dict(params, random_state=7, device="cpu")
    est = cls(**changed)
    assert est.get_params() == changed
    assert clone(est).get_params() == changed
    # keyword-only signature: nothing positional to misplace
    kinds = {p.kind for n, p in inspect.signature(cls).parameters.items()}
    assert kinds <= {inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("cls", ALL)
def test_fit_query_and_attributes(cls, data):
    X, y = data
    model = _model_for(cls, X[:60], y[:60])
    s = cls(device="cpu", random_state=0).fit(X, model, X_labeled=X[:60], y_labeled=y[:60])
    assert s.n_pool_ == len(X)
    idx = s.query(7)
    _check_batch(idx, len(X), 7)
    assert np.array_equal(s.indices_, idx) and s.query_scores_.shape == (7,)


@pytest.mark.parametrize("cls", [RandomSampling, BADGE, BatchBALD, KCenterGreedy])
def test_same_seed_same_batch_and_global_rng_untouched(cls, data):
    X, y = data
    model = _model_for(cls, X[:60], y[:60])
    kw = dict(init="random") if cls is KCenterGreedy else {}
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = cls(device="cpu", random_state=3, **kw).fit_query(X, model, 10)
    b = cls(device="cpu", random_state=3, **kw).fit_query(X, model, 10)
    assert np.array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_random_sampling_is_uniform_without_replacement():
    counts = np.zeros(5)
    for seed in range(400):
        idx = RandomSampling(random_state=seed).fit_query(np.zeros((5, 1)), None, 2)
        counts[idx] += 1
    assert_allclose(counts / 400, 0.4, atol=0.08)


def test_uncertainty_strategies_match_their_kernels(data):
    X, y = data
    lr = _lr(X[:60], y[:60])
    p = lr.predict_proba(X)
    for cls, fn in [(EntropySampling, baselines.entropy_scores),
                    (MarginSampling, baselines.margin_scores),
                    (LeastConfidenceSampling, baselines.least_confidence_scores)]:
        s = cls(device="cpu").fit(X, lr)
        assert_allclose(s.scores_.numpy(), fn(p).numpy(), rtol=1e-10)
        want = np.argsort(-fn(p).numpy(), kind="stable")[:5]
        assert s.query(5).tolist() == want.tolist()


def test_bald_uses_the_ensemble_members(data):
    X, y = data
    rf = _rf(X[:60], y[:60])
    draws = np.stack([t.predict_proba(X) for t in rf.estimators_])
    s = BALD(device="cpu").fit(X, rf)
    assert_allclose(s.scores_.numpy(), baselines.bald_scores(draws).numpy(), rtol=1e-10)


def test_kcenter_starts_from_the_labeled_set(data):
    X, y = data
    lr = _lr(X[:60], y[:60])
    idx = KCenterGreedy(device="cpu").fit_query(X, lr, 5, X_labeled=X[:60])
    want = baselines.kcenter_greedy(X, 5, X[:60]).indices.numpy()
    assert idx.tolist() == want.tolist()
    assert not set(idx.tolist()) & set(range(60))  # pool copies of labeled points are skipped


def test_bayesian_coreset_exposes_padding(data):
    X, y = data
    s = BayesianCoreset(device="cpu", max_iter=1).fit(X, _rf(X[:60], y[:60]))
    _check_batch(s.query(6), len(X), 6)
    assert s.n_padded_ == 5 and s.n_iter_ == 1 and s.weights_.shape == (len(X),)


# ---------------------------------------------------------------------------------------------
# degenerate pools
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("pool", ["duplicates", "uniform_probs"])
@pytest.mark.parametrize("b", [1, 6, 12])
def test_degenerate_pools_give_exactly_b_distinct_indices(cls, pool, b, data):
    X, y = data
    if pool == "duplicates":
        model = _model_for(cls, X[:60], y[:60])
        X_pool = np.repeat(X[60:61], 12, axis=0)
    else:  # a constant feature and balanced labels: every prediction is exactly uniform
        Xc = np.zeros((40, 3))
        yc = np.repeat([0, 1, 2, 3], 10)
        model = _model_for(cls, Xc, yc)
        X_pool = np.zeros((12, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "too few distinct points" is expected
        idx = cls(device="cpu", random_state=0).fit_query(X_pool, model, b)
    _check_batch(idx, 12, b)


# ---------------------------------------------------------------------------------------------
# bad parameter values
# ---------------------------------------------------------------------------------------------
BAD = [
    (ALL, dict(random_state=-1), ValueError, "random_state=-1 must be a non-negative integer"),
    (ALL, dict(random_state="x"), TypeError, "random_state must be None"),
    (ALL, dict(device="tpu"), ValueError, "device='tpu'"),
    (ALL, dict(device=3), TypeError, "device must be a string"),
    ([c for c in ALL if c is not RandomSampling], dict(batch_size=0), ValueError,
     "batch_size=0 must be >= 1"),
    ([EntropySampling, MarginSampling, LeastConfidenceSampling] + BAYESIAN,
     dict(n_posterior_samples=0), ValueError, "n_posterior_samples=0 must be >= 1"),
    ([BatchBALD], dict(n_configurations=0), ValueError, "n_configurations=0 must be >= 1"),
    ([BatchBALD], dict(n_configurations=1.5), TypeError, "n_configurations must be an integer"),
    ([KCenterGreedy], dict(init="median"), ValueError, "init='median' is not one of"),
    ([BayesianCoreset], dict(centering="median"), ValueError, "centering='median' is not one of"),
    ([BayesianCoreset], dict(max_iter=0), ValueError, "max_iter=0 must be >= 1"),
]


@pytest.mark.parametrize(
    "cls,kw,err,msg",
    [(c, kw, err, msg) for classes, kw, err, msg in BAD for c in classes],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_bad_parameter_values(cls, kw, err, msg, data):
    X, y = data
    model = _model_for(cls, X[:30], y[:30])
    with pytest.raises(err, match=msg):
        cls(**kw).fit(X[:40], model)


@pytest.mark.parametrize("cls", ALL)
def test_bad_n_instances(cls, data):
    X, y = data
    s = cls(device="cpu").fit(X[:20], _model_for(cls, X[:30], y[:30]))
    with pytest.raises(ValueError, match="n_instances=21 must be <= 20"):
        s.query(21)
    with pytest.raises(ValueError, match="n_instances=0 must be >= 1"):
        s.query(0)


def test_models_without_the_needed_outputs_are_refused(data):
    from sparse_query.adapters import EmbeddingNotSupportedError

    X, y = data
    with pytest.raises(EmbeddingNotSupportedError):
        BALD(device="cpu").fit(X, _lr(X[:30], y[:30]))
    with pytest.raises(EmbeddingNotSupportedError):
        BADGE(device="cpu").fit(X, _rf(X[:30], y[:30]))


# ---------------------------------------------------------------------------------------------
# modAL
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def modal_models():
    return pytest.importorskip("modAL.models")


@pytest.mark.slow
@pytest.mark.parametrize("cls", ALL)
def test_modal_active_learner_two_rounds(cls, data, modal_models):
    X, y = data
    est = RandomForestClassifier(8, random_state=0) if cls in BAYESIAN else \
        LogisticRegression(max_iter=300)
    learner = modal_models.ActiveLearner(est, query_strategy=cls(device="cpu", random_state=0),
                                         X_training=X[:30], y_training=y[:30])
    pool = np.arange(30, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # modAL 0.4.1 vs scikit-learn 1.7
        for _ in range(2):
            idx, inst = learner.query(X[pool], n_instances=5)
            _check_batch(idx, len(pool), 5)
            assert np.array_equal(inst, X[pool][idx])
            learner.teach(X[pool][idx], y[pool][idx])
            pool = np.delete(pool, idx)
    assert learner.X_training.shape[0] == 40


@pytest.mark.slow
@pytest.mark.parametrize("cls", BAYESIAN)
def test_modal_committee(cls, data, modal_models):
    X, y = data
    members = [modal_models.ActiveLearner(RandomForestClassifier(4, random_state=i),
                                          X_training=X[:30], y_training=y[:30])
               for i in range(3)]
    committee = modal_models.Committee(members, query_strategy=cls(device="cpu", random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for _ in range(2):
            idx, _ = committee.query(X[30:], n_instances=4)
            _check_batch(idx, len(X) - 30, 4)
            committee.teach(X[30:][idx], y[30:][idx])


@pytest.mark.slow
@pytest.mark.parametrize("cls", BAYESIAN)
def test_modal_mc_dropout_skorch_net(cls, data, modal_models):
    skorch = pytest.importorskip("skorch")
    from sparse_query.nn import MLP

    X, y = data
    X = X.astype(np.float32)
    net = skorch.NeuralNetClassifier(
        MLP, module__n_features=64, module__n_classes=10, module__hidden=(16,),
        module__dropout=0.3, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, lr=0.1,
        train_split=None, verbose=0, iterator_train__shuffle=False,
    )
    learner = modal_models.ActiveLearner(
        net, query_strategy=cls(device="cpu", random_state=0, n_posterior_samples=5),
        X_training=X[:40], y_training=y[:40])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for _ in range(2):
            module = learner.estimator.module_
            modes = [m.training for m in module.modules()]
            idx, _ = learner.query(X[40:], n_instances=3)
            assert modes == [m.training for m in module.modules()]  # dropout state restored
            _check_batch(idx, len(X) - 40, 3)
            learner.teach(X[40:][idx], y[40:][idx])


class _FakeLearner042:
    """Looks like a modAL 0.4.2.1 learner: module name and ``query(..., return_metrics)``."""

    def __init__(self, estimator, strategy, X, y):
        self.estimator, self.query_strategy = estimator, strategy
        self.X_training, self.y_training = X, y

    def query(self, X_pool, n_instances=1, return_metrics=False):
        idx, metrics = self.query_strategy(self, X_pool, n_instances=n_instances)
        return (idx, X_pool[idx], metrics) if return_metrics else (idx, X_pool[idx])


_FakeLearner042.__module__ = "modAL.models.learners"


@pytest.mark.parametrize("cls", ALL)
def test_modal_0421_gets_indices_and_metrics(cls, data):
    X, y = data
    model = _model_for(cls, X[:30], y[:30])
    strategy = cls(device="cpu", random_state=0)
    learner = _FakeLearner042(model, strategy, X[:30], y[:30])
    idx, inst, metrics = learner.query(X[30:], n_instances=4, return_metrics=True)
    _check_batch(idx, len(X) - 30, 4)
    assert np.asarray(metrics).shape == (4,)
    assert_allclose(metrics, strategy.query_scores_)
    # a caller that is not modAL gets bare indices
    bare = strategy(model, X[30:], n_instances=4)
    _check_batch(bare, len(X) - 30, 4)


def test_modal_call_rejects_unknown_keywords(data):
    X, y = data
    with pytest.raises(TypeError, match="unexpected keyword"):
        EntropySampling()(_lr(X[:30], y[:30]), X, n_instances=2, temperature=1)
