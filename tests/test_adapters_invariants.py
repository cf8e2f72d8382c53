"""Issue 12, torch side: every skorch / torch model gets the right embedding or an error.

The invariant: the softmax of the logits an embedding uses is the model's own predict_proba.
Each case below is a real skorch net; the right answer is computed by hand from
``predict_proba`` and the head's inputs, the wrong ones must raise with a message that says
how to declare the head.
"""
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from torch import nn

from sparse_query import SparseApproxSampler
from sparse_query.adapters import (
    EmbeddingNotSupportedError, last_layer_outputs, posterior_probas, predict_proba,
)
from sparse_query.baselines import EntropySampling, KCenterGreedy, MarginSampling

skorch = pytest.importorskip("skorch")
from skorch import NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

DECLARE = r"not its class head.*last_layer"


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:300], y[:300].astype(np.int64), X[300:500]


def _net(module, X, y, **kw):
    torch.manual_seed(0)
    kw.setdefault("criterion", nn.CrossEntropyLoss)
    net = NeuralNetClassifier(module, max_epochs=3, lr=0.1, train_split=None, verbose=0,
                              batch_size=64, **kw)
    return net.fit(X, y)


# -- heads that are not the head -----------------------------------------------------------
class ParamHead(nn.Module):
    """Class head is a Parameter matrix after a hidden nn.Linear(64, 32)."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.W = nn.Parameter(torch.randn(32, 10) * 0.1)

    def forward(self, x):
        return torch.relu(self.hidden(x)) @ self.W


class AuxAfterHead(nn.Module):
    """An auxiliary nn.Linear(32, 4) runs after the class head."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)
        self.aux = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.body(x))
        logits = self.head(h)
        self.aux_out = self.aux(h)
        return logits


class TupleOut(nn.Module):
    """Returns (logits, reconstruction); the decoder runs last."""

    def __init__(self, declare=False):
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)
        self.decoder = nn.Linear(32, 64)
        if declare:
            self.last_layer = self.head

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.head(h), self.decoder(h)


class Tempered(nn.Module):
    """logits / T inside forward."""

    def __init__(self, T=3.0):
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)
        self.T = T

    def forward(self, x):
        return self.head(torch.relu(self.body(x))) / self.T


class Plain(nn.Module):
    def __init__(self, out=nn.Identity()):
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)
        self.out = out

    def forward(self, x):
        return self.out(self.head(torch.relu(self.body(x))))


def _tuple_criterion():
    class FirstCE(nn.Module):
        def forward(self, out, y):
            return nn.functional.cross_entropy(out[0], y)
    return FirstCE


@pytest.mark.parametrize("module, criterion", [
    (ParamHead, nn.CrossEntropyLoss),
    (AuxAfterHead, nn.CrossEntropyLoss),
    (TupleOut, None),
    (Tempered, nn.CrossEntropyLoss),
], ids=["parameter-head", "aux-after-head", "tuple-output", "logits-over-T"])
def test_wrong_head_is_refused_everywhere(module, criterion, data):
    X, y, pool = data
    net = _net(module, X, y, criterion=criterion or _tuple_criterion())
    with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
        last_layer_outputs(net, pool)
    with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
        SparseApproxSampler(device="cpu", random_state=0).fit_query(pool, net, 10)
    with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
        KCenterGreedy(device="cpu").fit_query(pool, net, 10, X_labeled=X)


def test_wrong_head_is_refused_on_a_plain_module(data):
    X, y, pool = data
    for module in (ParamHead(), AuxAfterHead(), TupleOut(), Tempered()):
        with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
            last_layer_outputs(module, torch.from_numpy(pool))


def test_tempered_net_differs_by_what_the_message_says(data):
    X, y, pool = data
    net = _net(Tempered, X, y)
    with pytest.raises(EmbeddingNotSupportedError, match=r"differs from NeuralNetClassifier"
                                                         r"\.predict_proba by up to"):
        last_layer_outputs(net, pool)


def _hand_batch(features, probs, b, **kw):
    from _hand import hand_batch

    return hand_batch(features, probs, b, **kw)


def test_declared_head_with_tuple_output_gives_the_hand_batch(data):
    X, y, pool = data
    # a custom criterion: skorch applies no nonlinearity unless told which
    net = _net(lambda: TupleOut(declare=True), X, y, criterion=_tuple_criterion(),
               predict_nonlinearity=lambda out: torch.softmax(out, -1))
    out = last_layer_outputs(net, pool)
    m = net.module_
    with torch.no_grad():
        h = torch.relu(m.body(torch.from_numpy(pool)))
    assert_allclose(out.features.numpy(), h.numpy(), rtol=1e-5, atol=1e-6)
    p = net.predict_proba(pool)          # skorch: softmax of the first output
    assert_allclose(torch.softmax(out.logits.double(), 1).numpy(), p, atol=1e-5)
    got = SparseApproxSampler(device="cpu", dtype="float64", random_state=0).fit_query(
        pool, net, 8)
    assert_array_equal(np.sort(got), np.sort(_hand_batch(h.numpy(), p, 8)))


