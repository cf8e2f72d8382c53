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


def _learner_and_pool(digits):
    """A modAL learner holding 60 labeled digits, and the next 240 digits as the pool."""
    modAL = pytest.importorskip("modAL")
    X, y = digits
    al = modAL.models.ActiveLearner(LogisticRegression(max_iter=300), X_training=X[:60],
                                    y_training=y[:60])
    return al, X[60:300]


def test_sampler_alpha_reliability_scales_alpha(digits):
    X, y = digits
    al, pool = _learner_and_pool(digits)
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
    plain = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability=None).fit(pool, al)
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
    with pytest.raises(ValueError, match=r"alpha_reliability=.* must be 'auto' .*None \(alpha "
                                         r"as given\), 'held-out' .* or 'held-out-squared'"):
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
    from benchmarks.harness.models import make_model
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


# -- alpha_reliability="auto": the model's own held-out predictions, never a refit -----------

def test_auto_never_refits_a_model_without_held_out_predictions(digits, monkeypatch):
    """A logistic regression holds no out-of-bag or validation predictions: "auto" keeps alpha
    as given, says why, and fits no copy of the model; "held-out" still cross-validates."""
    from sparse_query._reliability import NO_FREE_EVIDENCE, reliability_factor

    al, pool = _learner_and_pool(digits)
    calls = []
    import sparse_query.embeddings.reliability as rel
    orig = rel.heldout_reliability

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(rel, "heldout_reliability", counting)
    auto = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="auto",
                               random_state=0).fit(pool, al)
    idx_auto = auto.query(10)
    assert calls == []
    assert auto.alpha_reliability_ is None and auto.reliability_ is None
    assert auto.reliability_source_ == "fallback: " + NO_FREE_EVIDENCE
    plain = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability=None,
                                random_state=0).fit(pool, al)
    np.testing.assert_array_equal(idx_auto, plain.query(10))
    assert auto.alpha_effective_ == plain.alpha_effective_
    rule = SparseApproxSampler(solver="greedy", device="cpu", alpha_reliability="held-out",
                               random_state=0).fit(pool, al)
    rule.query(10)
    assert calls == [1] and rule.reliability_source_ == "held-out"
    assert 0.0 < rule.reliability_ < 1.0 and rule.refit_time_ > 0.0
    assert rule.alpha_effective_ == pytest.approx(
        0.1 * len(pool) ** 2 / 10 * reliability_factor("held-out", rule.reliability_))


@pytest.mark.parametrize("case", ["no labels", "4 labels", "another labeled set"])
def test_auto_falls_back_to_alpha_as_given(digits, case):
    """A bootstrap forest's out-of-bag predictions speak for the set it was fitted on, and need
    6 labeled points or more; otherwise "auto" keeps alpha as given and says why."""
    X, y = digits
    fitted_on = (X[:4], y[:4]) if case == "4 labels" else (X[:60], y[:60])
    model = RandomForestClassifier(20, random_state=0).fit(*fitted_on)
    pool = X[300:540]
    kw = {"no labels": {}, "4 labels": dict(X_labeled=X[:4], y_labeled=y[:4]),
          "another labeled set": dict(X_labeled=X[60:120], y_labeled=y[60:120])}[case]
    reason = {"no labels": "no labeled data was given", "4 labels": "at least 6 points",
              "another labeled set": "holds no held-out predictions"}[case]
    auto = SparseApproxSampler(solver="greedy", device="cpu", random_state=0,
                               alpha_reliability="auto").fit(pool, model, **kw)
    plain = SparseApproxSampler(solver="greedy", device="cpu", random_state=0,
                                alpha_reliability=None).fit(pool, model, **kw)
    np.testing.assert_array_equal(auto.query(10), plain.query(10))
    assert auto.alpha_reliability_ is None and auto.reliability_ is None
    assert auto.reliability_source_.startswith("fallback: ") and reason in auto.reliability_source_
    assert auto.alpha_effective_ == plain.alpha_effective_ == pytest.approx(0.1 * 240 ** 2 / 10)
    assert plain.reliability_source_ is None and plain.alpha_reliability_ is None
    if case == "4 labels":             # the explicit rule raises where auto falls back
        from sparse_query.embeddings.reliability import ReliabilityError
        with pytest.raises(ReliabilityError, match="at least 6 labeled points"):
            SparseApproxSampler(alpha_reliability="held-out").fit(pool, model, **kw)


class _Unclonable(LogisticRegression):
    """Fits and embeds like LogisticRegression, but its constructor copies its parameter, which
    ``sklearn.base.clone`` refuses (RuntimeError: the constructor modifies a parameter)."""

    def __init__(self, tags=("a",)):
        super().__init__(max_iter=300)
        self.tags = list(tags)


