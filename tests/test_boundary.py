"""Inputs users bring that once gave a silent wrong answer or an unreadable error.

Each gives the right batch or a ``ValueError`` naming the parameter, the value and the fix.
"""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

from sparse_query import SparseApproxSampler
from sparse_query.adapters._refit import RefitError, untrained
from sparse_query.baselines import BADGE, EntropySampling, KCenterGreedy, RandomSampling

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return X[:60], y[:60], X[60:360]


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(64, 32)
        self.l2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


def _net(module, **kw):
    skorch = pytest.importorskip("skorch")  # only the skorch tests skip without it
    return skorch.NeuralNetClassifier(module, max_epochs=8, lr=0.1, train_split=None, verbose=0,
                                      criterion=nn.CrossEntropyLoss, **kw)


# -- refits start from untrained weights ----------------------------------------------------
def test_module_instance_net_refits_like_the_class_net(digits):
    """A net built from a module instance gets the reliability and temperature of the same net
    built from the class: its refits start from fresh weights, not the trained ones."""
    XL, yL, XP = digits
    yL = yL.astype(np.int64)
    got = {}
    for name, module in (("class", TwoLayer), ("instance", TwoLayer())):
        torch.manual_seed(0)
        net = _net(module).fit(XL, yL)
        s = SparseApproxSampler(temperature="auto", alpha_reliability="held-out",
                                random_state=0)
        s.fit_query(XP, net, 10, X_labeled=XL, y_labeled=yL)
        got[name] = (s.heldout_accuracy_, s.reliability_, s.temperature_)
        assert s.temperature_source_ == "held-out" and s.reliability_source_ == "held-out"
        assert s.refit_time_ > 0
    np.testing.assert_allclose(got["instance"], got["class"])


def test_untrained_resets_a_cloned_module_and_never_touches_the_original(digits):
    from sklearn.base import clone

    XL, yL, _ = digits
    net = _net(TwoLayer()).fit(XL, yL.astype(np.int64))
    trained = net.module_.l1.weight.detach().clone()
    copy = clone(net)
    np.testing.assert_allclose(copy.module.l1.weight.detach(), trained)  # clone copies weights
    torch.manual_seed(0)
    untrained(copy)
    torch.manual_seed(0)
    fresh = TwoLayer()
    torch.testing.assert_close(copy.module.l1.weight, fresh.l1.weight)
    torch.testing.assert_close(copy.module.l2.bias, fresh.l2.bias)
    torch.testing.assert_close(net.module_.l1.weight.detach(), trained)  # the user's net


def test_untrained_refuses_a_module_it_cannot_reinitialise():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(64))
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x * self.scale)

    from sklearn.base import clone

    with pytest.raises(RefitError, match=r"reset_parameters\(\).*NeuralNetClassifier\(Scaled"):
        untrained(clone(_net(Scaled())))


def test_unresettable_module_is_never_refitted_under_auto(digits, recwarn):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(64))
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x * self.scale)

    XL, yL, XP = digits
    net = _net(Scaled()).fit(XL, yL.astype(np.int64))
    s = SparseApproxSampler(random_state=0)
    assert len(s.fit_query(XP, net, 5, X_labeled=XL, y_labeled=yL)) == 5
    assert s.alpha_reliability_ is None and s.reliability_source_.startswith("fallback: ")
    assert not [w for w in recwarn if "reset_parameters" in str(w.message)]
    with pytest.raises(ValueError, match="reset_parameters"):
        SparseApproxSampler(alpha_reliability="held-out").fit_query(
            XP, net, 5, X_labeled=XL, y_labeled=yL)


# -- the labeled set is validated as a pair -------------------------------------------------
@pytest.fixture(scope="module")
def logreg(digits):
    XL, yL, _ = digits
    return LogisticRegression(max_iter=300).fit(XL, yL)


