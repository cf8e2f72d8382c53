"""SparseApproxQueryStrategy in scikit-activeml's own loop, with its classifier wrappers."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

skactiveml = pytest.importorskip("skactiveml")

from skactiveml.classifier import SklearnClassifier  # noqa: E402
from skactiveml.utils import MISSING_LABEL, is_unlabeled  # noqa: E402

from sparse_query import SparseApproxSampler  # noqa: E402
from sparse_query.skactiveml import SparseApproxQueryStrategy  # noqa: E402

CLASSES = np.arange(10)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    labeled = np.sort(np.random.default_rng(0).choice(len(X), 40, replace=False))
    y_partial = np.full(len(X), MISSING_LABEL)
    y_partial[labeled] = y[labeled]
    return X, y, y_partial, labeled


def _logreg(**kw):
    return SklearnClassifier(LogisticRegression(max_iter=500), classes=CLASSES, **kw)


def _sampler(**kw):
    return SparseApproxSampler(device="cpu", random_state=0, **kw)


def _check_batch(idx, n, b, y=None, missing_label=MISSING_LABEL):
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (b,)
    assert len(set(idx.tolist())) == b and idx.min() >= 0 and idx.max() < n
    if y is not None:
        assert is_unlabeled(y[idx], missing_label=missing_label).all()


def test_skactiveml_loop_from_no_labels(digits):
    """scikit-activeml's loop as its README writes it: start with every label missing, query,
    label, refit. The first cycle has no model to embed with: a warned random batch."""
    X, y_true, _, _ = digits
    clf = _logreg()
    qs = SparseApproxQueryStrategy(_sampler(), random_state=0)
    y = np.full(len(X), MISSING_LABEL)
    clf.fit(X, y)
    n_labeled = []
    for cycle in range(3):
        if cycle == 0:
            with pytest.warns(UserWarning, match="uniformly random batch"):
                idx = qs.query(X=X, y=y, clf=clf, fit_clf=False, batch_size=20)
            assert qs.sampler_ is None
        else:
            idx = qs.query(X=X, y=y, clf=clf, fit_clf=False, batch_size=20)
            assert qs.sampler_.embedding_kind_ == "gradient"
            assert qs.sampler_.weights_.shape == (20,)
        _check_batch(idx, len(X), 20, y)
        y[idx] = y_true[idx]
        clf.fit(X, y)
        n_labeled.append(int((~np.isnan(y)).sum()))
    assert n_labeled == [20, 40, 60]
    # the labeled set reaches the sampler: "auto" saw it and fell back only because a logistic
    # regression holds no held-out predictions of its own (not for want of labels)
    assert qs.sampler_.reliability_source_.startswith("fallback: the model holds no held-out")


def test_same_batch_as_sampler_on_the_wrapped_estimator(digits):
    """query() is the sampler on (unlabeled rows, clf.estimator_, labeled rows): no second
    implementation. With fit_clf=True the wrapper is cloned and fitted, the argument is not."""
    X, _, y, labeled = digits
    clf = _logreg()
    idx = SparseApproxQueryStrategy(_sampler()).query(X, y, clf, batch_size=15)
    assert not hasattr(clf, "estimator_")  # fitted a clone
    fitted = _logreg().fit(X, y)
    unl = np.flatnonzero(np.isnan(y))
    ref = _sampler().fit_query(X[unl], fitted.estimator_, 15, X_labeled=X[labeled],
                               y_labeled=y[labeled])
    np.testing.assert_array_equal(idx, unl[ref])
    idx_nofit = SparseApproxQueryStrategy(_sampler()).query(X, y, fitted, fit_clf=False,
                                                            batch_size=15)
    np.testing.assert_array_equal(idx_nofit, idx)


def test_fit_clf_passes_sample_weight(digits):
    X, _, y, _ = digits
    w = np.random.default_rng(2).uniform(0.2, 3.0, len(X))
    idx = SparseApproxQueryStrategy(_sampler()).query(X, y, _logreg(), sample_weight=w,
                                                      batch_size=10)
    weighted = _logreg().fit(X, y, w)
    unweighted = _logreg().fit(X, y)
    assert not np.allclose(weighted.estimator_.coef_, unweighted.estimator_.coef_)
    np.testing.assert_array_equal(
        idx, SparseApproxQueryStrategy(_sampler()).query(X, y, weighted, fit_clf=False,
                                                         batch_size=10))


def test_same_batch_as_modal_on_the_same_state(digits):
    """The same labeled set, pool and fitted model give the same batch through
    scikit-activeml's query and through a modAL ActiveLearner with the sampler."""
    modAL = pytest.importorskip("modAL")
    X, y_true, y, labeled = digits
    unl = np.flatnonzero(np.isnan(y))
    learner = modAL.models.ActiveLearner(
        estimator=LogisticRegression(max_iter=500), query_strategy=_sampler(),
        X_training=X[labeled], y_training=y_true[labeled])
    out = learner.query(X[unl], n_instances=12)
    modal_idx = out[0] if isinstance(out, tuple) else out
    clf = _logreg().fit(X, y)
    np.testing.assert_allclose(clf.estimator_.coef_, learner.estimator.coef_, rtol=0, atol=0)
    idx = SparseApproxQueryStrategy(_sampler()).query(X, y, clf, fit_clf=False, batch_size=12)
    np.testing.assert_array_equal(idx, unl[np.asarray(modal_idx)])


