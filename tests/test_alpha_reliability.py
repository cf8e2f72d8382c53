"""``alpha_reliability``: alpha times the model's chance-corrected held-out accuracy (issue 14).

The oracle for kappa is scikit-learn's ``cross_val_predict`` on the same folds; the sampler's
``alpha_effective_`` is checked against ``alpha n^2 / b`` times kappa (or kappa^2).
"""
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


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


class _FailsToFit(ClassifierMixin, BaseEstimator):
    """Fitted once by the user (so the sampler can embed it); every clone's fit raises."""

    def __init__(self, broken=True):
        self.broken = broken

    def fit(self, X, y):
        if self.broken:
            raise RuntimeError("boom")
        return self


def test_heldout_reliability_says_when_a_clone_cannot_be_fitted(digits):
    from sparse_query.embeddings.reliability import ReliabilityError, heldout_reliability

    X, y = digits
    with pytest.raises(ReliabilityError, match=r"could not fit or predict a clone .*RuntimeError: "
                                               r"boom.*alpha_reliability=None"):
        heldout_reliability([_FailsToFit()], X[:30], y[:30], random_state=0)