STRATEGIES = [SparseApproxSampler, EntropySampling, RandomSampling]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("given, match", [
    ("X", "X_labeled was given without y_labeled"),
    ("y", "y_labeled was given without X_labeled"),
])
def test_half_a_labeled_set_is_refused(digits, logreg, strategy, given, match):
    XL, yL, XP = digits
    kw = {"X_labeled": XL} if given == "X" else {"y_labeled": yL}
    with pytest.raises(ValueError, match=match):
        strategy().fit_query(XP, logreg, 5, **kw)
    with pytest.raises(ValueError, match=match):
        strategy().fit(XP, logreg, **kw)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_x, n_y", [(60, 50), (50, 60)])
def test_labeled_lengths_must_agree(digits, logreg, strategy, n_x, n_y):
    XL, yL, XP = digits
    with pytest.raises(ValueError, match=f"X_labeled has {n_x} rows but y_labeled has {n_y}"):
        strategy().fit_query(XP, logreg, 5, X_labeled=XL[:n_x], y_labeled=yL[:n_y])


def test_labeled_set_other_checks(digits, logreg):
    XL, yL, XP = digits
    s = SparseApproxSampler()
    with pytest.raises(ValueError, match="y_labeled must be 1-D"):
        s.fit_query(XP, logreg, 5, X_labeled=XL, y_labeled=yL.reshape(-1, 1))
    y_nan = yL.astype(float)
    y_nan[7] = np.nan
    with pytest.raises(ValueError, match="missing \\(NaN\\) label at row 7"):
        s.fit_query(XP, logreg, 5, X_labeled=XL, y_labeled=y_nan)
    with pytest.raises(ValueError, match="X_labeled has 63 features but X_pool has 64"):
        s.fit_query(XP, logreg, 5, X_labeled=XL[:, :63], y_labeled=yL)


def test_modal_call_validates_the_labeled_pair(digits, logreg):
    XL, yL, XP = digits
    with pytest.raises(ValueError, match="X_labeled was given without y_labeled"):
        SparseApproxSampler()(logreg, XP, 5, X_labeled=XL)


# -- a borrowed pool edited between fit and query -------------------------------------------
@pytest.mark.parametrize("kind", ["tensor", "numpy", "frame"])
def test_pool_edited_in_place_after_fit_is_refused(digits, kind):
    _, _, XP = digits
    head = nn.Linear(64, 10)
    torch.manual_seed(0)
    if kind == "tensor":
        pool = torch.tensor(XP)
    elif kind == "numpy":
        pool = XP.copy()
    else:
        pd = pytest.importorskip("pandas")
        pool = pd.DataFrame(XP.copy())
        head = LogisticRegression(max_iter=200).fit(XP[:60], np.arange(60) % 10)
    s = SparseApproxSampler(solver="greedy", random_state=0).fit(pool, head)
    first = s.query(10)
    np.testing.assert_array_equal(s.query(10), first)  # unchanged pool: same answer, no error
    if kind == "frame":
        pool.iloc[200, 3] += 1.0
    else:
        pool[200, 3] += 1.0  # one value of one row, in place
    with pytest.raises(ValueError, match="X_pool was modified in place after fit"):
        s.query(10)
    s.fit(pool, head)  # fitting again on the edited pool is the fix
    assert s.query(10).shape == (10,)


def test_fit_query_and_modal_call_keep_no_pool_reference(digits):
    _, _, XP = digits
    s = SparseApproxSampler(solver="greedy")
    s.fit_query(torch.tensor(XP), nn.Linear(64, 10), 5)
    assert "_pool_fingerprint" not in s.__dict__


# -- devices and dtypes of a skorch net -----------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("strategy", [SparseApproxSampler, EntropySampling])
def test_net_on_a_missing_device_is_refused_with_the_fix(digits, strategy):
    XL, yL, XP = digits
    net = _net(TwoLayer).fit(XL, yL.astype(np.int64))
    net.set_params(device="cuda")
    with pytest.raises(ValueError, match=r"device='cuda' is not available.*set_params\(device='cpu'\)"):
        strategy().fit_query(XP, net, 5)
    net.set_params(device="cpu")  # the fix named works
    assert strategy().fit_query(XP, net, 5).shape == (5,)


