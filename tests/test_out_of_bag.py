"""alpha_reliability="auto" reads a bootstrap ensemble's out-of-bag predictions: no refit."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sparse_query import SparseApproxSampler
from sparse_query.adapters._trees import out_of_bag_proba
from sparse_query.embeddings.reliability import proba_reliability


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:90].astype(np.float32), y[:90], X[90:400].astype(np.float32)


OOB_MODELS = {
    "forest": lambda: RandomForestClassifier(40, oob_score=True, random_state=0),
    "bagging": lambda: BaggingClassifier(DecisionTreeClassifier(), n_estimators=25,
                                         max_features=0.5, oob_score=True, random_state=0),
}


@pytest.mark.parametrize("name", sorted(OOB_MODELS))
def test_out_of_bag_proba_is_scikit_learns_own(digits, name):
    """scikit-learn's oob_decision_function_ is the oracle (rows every tree saw are NaN or 0)."""
    XL, yL, _ = digits
    model = OOB_MODELS[name]().fit(XL, yL)
    proba, covered = out_of_bag_proba(model, XL)
    want = model.oob_decision_function_
    assert covered.all() == np.isfinite(want).all()
    np.testing.assert_allclose(proba[covered], want[covered], atol=1e-6)
    acc = (model.classes_[proba[covered].argmax(1)] == yL[covered]).mean()
    np.testing.assert_allclose(acc, model.oob_score_, atol=1e-12)
    kappa, got_acc = proba_reliability(proba, covered, model.classes_, yL)
    np.testing.assert_allclose(got_acc, acc)
    np.testing.assert_allclose(kappa, max(0.0, (acc - 0.1) / 0.9))


def test_out_of_bag_needs_the_set_the_forest_was_fitted_on(digits):
    XL, yL, XP = digits
    model = RandomForestClassifier(20, random_state=0).fit(XL, yL)
    assert out_of_bag_proba(model, XL) is not None
    assert out_of_bag_proba(model, XL[::-1]) is None           # the rows in another order
    assert out_of_bag_proba(model, XP[:90]) is None            # another labeled set
    assert out_of_bag_proba(model, XL[:60]) is None            # a part of it


def test_models_without_bootstrap_have_no_out_of_bag(digits):
    XL, yL, _ = digits
    assert out_of_bag_proba(ExtraTreesClassifier(10, random_state=0).fit(XL, yL), XL) is None
    assert out_of_bag_proba(RandomForestClassifier(10, bootstrap=False).fit(XL, yL), XL) is None


@pytest.mark.parametrize("wrap", [lambda m: m, lambda m: make_pipeline(StandardScaler(), m)])
def test_auto_takes_the_forest_out_of_bag_kappa_without_refits(digits, wrap, monkeypatch):
    import sparse_query.embeddings.reliability as rel

    XL, yL, XP = digits
    model = wrap(RandomForestClassifier(40, random_state=0)).fit(XL, yL)

    def no_refit(*a, **k):
        raise AssertionError("the model was refitted")

    monkeypatch.setattr(rel, "heldout_reliability", no_refit)
    s = SparseApproxSampler(random_state=0)
    s.fit_query(XP, model, 10, X_labeled=XL, y_labeled=yL)
    assert s.reliability_source_ == "out-of-bag" and s.alpha_reliability_ == "held-out"
    proba, covered = out_of_bag_proba(model, XL)
    want = proba_reliability(proba, covered, np.unique(yL), yL)
    np.testing.assert_allclose([s.reliability_, s.heldout_accuracy_], want)


def test_explicit_rule_cross_validates_and_auto_never_does(digits):
    XL, yL, XP = digits
    model = RandomForestClassifier(40, random_state=0).fit(XL, yL)
    s = SparseApproxSampler(alpha_reliability="held-out", random_state=0)
    s.fit_query(XP, model, 10, X_labeled=XL, y_labeled=yL)
    assert s.reliability_source_ == "held-out"
    s = SparseApproxSampler(random_state=0)  # a labeled set the forest was not fitted on
    s.fit_query(XP[90:], model, 10, X_labeled=XP[:90], y_labeled=yL)
    assert s.reliability_source_.startswith("fallback: ") and s.reliability_ is None


def test_auto_takes_a_skorch_nets_validation_accuracy_without_refits(digits, monkeypatch):
    skorch = pytest.importorskip("skorch")
    import torch
    from torch import nn

    import sparse_query.embeddings.reliability as rel

    XL, yL, XP = digits
    XL, XP = XL / 16, XP / 16
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), max_epochs=5, lr=0.1,
        criterion=nn.CrossEntropyLoss, train_split=skorch.dataset.ValidSplit(3), verbose=0)
    net.fit(XL, yL.astype(np.int64))
    monkeypatch.setattr(rel, "heldout_reliability", lambda *a, **k: pytest.fail("refitted"))
    s = SparseApproxSampler(random_state=0)
    s.fit_query(XP, net, 10, X_labeled=XL, y_labeled=yL)
    acc = net.history[-1, "valid_acc"]
    assert s.reliability_source_ == "validation history"
    np.testing.assert_allclose([s.heldout_accuracy_, s.reliability_],
                               [acc, max(0.0, (acc - 0.1) / 0.9)])


def test_a_net_without_a_validation_split_is_not_refitted(digits):
    skorch = pytest.importorskip("skorch")
    from torch import nn

    XL, yL, XP = digits
    net = skorch.NeuralNetClassifier(
        nn.Sequential(nn.Linear(64, 10)), max_epochs=2, lr=0.1, criterion=nn.CrossEntropyLoss,
        train_split=None, verbose=0).fit(XL / 16, yL.astype(np.int64))
    s = SparseApproxSampler(random_state=0)
    s.fit_query(XP / 16, net, 10, X_labeled=XL / 16, y_labeled=yL)
    assert s.reliability_source_.startswith("fallback: ") and s.reliability_ is None
    s = SparseApproxSampler(random_state=0, alpha_reliability="held-out")
    s.fit_query(XP / 16, net, 10, X_labeled=XL / 16, y_labeled=yL)
    assert s.reliability_source_ == "held-out" and s.refit_time_ > 0