@pytest.mark.parametrize("out", [nn.Identity(), nn.LogSoftmax(dim=1), nn.Softmax(dim=1)],
                         ids=["logits", "log-softmax", "softmax"])
def test_correct_heads_pass_and_match_predict_proba(out, data):
    X, y, pool = data
    crit = nn.CrossEntropyLoss if isinstance(out, nn.Identity) else nn.NLLLoss
    net = _net(lambda: Plain(out), X, y, criterion=crit)
    ll = last_layer_outputs(net, pool)
    p = predict_proba(net, pool)
    assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert_allclose(torch.softmax(ll.logits.double(), 1).numpy(), p, atol=1e-5)


def test_binary_one_column_head(data):
    X, y, pool = data
    yb = (y % 2).astype(np.float32)

    class Bin(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(64, 16)
            self.head = nn.Linear(16, 1)

        def forward(self, x):
            return self.head(torch.relu(self.body(x))).squeeze(-1)

    torch.manual_seed(0)
    from skorch import NeuralNetBinaryClassifier
    net = NeuralNetBinaryClassifier(Bin, max_epochs=2, train_split=None, verbose=0).fit(X, yb)
    ll = last_layer_outputs(net, pool)
    assert_allclose(torch.softmax(ll.logits.double(), 1).numpy(), net.predict_proba(pool),
                    atol=1e-5)


# -- log-probability outputs: baselines take probabilities ---------------------------------
def test_logsoftmax_nllloss_net_entropy_batch_is_right(data):
    X, y, pool = data
    net = _net(lambda: Plain(nn.LogSoftmax(dim=1)), X, y, criterion=nn.NLLLoss)
    raw = net.predict_proba(pool)          # skorch applies no nonlinearity: log-probabilities
    assert (raw <= 0).all()
    p = np.exp(raw.astype(np.float64))
    ent = -(p * np.log(p)).sum(1)
    want = np.argsort(-ent, kind="stable")[:15]
    got = EntropySampling(device="cpu").fit_query(pool, net, 15)
    assert_array_equal(got, want)
    marg = MarginSampling(device="cpu").fit_query(pool, net, 5)
    top2 = np.sort(p, 1)[:, -2:]
    assert_array_equal(marg, np.argsort(-(1 - (top2[:, 1] - top2[:, 0])), kind="stable")[:5])


def test_net_whose_predict_proba_is_not_probabilities_is_refused(data):
    X, y, pool = data
    net = _net(Plain, X, y, criterion=nn.CrossEntropyLoss, predict_nonlinearity=None)
    with pytest.raises(EmbeddingNotSupportedError, match="neither probabilities nor "
                                                         "log-probabilities.*predict_nonlinearity"):
        EntropySampling(device="cpu").fit_query(pool, net, 5)


def test_overridden_predict_proba_is_the_reference(data):
    X, y, pool = data

    class Hot(NeuralNetClassifier):
        def predict_proba(self, X):
            return torch.softmax(torch.as_tensor(super().predict_proba(X)).log() / 2, 1).numpy()

    torch.manual_seed(0)
    net = Hot(Plain, criterion=nn.CrossEntropyLoss, max_epochs=2, train_split=None,
              verbose=0).fit(X, y)
    with pytest.raises(EmbeddingNotSupportedError, match="overridden"):
        last_layer_outputs(net, pool)


def test_mc_dropout_posterior_checks_the_head_too(data):
    X, y, pool = data

    class DropTuple(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(64, 32)
            self.drop = nn.Dropout(0.3)
            self.head = nn.Linear(32, 10)
            self.decoder = nn.Linear(32, 64)

        def forward(self, x):
            h = self.drop(torch.relu(self.body(x)))
            return self.head(h), self.decoder(h)

    net = _net(DropTuple, X, y, criterion=_tuple_criterion())
    with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
        posterior_probas(net, pool, n_samples=3, random_state=0)


# -- regression ----------------------------------------------------------------------------
def test_skorch_regressor_is_refused(data):
    X, y, pool = data
    torch.manual_seed(0)
    reg = NeuralNetRegressor(nn.Linear, module__in_features=64, module__out_features=1,
                             max_epochs=1, train_split=None, verbose=0)
    reg.fit(X, y.astype(np.float32)[:, None])
    for strategy in (SparseApproxSampler(device="cpu"), EntropySampling(device="cpu")):
        with pytest.raises(EmbeddingNotSupportedError, match="only classifiers are supported"):
            strategy.fit_query(pool, reg, 5)


# -- dict / tuple inputs -------------------------------------------------------------------
class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(32, 16)
        self.b = nn.Linear(32, 16)
        self.head = nn.Linear(32, 10)

    def forward(self, left, right):
        return self.head(torch.cat([torch.relu(self.a(left)), torch.relu(self.b(right))], 1))


def test_dict_inputs_use_skorch_lengths_and_slicing(data):
    X, y, pool = data
    net = _net(TwoInputs, {"left": X[:, :32], "right": X[:, 32:]}, y)
    P = {"left": pool[:, :32], "right": pool[:, 32:]}
    p = net.predict_proba(P)
    assert_allclose(predict_proba(net, P, batch_size=37), p, atol=1e-6)
    ent = -(p * np.log(p)).sum(1)
    got = EntropySampling(device="cpu", batch_size=37).fit_query(P, net, 10)
    assert_array_equal(got, np.argsort(-ent, kind="stable")[:10])
    s = SparseApproxSampler(device="cpu", dtype="float64", batch_size=37, random_state=0)
    idx = s.fit_query(P, net, 8)
    assert s.n_pool_ == len(pool)
    m = net.module_
    with torch.no_grad():
        h = torch.cat([torch.relu(m.a(torch.from_numpy(P["left"]))),
                       torch.relu(m.b(torch.from_numpy(P["right"])))], 1)
    assert_array_equal(np.sort(idx), np.sort(_hand_batch(h.numpy(), p, 8)))


def test_dict_inputs_of_different_lengths_are_refused(data):
    X, y, pool = data
    net = _net(TwoInputs, {"left": X[:, :32], "right": X[:, 32:]}, y)
    with pytest.raises(ValueError, match="rows"):
        EntropySampling(device="cpu").fit_query({"left": pool[:, :32], "right": pool[:9, 32:]},
                                                net, 3)


# -- devices -------------------------------------------------------------------------------
@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
@pytest.mark.parametrize("make", [
    lambda: SparseApproxSampler(device="mps"),
    lambda: EntropySampling(device="mps"),
    lambda: KCenterGreedy(device="mps"),
])
def test_unavailable_device_names_the_available_ones(make, data):
    X, y, pool = data
    net = _net(Plain, X, y)
    with pytest.raises(ValueError, match=r"device='mps'.*not available.*available: 'cpu'"):
        make().fit_query(pool, net, 3)
    with pytest.raises(ValueError, match=r"available: 'cpu'"):
        last_layer_outputs(net, pool, device="mps")
    with pytest.raises(ValueError, match=r"not supported; available on this machine: 'cpu'"):
        SparseApproxSampler(device="xpu").fit_query(pool, net, 3)


class TupleInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(32, 16)
        self.b = nn.Linear(32, 16)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        left, right = x
        return self.head(torch.cat([torch.relu(self.a(left)), torch.relu(self.b(right))], 1))


def test_tuple_inputs_use_skorch_lengths_and_slicing(data):
    X, y, pool = data
    net = _net(TupleInputs, (X[:, :32], X[:, 32:]), y)
    P = (pool[:, :32], pool[:, 32:])
    p = net.predict_proba(P)
    assert_allclose(predict_proba(net, P, batch_size=33), p, atol=1e-6)
    ent = -(p * np.log(p)).sum(1)
    assert_array_equal(EntropySampling(device="cpu", batch_size=33).fit_query(P, net, 10),
                       np.argsort(-ent, kind="stable")[:10])
    s = SparseApproxSampler(device="cpu", dtype="float64", batch_size=33, random_state=0)
    idx = s.fit_query(P, net, 8)
    assert s.n_pool_ == len(pool)
    m = net.module_
    with torch.no_grad():
        h = torch.cat([torch.relu(m.a(torch.from_numpy(P[0]))),
                       torch.relu(m.b(torch.from_numpy(P[1])))], 1)
    assert_array_equal(np.sort(idx), np.sort(_hand_batch(h.numpy(), p, 8)))


def test_declared_head_that_is_not_the_head_is_still_refused(data):
    X, y, pool = data

    class WrongDeclared(AuxAfterHead):
        def __init__(self):
            super().__init__()
            self.last_layer = self.aux

    net = _net(WrongDeclared, X, y)
    with pytest.raises(EmbeddingNotSupportedError, match=DECLARE):
        last_layer_outputs(net, pool)

    class RightDeclared(AuxAfterHead):
        def __init__(self):
            super().__init__()
            self.last_layer = self.head

    net = _net(RightDeclared, X, y)
    out = last_layer_outputs(net, pool)
    assert_allclose(torch.softmax(out.logits.double(), 1).numpy(), net.predict_proba(pool),
                    atol=1e-5)


def test_dict_pool_with_nan_is_refused(data):
    X, y, pool = data
    net = _net(TwoInputs, {"left": X[:, :32], "right": X[:, 32:]}, y)
    right = pool[:, 32:].copy()
    right[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity.*row 7"):
        EntropySampling(device="cpu").fit_query({"left": pool[:, :32], "right": right}, net, 3)


def test_tuple_of_rows_is_still_a_plain_pool():
    from sklearn.linear_model import LogisticRegression
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [0.5, 0.1]])
    lr = LogisticRegression().fit(X, [0, 1, 1, 0])
    rows = tuple(X)                        # four 1-D rows, not two inputs
    assert_allclose(predict_proba(lr, rows), lr.predict_proba(X))
    assert EntropySampling(device="cpu").fit_query(rows, lr, 2).shape == (2,)