def test_explicit_rule_names_a_model_clone_cannot_copy(digits, recwarn):
    """"auto" never clones, so an unclonable model gets its batch; "held-out" says why not."""
    from sparse_query.embeddings.reliability import ReliabilityError

    X, y = digits
    model = _Unclonable().fit(X[:60], y[:60])
    s = SparseApproxSampler(solver="greedy", device="cpu", random_state=0).fit(
        X[60:200], model, X_labeled=X[:60], y_labeled=y[:60])
    assert s.reliability_source_.startswith("fallback: ") and len(s.query(5)) == 5
    assert not [w for w in recwarn if "alpha_reliability" in str(w.message)]
    with pytest.raises(ReliabilityError, match="clone"):
        SparseApproxSampler(alpha_reliability="held-out", device="cpu").fit(
            X[60:200], model, X_labeled=X[:60], y_labeled=y[:60])


def test_explicit_rule_raises_when_a_clone_fails_to_fit(digits):
    X, y = digits
    from sparse_query._reliability import labeled_reliability
    from sparse_query.embeddings.reliability import ReliabilityError

    Xl, yl = X[:30], y[:30]
    with pytest.raises(ReliabilityError, match="could not fit or predict a clone"):
        labeled_reliability("held-out", _FailsToFit(), None, Xl, yl, 0)
    rule, kappa, acc, source, _ = labeled_reliability("auto", _FailsToFit(), None, Xl, yl, 0)
    assert (rule, kappa, acc) == (None, None, None) and source.startswith("fallback: ")


def test_a_tree_ensemble_near_chance_gets_its_inputs_too():
    """Random labels: a forest's held-out accuracy is at chance, the regime where the leaves
    alone were level with random sampling in the quality matrix; ``auto`` then embeds the
    leaves and the inputs. Not on fewer than 60 labels (the 3-fold estimate is too noisy),
    not for an accurate forest, not with alpha_reliability=None (nothing measured) and never
    for a linear model."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = rng.integers(0, 5, size=400)                 # labels independent of X
    forest = RandomForestClassifier(20, random_state=0).fit(X[:90], y[:90])
    fit = dict(X_labeled=X[:90], y_labeled=y[:90])
    s = SparseApproxSampler(random_state=0, device="cpu").fit(X[90:], forest, **fit)
    assert s.reliability_ < 0.2 and s.embedding_kind_ == "leaf-input-gradient"
    idx = np.asarray(s.query(10))
    assert len(set(idx.tolist())) == 10
    # the same as asking for it
    t = SparseApproxSampler(random_state=0, device="cpu", embedding="leaf-input-gradient")
    assert np.asarray(t.fit(X[90:], forest, **fit).query(10)).tolist() == idx.tolist()
    assert t.embedding_kind_ == "leaf-input-gradient"
    s = SparseApproxSampler(random_state=0, device="cpu", alpha_reliability=None)
    assert s.fit(X[90:], forest, **fit).embedding_kind_ == "leaf-gradient"
    small = RandomForestClassifier(20, random_state=0).fit(X[:40], y[:40])
    s = SparseApproxSampler(random_state=0, device="cpu").fit(
        X[90:], small, X_labeled=X[:40], y_labeled=y[:40])
    assert s.reliability_ < 0.2 and s.embedding_kind_ == "leaf-gradient"
    lr = LogisticRegression(max_iter=300).fit(X[:90], y[:90])
    assert SparseApproxSampler(random_state=0, device="cpu").fit(
        X[90:], lr, **fit).embedding_kind_ == "gradient"
    y_ok = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    forest.fit(X[:90], y_ok[:90])
    s = SparseApproxSampler(random_state=0, device="cpu").fit(
        X[90:], forest, X_labeled=X[:90], y_labeled=y_ok[:90])
    assert s.reliability_ >= 0.2 and s.embedding_kind_ == "leaf-gradient"


def test_held_out_batch_is_deterministic_without_a_random_state(digits):
    """alpha_reliability="held-out" with random_state=None on a deterministic model gives one
    batch on every call: the held-out folds are seeded with 0 when no random_state is given."""
    modAL = pytest.importorskip("modAL")
    from sparse_query.sampler import _RELIABILITIES

    X, y = digits
    strategy = SparseApproxSampler(solver="greedy", alpha_reliability="held-out")
    al = modAL.models.ActiveLearner(LogisticRegression(max_iter=300), X_training=X[:40],
                                    y_training=y[:40], query_strategy=strategy)
    batches, kappas = set(), set()
    for _ in range(4):
        _RELIABILITIES.clear()                      # measured afresh every time
        idx, _ = al.query(X[40:400], n_instances=15)
        batches.add(tuple(np.sort(idx).tolist()))
        kappas.add(strategy.reliability_)
    assert len(batches) == 1 and len(kappas) == 1
    assert strategy.reliability_source_ == "held-out"