def test_integer_pool_into_a_float_net_names_the_dtype_and_the_cast(digits):
    XL, yL, XP = digits
    net = _net(TwoLayer).fit(XL, yL.astype(np.int64))
    pool = (XP * 16).astype(np.int64)
    with pytest.raises(ValueError, match=r"X_pool holds int64 values but the net computes in "
                                         r"float32.*astype\(np.float32\)"):
        SparseApproxSampler().fit_query(pool, net, 5)
    assert SparseApproxSampler().fit_query(pool.astype(np.float32), net, 5).shape == (5,)


def test_dataframe_with_a_string_names_the_column_and_value(digits):
    pd = pytest.importorskip("pandas")
    XL, yL, XP = digits
    cols = [f"px{i}" for i in range(64)]
    model = LogisticRegression(max_iter=300).fit(pd.DataFrame(XL, columns=cols), yL)
    pool = pd.DataFrame(XP, columns=cols).astype(object)
    pool.iloc[3, 5] = "n/a"
    with pytest.raises(ValueError, match=r"column 'px5' holds the non-numeric value 'n/a' "
                                         r"\(row 3\).*pd.to_numeric"):
        SparseApproxSampler().fit_query(pool, model, 5)


def test_kcenter_takes_labeled_inputs_alone_but_checks_a_given_pair(digits, logreg):
    from sparse_query.baselines import KCenterGreedy

    XL, yL, XP = digits
    assert KCenterGreedy(device="cpu").fit_query(XP, logreg, 5, X_labeled=XL).shape == (5,)
    with pytest.raises(ValueError, match="X_labeled has 60 rows but y_labeled has 59"):
        KCenterGreedy(device="cpu").fit_query(XP, logreg, 5, X_labeled=XL, y_labeled=yL[:59])


@pytest.mark.parametrize("strategy", [SparseApproxSampler, EntropySampling, KCenterGreedy])
def test_dataframe_with_a_string_is_refused_before_the_model_sees_it(digits, strategy):
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestClassifier

    XL, yL, XP = digits
    model = RandomForestClassifier(10, random_state=0).fit(pd.DataFrame(XL), yL)
    pool = pd.DataFrame(XP).astype(object)
    pool.iloc[4, 2] = "?"
    with pytest.raises(ValueError, match=r"column 2 holds the non-numeric value '\?' \(row 4\)"):
        strategy(device="cpu").fit_query(pool, model, 5)


def test_dataframe_of_categories_is_left_to_a_model_that_reads_them(digits):
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import HistGradientBoostingClassifier

    XL, yL, XP = digits
    frame = pd.DataFrame(XP[:, :4], columns=list("abcd"))
    frame["e"] = pd.Categorical(np.where(XP[:, 5] > 0.5, "hi", "lo"))
    train = pd.DataFrame(XL[:, :4], columns=list("abcd"))
    train["e"] = pd.Categorical(np.where(XL[:, 5] > 0.5, "hi", "lo"))
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype")
    model.fit(train, yL)
    assert EntropySampling().fit_query(frame, model, 5).shape == (5,)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("strategy", [SparseApproxSampler, EntropySampling, BADGE, KCenterGreedy])
def test_net_on_a_missing_device_inside_a_pipeline_is_refused(digits, strategy):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    XL, yL, XP = digits
    pipe = make_pipeline(StandardScaler(), _net(TwoLayer)).fit(XL, yL.astype(np.int64))
    pipe[-1].set_params(device="cuda")
    with pytest.raises(ValueError, match=r"device='cuda' is not available"):
        strategy(device="cpu").fit_query(XP, pipe, 5)


def test_module_instance_inside_a_pipeline_refits_like_the_class(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    XL, yL, XP = digits
    yL = yL.astype(np.int64)
    got = []
    for module in (TwoLayer, TwoLayer()):
        torch.manual_seed(0)
        pipe = make_pipeline(StandardScaler(), _net(module)).fit(XL, yL)
        s = SparseApproxSampler(alpha_reliability="held-out", random_state=0)
        s.fit_query(XP, pipe, 5, X_labeled=XL, y_labeled=yL)
        assert s.reliability_source_ == "held-out"
        got.append(s.reliability_)
    np.testing.assert_allclose(got[0], got[1])