def test_forest_with_candidate_indices(digits):
    X, _, y, labeled = digits
    clf = SklearnClassifier(RandomForestClassifier(n_estimators=20, random_state=0),
                            classes=CLASSES)
    cand = np.concatenate([labeled[:10], np.flatnonzero(np.isnan(y))[::3]])
    qs = SparseApproxQueryStrategy(_sampler(), random_state=1)
    idx = qs.query(X, y, clf, candidates=cand, batch_size=8)
    _check_batch(idx, len(X), 8, y)
    assert set(idx.tolist()) <= set(cand.tolist()) - set(labeled.tolist())
    assert qs.sampler_.embedding_kind_ in ("leaf-gradient", "leaf-input-gradient")
    assert qs.sampler_.n_pool_ == len(cand) - 10  # the labeled candidates were left out
    # same state, same seed: same batch
    np.testing.assert_array_equal(
        SparseApproxQueryStrategy(_sampler(), random_state=1).query(X, y, clf, candidates=cand,
                                                                    batch_size=8), idx)


def test_candidates_as_samples_index_the_candidates(digits):
    X, _, y, _ = digits
    clf = _logreg().fit(X, y)
    unl = np.flatnonzero(np.isnan(y))
    qs = SparseApproxQueryStrategy(_sampler())
    by_rows = qs.query(X, y, clf, fit_clf=False, batch_size=10)
    pos = qs.query(X, y, clf, fit_clf=False, candidates=X[unl], batch_size=10)
    _check_batch(pos, len(unl), 10)
    np.testing.assert_array_equal(unl[pos], by_rows)
    # new samples, not in X
    new = np.clip(X[unl[:50]] + 0.05, 0, 1)
    pos = qs.query(X, y, clf, fit_clf=False, candidates=new, batch_size=5)
    _check_batch(pos, 50, 5)


@pytest.mark.parametrize("missing_label,cast", [
    (-1, lambda v: v.astype(int)),
    ("none", lambda v: np.array([f"digit{int(c)}" for c in v])),
])
def test_missing_label_other_than_nan(digits, missing_label, cast):
    X, y_true, y_nan, labeled = digits
    y = np.full(len(X), missing_label, dtype="<U6" if isinstance(missing_label, str) else int)
    y[labeled] = cast(y_true[labeled])
    classes = np.unique(cast(CLASSES))
    clf = SklearnClassifier(LogisticRegression(max_iter=500), classes=classes,
                            missing_label=missing_label)
    qs = SparseApproxQueryStrategy(_sampler(), missing_label=missing_label)
    idx = qs.query(X, y, clf, batch_size=10)
    _check_batch(idx, len(X), 10, y, missing_label=missing_label)
    ref = SparseApproxQueryStrategy(_sampler()).query(X, y_nan, _logreg(), batch_size=10)
    np.testing.assert_array_equal(idx, ref)
    # the strategy's missing_label (nan) is not the labels': scikit-activeml's own refusal
    with warnings.catch_warnings(), pytest.raises((ValueError, TypeError), match="missing_label"):
        warnings.simplefilter("ignore", UserWarning)  # "batch_size=0 was set": no nan in y
        SparseApproxQueryStrategy(_sampler()).query(X, y, clf, batch_size=10)


def test_random_state_draws_a_seed_per_state(digits):
    X, _, y, _ = digits
    clf = _logreg().fit(X, y)
    qs = SparseApproxQueryStrategy(_sampler(sketch_dim=16, solver="iht"), random_state=3)
    a = qs.query(X, y, clf, fit_clf=False, batch_size=10)
    seed = qs.sampler_.random_state
    assert isinstance(seed, int) and seed != 0
    np.testing.assert_array_equal(qs.query(X, y, clf, fit_clf=False, batch_size=10), a)
    ref = _sampler(sketch_dim=16, solver="iht").set_params(random_state=seed)
    unl = np.flatnonzero(np.isnan(y))
    lab = ~np.isnan(y)
    np.testing.assert_array_equal(
        a, unl[ref.fit_query(X[unl], clf.estimator_, 10, X_labeled=X[lab], y_labeled=y[lab])])


def test_batch_larger_than_the_unlabeled_candidates_shrinks(digits):
    X, _, y, labeled = digits
    clf = _logreg().fit(X, y)
    cand = np.concatenate([labeled[:5], np.flatnonzero(np.isnan(y))[:4]])
    with pytest.warns(UserWarning, match="batch_size=6 is larger than the 4 unlabeled"):
        idx = SparseApproxQueryStrategy(_sampler()).query(X, y, clf, fit_clf=False,
                                                          candidates=cand, batch_size=6)
    np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(np.isnan(y))[:4])


def test_bad_parameters(digits):
    X, _, y, _ = digits
    clf = _logreg()
    qs = SparseApproxQueryStrategy(_sampler())
    with pytest.raises(ValueError, match=r"return_utilities=True is not supported.*"
                                         r"return_utilities=False"):
        qs.query(X, y, clf, return_utilities=True)
    with pytest.raises(TypeError, match="return_utilities"):
        qs.query(X, y, clf, return_utilities="yes")
    with pytest.raises(TypeError, match="sampler must be a sparse_query.SparseApproxSampler"):
        SparseApproxQueryStrategy("iht").query(X, y, clf)
    with pytest.raises(TypeError, match="clf"):
        qs.query(X, y, LogisticRegression())
    with pytest.raises(TypeError, match="fit_clf"):
        qs.query(X, y, clf, fit_clf="yes")
    with pytest.raises(ValueError, match="batch_size"):
        qs.query(X, y, clf, batch_size=0)
    with pytest.raises((ValueError, IndexError), match="indices|index"):
        qs.query(X, y, clf, candidates=[len(X) + 3])


def test_core_imports_without_skactiveml():
    code = ("import sys; sys.modules['skactiveml'] = None\n"
            "import sparse_query, sparse_query.sampler\n"
            "try:\n    import sparse_query.skactiveml\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pip install scikit-activeml" in out.stdout
