"""SparseApproxSampler: scikit-learn estimator rules, modAL integration, bad input."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sparse_query import SparseApproxSampler, sparse_greedy, sparse_iht
from sparse_query.adapters import EmbeddingNotSupportedError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(X))
    X, y = (X[perm] / 16.0).astype(np.float32), y[perm]
    return X[:40], y[:40], X[40:640], y[40:640]


@pytest.fixture(scope="module")
def logreg(digits):
    X0, y0, _, _ = digits
    return LogisticRegression(max_iter=500).fit(X0, y0)


def _valid(idx, n, b):
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
    assert idx.shape == (b,) and len(np.unique(idx)) == b
    assert idx.min() >= 0 and idx.max() < n


# -- scikit-learn estimator rules ---------------------------------------------------------------
def test_get_set_params_and_clone_round_trip():
    s = SparseApproxSampler(solver="iht", alpha=2.0, beta=0.01, temperature="auto", sketch_dim=64,
                            random_state=3, device="cpu")
    c = clone(s)
    assert c.get_params() == s.get_params()
    assert c is not s
    c.set_params(alpha=5.0, solver="greedy")
    assert c.alpha == 5.0 and c.solver == "greedy" and s.alpha == 2.0
    # __init__ stores its arguments as given, even bad ones: errors come at fit time
    bad = SparseApproxSampler(solver="nope")
    assert bad.solver == "nope"
    assert repr(SparseApproxSampler(alpha=2.0)) == "SparseApproxSampler(alpha=2.0)"


def test_ready_instances():
    assert sparse_greedy.solver == "greedy" and sparse_iht.solver == "iht"
    assert isinstance(sparse_greedy, SparseApproxSampler)


@pytest.mark.parametrize("solver", ["greedy", "iht"])
def test_fit_query_without_modal(digits, logreg, solver):
    _, _, Xp, _ = digits
    s = SparseApproxSampler(solver=solver, device="cpu", random_state=0)
    assert s.fit(Xp, logreg) is s
    idx = s.query(25)
    _valid(idx, len(Xp), 25)
    assert np.array_equal(idx, s.indices_)
    assert s.weights_.shape == (25,) and np.all(s.weights_ >= 0)
    assert np.isfinite(s.objective_) and s.n_iter_ >= 1
    assert s.embedding_kind_ == "gradient" and s.temperature_ == 0.01 and s.temperature_source_ == "fixed"
    assert s.embedding_time_ > 0 and s.solve_time_ > 0
    # query again without refitting: same answer; another batch size from the same fit
    assert np.array_equal(s.query(25), idx)
    _valid(s.query(3), len(Xp), 3)
    assert np.array_equal(s.fit_query(Xp, logreg, 25), idx)


def test_same_random_state_same_batch_and_sketch_seeded(digits, logreg):
    _, _, Xp, _ = digits
    a = SparseApproxSampler(solver="iht", sketch_dim=32, random_state=7, device="cpu").fit_query(Xp, logreg, 20)
    b = SparseApproxSampler(solver="iht", sketch_dim=32, random_state=7, device="cpu").fit_query(Xp, logreg, 20)
    assert np.array_equal(a, b)
    _valid(a, len(Xp), 20)


def test_temperature_auto_uses_the_learners_labels(digits):
    ActiveLearner = pytest.importorskip("modAL.models").ActiveLearner

    X0, y0, Xp, yp = digits
    learner = ActiveLearner(LogisticRegression(max_iter=500), X_training=np.vstack([X0, Xp[:80]]),
                            y_training=np.concatenate([y0, yp[:80]]))
    s = SparseApproxSampler(temperature="auto", random_state=0, device="cpu")
    idx = s(learner, Xp[80:], n_instances=10)
    _valid(idx, len(Xp) - 80, 10)
    assert s.temperature_source_ == "held-out" and s.temperature_ > 0
    # no labeled data anywhere: documented fallback
    s2 = SparseApproxSampler(temperature="auto", device="cpu").fit(Xp, learner.estimator)
    assert s2.temperature_source_.startswith("fallback") and s2.temperature_ == 0.1
    # validation data given explicitly
    s3 = SparseApproxSampler(temperature="auto", validation_data=(Xp[:100], yp[:100]), device="cpu")
    s3.fit(Xp[100:], learner.estimator)
    assert s3.temperature_source_ == "validation"


def test_sketch_dim_and_solver_auto_resolve_by_cost(digits, logreg):
    import torch

    from sparse_query.problem import FactoredOperator

    _, _, Xp, _ = digits
    s = SparseApproxSampler(device="cpu").fit(Xp, logreg)
    s.query(5)
    assert s.sketch_dim == "auto" and s.sketch_dim_ is None  # 600 points: exact
    assert s.solver == "auto" and s.solver_ == "greedy"
    s.n_pool_ = 20_000  # pretend the pool is large: the 10 x 65 = 650-dim embedding stays exact
    assert s._plan(5) == ("greedy", None)
    assert s._plan(400) == ("iht", None)  # 400 greedy steps cost more than IHT's passes
    # K = 10, d = 512: exact IHT (20 passes of 5,643) is cheaper than building a sketch
    # (523 x 256 per row); greedy at b = 1,000 is cheaper on the sketch
    s._operator = FactoredOperator(torch.zeros(20_000, 10), torch.zeros(20_000, 512),
                                   ones_column=True)
    s._embedding_dim = 5130
    assert s._plan(100) == ("greedy", None)
    assert s._plan(1000) == ("iht", None)
    s.set_params(solver="greedy")
    assert s._plan(100) == ("greedy", None) and s._plan(1000) == ("greedy", 256)
    s.set_params(sketch_dim=64)
    assert s._plan(1000) == ("greedy", 64)
    s.set_params(sketch_dim=None, solver="iht")
    assert s._plan(1000) == ("iht", None)


def test_temperature_limits_change_the_batch(digits, logreg):
    """T = 1 is pure uncertainty: the batch is the top-b by sigma."""
    _, _, Xp, _ = digits
    s = SparseApproxSampler(temperature=1.0, device="cpu", dtype="float64").fit(Xp, logreg)
    idx = s.query(10)
    sigma = s._sigma.numpy()
    assert sorted(idx.tolist()) == sorted(np.argsort(-sigma, kind="stable")[:10].tolist())


# -- modAL end to end ----------------------------------------------------------------------------
def _loop(learner, strategy, Xp, yp, rounds=3, b=8):
    unl = np.ones(len(Xp), bool)
    for _ in range(rounds):
        pool = np.flatnonzero(unl)
        calls = strategy._calls = []
        q, Xq = learner.query(Xp[pool], n_instances=b)
        q = np.asarray(q)
        _valid(q, len(pool), b)
        assert np.asarray(Xq).shape[0] == b
        learner.teach(Xp[pool[q]], yp[pool[q]])
        unl[pool[q]] = False
    return learner


class Counting(SparseApproxSampler):
    """Counts calls so a test can check modAL calls the strategy exactly once per query."""

    def __call__(self, *args, **kwargs):
        getattr(self, "_calls", []).append(1)
        out = super().__call__(*args, **kwargs)
        assert len(self._calls) == 1
        return out


def _skorch_net(dropout=0.0, epochs=8):
    NeuralNetClassifier = pytest.importorskip("skorch").NeuralNetClassifier

    from sparse_query.nn import MLP

    torch.manual_seed(0)
    return NeuralNetClassifier(
        MLP, module__n_features=64, module__n_classes=10, module__hidden=(32,),
        module__dropout=dropout, criterion=torch.nn.CrossEntropyLoss, max_epochs=epochs, lr=0.1,
        train_split=None, verbose=0, device="cpu",
    )


ESTIMATORS = {
    "logreg": lambda: LogisticRegression(max_iter=300),
    "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0),
    "skorch": lambda: _skorch_net(),
    "forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("solver", ["greedy", "iht"])
def test_active_learner_rounds(digits, name, solver):
    ActiveLearner = pytest.importorskip("modAL.models").ActiveLearner

    X0, y0, Xp, yp = digits
    strategy = Counting(solver=solver, device="cpu", random_state=0)
    learner = ActiveLearner(ESTIMATORS[name](), query_strategy=strategy, X_training=X0, y_training=y0)
    _loop(learner, strategy, Xp, yp)
    assert strategy.embedding_kind_ == ("leaf-gradient" if name == "forest" else "gradient")


def test_mc_dropout_skorch_net_with_posterior_embedding(digits):
    ActiveLearner = pytest.importorskip("modAL.models").ActiveLearner

    X0, y0, Xp, yp = digits
    strategy = Counting(embedding="posterior", n_posterior_samples=8, random_state=0, device="cpu")
    learner = ActiveLearner(_skorch_net(dropout=0.3), query_strategy=strategy, X_training=X0, y_training=y0)
    _loop(learner, strategy, Xp, yp, rounds=2)
    assert strategy.embedding_kind_ == "posterior"
    # the draws are seeded: the same call twice gives the same batch
    a = SparseApproxSampler(embedding="posterior", n_posterior_samples=8, random_state=1).fit_query(Xp, learner, 5)
    b = SparseApproxSampler(embedding="posterior", n_posterior_samples=8, random_state=1).fit_query(Xp, learner, 5)
    assert np.array_equal(a, b)


def test_committee(digits):
    modal_models = pytest.importorskip("modAL.models")
    ActiveLearner, Committee = modal_models.ActiveLearner, modal_models.Committee

    X0, y0, Xp, yp = digits
    members = [
        ActiveLearner(LogisticRegression(max_iter=300, C=c), X_training=X0, y_training=y0)
        for c in (0.1, 1.0, 10.0)
    ]
    strategy = Counting(solver="iht", random_state=0, device="cpu")
    committee = Committee(learner_list=members, query_strategy=strategy)
    _loop(committee, strategy, Xp, yp, rounds=2)
    assert strategy.embedding_kind_ == "committee-gradient"  # members have last layers


_MODAL_0421_SCRIPT = textwrap.dedent(
    """
    import warnings, inspect
    warnings.filterwarnings("ignore")
    import numpy as np, modAL
    from modAL.models import ActiveLearner
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sparse_query import SparseApproxSampler
    assert "return_metrics" in inspect.signature(ActiveLearner.query).parameters, modAL.__file__
    calls = []
    class Counting(SparseApproxSampler):
        def __call__(self, *a, **k):
            calls.append(1)
            return super().__call__(*a, **k)
    X, y = load_digits(return_X_y=True)
    for solver in ("greedy", "iht"):
        s = Counting(solver=solver, random_state=0, device="cpu")
        learner = ActiveLearner(LogisticRegression(max_iter=300), query_strategy=s,
                                X_training=X[:50], y_training=y[:50])
        for b in (1, 2, 5):
            calls.clear()
            idx, Xq = learner.query(X[50:], n_instances=b)
            assert len(calls) == 1, calls
            idx = np.asarray(idx)
            assert idx.shape == (b,) and len(set(idx.tolist())) == b, idx
            assert np.asarray(Xq).shape == (b, 64)
        idx, Xq, metrics = learner.query(X[50:], n_instances=3, return_metrics=True)
        assert np.asarray(metrics).shape == (3,)
    print("ok")
    """
)


@pytest.mark.slow
def test_modal_0421_in_a_subprocess(tmp_path_factory):
    """modAL 0.4.2.1 expects (indices, metrics); installed with --no-deps beside 0.4.1."""
    target = tmp_path_factory.mktemp("modal0421")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         "modAL-python==0.4.2.1"],
        capture_output=True, text=True,
    )
    if pip.returncode != 0:
        pytest.skip(f"could not install modAL-python 0.4.2.1: {pip.stderr[-300:]}")
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run([sys.executable, "-c", _MODAL_0421_SCRIPT], capture_output=True,
                         text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("ok")


def test_plain_call_returns_bare_indices(digits, logreg):
    _, _, Xp, _ = digits
    out = sparse_iht(logreg, Xp, n_instances=4)
    _valid(out, len(Xp), 4)


# -- bad input ---------------------------------------------------------------------------------------
def test_n_instances_errors(digits, logreg):
    _, _, Xp, _ = digits
    s = SparseApproxSampler(device="cpu")
    with pytest.raises(ValueError, match=r"n_instances=601 must be <= 600.*exceeds the pool size 600"):
        s(logreg, Xp, n_instances=601)
    with pytest.raises(ValueError, match=r"n_instances=0 must be >= 1"):
        s(logreg, Xp, n_instances=0)
    with pytest.raises(TypeError, match=r"n_instances must be an integer"):
        s(logreg, Xp, n_instances=2.0)


def test_pool_errors(digits, logreg):
    _, _, Xp, _ = digits
    s = SparseApproxSampler(device="cpu")
    with pytest.raises(ValueError, match=r"X_pool is empty"):
        s(logreg, Xp[:0], n_instances=1)
    bad = Xp.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"X_pool contains NaN or infinity \(first at row 7\)"):
        s(logreg, bad, n_instances=2)
    with pytest.raises(ValueError, match=r"X_pool has 10 features but the estimator was fitted with 64"):
        s(logreg, Xp[:, :10], n_instances=2)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['foo'\]"):
        s(logreg, Xp, n_instances=2, foo=1)


def test_unfitted_and_unsupported_estimators(digits):
    X0, y0, Xp, _ = digits
    with pytest.raises(NotFittedError):
        sparse_greedy(LogisticRegression(), Xp, n_instances=2)
    svc = SVC().fit(X0, y0)  # no predict_proba, no last layer, no posterior
    with pytest.raises(EmbeddingNotSupportedError, match=r"SVC has no predict_proba, no last "
                                                         r"linear layer.*probability=True"):
        SparseApproxSampler(device="cpu")(svc, Xp, n_instances=2)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X0, y0)
    with pytest.raises(EmbeddingNotSupportedError, match=r"posterior"):
        SparseApproxSampler(embedding="gradient", device="cpu")(forest, Xp, n_instances=2)


def test_single_class_labeled_set_warns_and_returns_a_batch(digits):
    X0, _, Xp, _ = digits
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X0, np.zeros(len(X0), int))
    s = SparseApproxSampler(random_state=0, device="cpu")
    with pytest.warns(UserWarning, match=r"single class"):
        idx = s(forest, Xp, n_instances=6)
    _valid(idx, len(Xp), 6)


BAD_PARAMS = [
    ({"solver": "adam"}, ValueError, r"solver='adam' is not one of \['auto', 'greedy', 'iht'\]"),
    ({"alpha": -1.0}, ValueError, r"alpha=-1.0 must be >= 0"),
    ({"alpha": "big"}, TypeError, r"alpha must be a real number"),
    ({"alpha_scale": "log"}, ValueError, r"alpha_scale='log' is not one of \['none', 'pool'\]"),
    ({"alpha_reliability": "cv"}, ValueError, r"alpha_reliability='cv' must be 'auto'"),
    ({"beta": float("inf")}, ValueError, r"beta=inf must be finite"),
    ({"tau": 0.0}, ValueError, r"tau=0.0 must be > 0"),
    ({"max_iter": 0}, ValueError, r"max_iter=0 must be >= 1"),
    ({"tol": -1e-3}, ValueError, r"tol=-0.001 must be >= 0"),
    ({"patience": 0}, ValueError, r"patience=0 must be >= 1"),
    ({"prox": "fast"}, ValueError, r"prox='fast' is not one of"),
    ({"iht_init": "warm"}, ValueError, r"iht_init='warm' is not one of \['both', 'fallback', 'spread', 'zero'\]"),
    ({"embedding": "bayes"}, ValueError, r"embedding='bayes' is not one of"),
    ({"temperature": "hot"}, ValueError, r"temperature='hot' must be 'auto' or a number >= 0"),
    ({"temperature": -0.5}, ValueError, r"temperature=-0.5 must be >= 0"),
    ({"validation_data": [1, 2, 3]}, ValueError, r"validation_data must be a pair"),
    ({"n_posterior_samples": 1}, ValueError, r"n_posterior_samples=1 must be >= 2"),
    ({"sketch_dim": 0}, ValueError, r"sketch_dim=0 must be >= 1"),
    ({"sketch_dim": "big"}, ValueError, r"sketch_dim='big' must be 'auto', None or a positive integer"),
    ({"batch_size": 0}, ValueError, r"batch_size=0 must be >= 1"),
    ({"device": "tpu"}, ValueError, r"device='tpu' is not a device"),
    ({"dtype": "int8"}, ValueError, r"dtype='int8' is not supported"),
    ({"random_state": -3}, ValueError, r"random_state=-3 must be a non-negative integer"),
    ({"random_state": "seed"}, TypeError, r"random_state must be None, an int"),
    ({"verbose": -1}, ValueError, r"verbose=-1 must be >= 0"),
    ({"n_jobs": 0}, ValueError, r"n_jobs=0 must be None \(one thread\), -1 \(every core\)"),
]


@pytest.mark.parametrize("params,exc,msg", BAD_PARAMS, ids=[next(iter(p[0])) + "=" + repr(next(iter(p[0].values()))) for p in BAD_PARAMS])
def test_every_parameter_rejects_a_bad_value(digits, logreg, params, exc, msg):
    _, _, Xp, _ = digits
    with pytest.raises(exc, match=msg):
        SparseApproxSampler(**params)(logreg, Xp, n_instances=2)


def test_every_public_parameter_has_a_bad_value_test():
    tested = {next(iter(p[0])) for p in BAD_PARAMS}
    assert set(SparseApproxSampler().get_params()) <= tested


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda(digits, logreg):
    _, _, Xp, _ = digits
    with pytest.raises(ValueError, match=r"CUDA is not available"):
        SparseApproxSampler(device="cuda")(logreg, Xp, n_instances=2)


@pytest.mark.gpu
def test_gpu_matches_cpu(digits, logreg):
    _, _, Xp, _ = digits
    cpu = SparseApproxSampler(solver="iht", device="cpu", dtype="float64").fit_query(Xp, logreg, 10)
    gpu = SparseApproxSampler(solver="iht", device="cuda", dtype="float64").fit_query(Xp, logreg, 10)
    assert sorted(cpu.tolist()) == sorted(gpu.tolist())
