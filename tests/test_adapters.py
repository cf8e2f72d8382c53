"""Adapters against the real objects: skorch, torch, scikit-learn, ensembles, modAL."""
import sys
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier, VotingClassifier,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn
from torch.testing import assert_close

from sparse_query.adapters import (
    EmbeddingNotSupportedError, LastLayer, check_fitted, classes_of, get_labeled_data,
    has_last_layer, has_posterior, last_layer_outputs, logits_fn, posterior_probas,
    predict_proba, unwrap_estimator,
)


def _modal():
    """modAL's ActiveLearner and Committee; the test skips without modAL."""
    models = pytest.importorskip("modAL.models")
    return models.ActiveLearner, models.Committee


# ---------------------------------------------------------------------------------------------
# data and fitted models (module scope: trained once)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:240] / 16.0), y[:240]


@pytest.fixture(scope="module")
def binary(digits):
    X, y = digits
    return X, (y >= 5).astype(np.int64)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


class DropNet(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear; ``embed`` is the head's input."""

    def __init__(self, d=64, h=16, k=10, p=0.3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Dropout(p))
        self.head = nn.Linear(h, k)

    def embed(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def skorch_net(digits):
    skorch = pytest.importorskip("skorch")
    X, y = digits
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        DropNet, criterion=nn.CrossEntropyLoss, max_epochs=3, lr=0.2, batch_size=64,
        train_split=None, verbose=0,
    )
    return net.fit(X.astype(np.float32), y)


def _sq_nn():
    """sparse_query.nn, written concurrently: its tests skip until it lands."""
    return pytest.importorskip("sparse_query.nn")


class ToyVariational(nn.Module):
    """The duck-typed contract of a variational layer, independent of sparse_query.nn."""

    is_variational = True

    def __init__(self, d_in, d_out):
        super().__init__()
        self.mu = nn.Parameter(torch.randn(d_out, d_in))
        self.bias_mu = nn.Parameter(torch.randn(d_out))  # a bias is recognised by this name

    def forward(self, x):
        return x @ self.mu.T + self.bias_mu

    def sample_parameters(self, n_samples, generator=None):
        W = self.mu + 0.5 * torch.randn((n_samples, *self.mu.shape), generator=generator)
        b = self.bias_mu + 0.5 * torch.randn((n_samples, len(self.bias_mu)), generator=generator)
        return W.detach(), b.detach()


def _modes(module):
    return [m.training for m in module.modules()]


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _no_hooks(module):
    return all(
        not m._forward_hooks and not m._forward_pre_hooks for m in module.modules()
    )


# ---------------------------------------------------------------------------------------------
# scikit-learn linear models, MLPs, pipelines
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_logistic_regression_logits_match_predict_proba(task, digits, binary):
    X, y = digits if task == "multiclass" else binary
    lr = _fit(LogisticRegression(max_iter=300), X, y)
    out = last_layer_outputs(lr, X, batch_size=50)
    assert isinstance(out, LastLayer) and out.bias is True
    assert out.logits.shape == (len(X), len(lr.classes_))
    assert_allclose(out.features.numpy(), X)
    assert_allclose(softmax(out.logits.numpy(), axis=1), lr.predict_proba(X), atol=1e-10)
    coef = lr.coef_ if task == "multiclass" else np.vstack([np.zeros_like(lr.coef_), lr.coef_])
    icpt = lr.intercept_ if task == "multiclass" else np.r_[0.0, lr.intercept_]
    assert_allclose(out.logits.numpy(), X @ coef.T + icpt, atol=1e-10)
    assert_array_equal(out.classes, lr.classes_)
    assert_allclose(logits_fn(lr, X), out.logits.numpy())


def test_logistic_regression_without_intercept_has_no_bias(digits):
    X, y = digits
    lr = _fit(LogisticRegression(fit_intercept=False, max_iter=200), X, y)
    out = last_layer_outputs(lr, X)
    assert out.bias is False
    assert_allclose(out.logits.numpy(), X @ lr.coef_.T, atol=1e-10)


def test_sgd_log_loss(digits, binary):
    Xb, yb = binary
    sgd = _fit(SGDClassifier(loss="log_loss", random_state=0), Xb, yb)
    out = last_layer_outputs(sgd, Xb)
    assert_allclose(softmax(out.logits.numpy(), axis=1), sgd.predict_proba(Xb), atol=1e-10)
    # multiclass SGD is one-vs-rest: softmax(decision_function) is not its predict_proba, so
    # (issue 12) it is refused instead of embedded with made-up probabilities
    X, y = digits
    sgd = _fit(SGDClassifier(loss="log_loss", random_state=0), X, y)
    with pytest.raises(EmbeddingNotSupportedError, match="one-vs-rest"):
        last_layer_outputs(sgd, X)


@pytest.mark.parametrize("task,activation", [("multiclass", "relu"), ("binary", "tanh"),
                                             ("multiclass", "logistic")])
def test_mlp_classifier_features_and_logits(task, activation, digits, binary):
    X, y = digits if task == "multiclass" else binary
    mlp = _fit(MLPClassifier(hidden_layer_sizes=(12, 7), activation=activation, max_iter=30,
                             random_state=0), X, y)
    out = last_layer_outputs(mlp, X, batch_size=33)
    act = {"relu": lambda a: np.maximum(a, 0), "tanh": np.tanh,
           "logistic": lambda a: 1 / (1 + np.exp(-a))}[activation]
    h = act(act(X @ mlp.coefs_[0] + mlp.intercepts_[0]) @ mlp.coefs_[1] + mlp.intercepts_[1])
    assert_allclose(out.features.numpy(), h, atol=1e-10)
    assert out.logits.shape == (len(X), len(mlp.classes_))
    assert_allclose(softmax(out.logits.numpy(), axis=1), mlp.predict_proba(X), atol=1e-10)
    W, c = mlp.coefs_[-1], mlp.intercepts_[-1]
    z = h @ W + c
    expected = z if task == "multiclass" else np.hstack([np.zeros_like(z), z])
    assert_allclose(out.logits.numpy(), expected, atol=1e-10)


def test_pipeline_transforms_then_uses_final_step(digits):
    X, y = digits
    pipe = _fit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), X, y)
    out = last_layer_outputs(pipe, X, batch_size=64)
    assert_allclose(out.features.numpy(), pipe[0].transform(X), atol=1e-12)
    assert_allclose(softmax(out.logits.numpy(), axis=1), pipe.predict_proba(X), atol=1e-10)
    assert_allclose(predict_proba(pipe, X, batch_size=17), pipe.predict_proba(X), atol=1e-12)
    assert has_last_layer(pipe) and not has_posterior(pipe)


def test_sklearn_chunked_equals_unchunked(digits):
    X, y = digits
    mlp = _fit(MLPClassifier(hidden_layer_sizes=(9,), max_iter=20, random_state=0), X, y)
    a = last_layer_outputs(mlp, X, batch_size=7)
    b = last_layer_outputs(mlp, X, batch_size=10_000)
    assert_close(a.features, b.features)
    assert_close(a.logits, b.logits)


def test_wrong_number_of_features_sklearn(digits):
    X, y = digits
    lr = _fit(LogisticRegression(max_iter=100), X, y)
    with pytest.raises(ValueError, match="fitted on 64 features"):
        last_layer_outputs(lr, X[:, :10])


# ---------------------------------------------------------------------------------------------
# skorch and plain torch modules
# ---------------------------------------------------------------------------------------------
def test_skorch_features_are_the_head_input(skorch_net, digits):
    X = digits[0].astype(np.float32)
    module = skorch_net.module_
    module.train()  # an unusual state the call must leave alone
    module.body[2].eval()
    modes, params = _modes(module), _params(module)
    out = last_layer_outputs(skorch_net, X, batch_size=50)
    assert _modes(module) == modes and _no_hooks(module)
    for p, q in zip(params, module.parameters()):
        assert torch.equal(p, q)
    module.eval()
    with torch.no_grad():
        h = module.body(torch.as_tensor(X))
        z = module.head(h)
    assert out.features.dtype == torch.float32 and out.features.device.type == "cpu"
    assert_close(out.features, h)
    assert_close(out.logits, z)
    W, c = module.head.weight.detach(), module.head.bias.detach()
    assert_close(out.logits, out.features @ W.T + c)
    assert out.bias is True
    assert_array_equal(out.classes, np.arange(10))
    assert_allclose(softmax(out.logits.numpy(), axis=1), skorch_net.predict_proba(X), atol=1e-6)
    assert_allclose(predict_proba(skorch_net, X), skorch_net.predict_proba(X), atol=1e-6)


def test_skorch_chunked_equals_unchunked_and_float64_input(skorch_net, digits):
    X = digits[0]  # float64: converted to the module's float32
    a = last_layer_outputs(skorch_net, X, batch_size=13)
    b = last_layer_outputs(skorch_net, torch.as_tensor(X, dtype=torch.float32), batch_size=1000)
    assert_close(a.features, b.features)
    assert_close(a.logits, b.logits)


def test_skorch_predict_proba_keeps_module_mode(skorch_net, digits):
    module = skorch_net.module_
    module.train()
    predict_proba(skorch_net, digits[0][:20].astype(np.float32))
    assert all(_modes(module))
    module.eval()


def test_skorch_wrong_feature_count_raises_and_restores(skorch_net, digits):
    module = skorch_net.module_
    module.train()
    modes = _modes(module)
    with pytest.raises(ValueError, match=r"shape \(240, 10\).*must match what the net was trained"):
        last_layer_outputs(skorch_net, digits[0][:, :10])
    with pytest.raises(ValueError, match="must match what the net was trained"):
        posterior_probas(skorch_net, digits[0][:, :10], n_samples=2)
    assert _modes(module) == modes and _no_hooks(module)
    module.eval()


def test_nn_mlp_embed_and_last_layer():
    torch.manual_seed(1)
    net = _sq_nn().MLP(20, 4, hidden=(8, 6), dropout=0.2)
    X = torch.randn(30, 20)
    out = last_layer_outputs(net, X, batch_size=8)
    net.eval()
    with torch.no_grad():
        assert_close(out.features, net.embed(X))
        assert_close(out.logits, net(X))
    assert out.classes is None and classes_of(net) is None
    assert_allclose(predict_proba(net, X), torch.softmax(net(X), 1).detach().numpy(), atol=1e-6)


def test_float64_module_gives_float64_features():
    torch.manual_seed(0)
    net = DropNet(d=5, h=4, k=3).double()
    out = last_layer_outputs(net, np.random.default_rng(0).normal(size=(9, 5)))
    assert out.features.dtype == torch.float64 and out.logits.dtype == torch.float64


def test_single_output_head_gets_two_logits():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    X = torch.randn(11, 3)
    out = last_layer_outputs(net, X)
    with torch.no_grad():
        z = net(X)
    assert_close(out.logits, torch.cat([torch.zeros_like(z), z], 1))
    assert_allclose(predict_proba(net, X)[:, 1], torch.sigmoid(z).squeeze(1).numpy(), atol=1e-6)


def test_head_that_is_not_the_output_is_refused():
    # issue 12: this used to warn and go on with the wrong logits; now it is an error
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return 3.0 * self.fc(x) + 1.0

    with pytest.raises(EmbeddingNotSupportedError, match="is not its class head.*last_layer"):
        last_layer_outputs(Scaled(), torch.randn(5, 3))


def test_inconsistent_embed_warns():
    class Odd(DropNet):
        def embed(self, x):
            return self.body(x) + 1.0

    with pytest.warns(UserWarning, match="embed"):
        out = last_layer_outputs(Odd(d=3, h=4, k=2), torch.randn(6, 3))
    assert out.features.shape == (6, 4)


def test_module_without_linear_layer():
    net = nn.Sequential(nn.Flatten(), nn.Softmax(dim=1))
    assert not has_last_layer(net) and not has_posterior(net)
    with pytest.raises(EmbeddingNotSupportedError, match="no last linear layer"):
        last_layer_outputs(net, torch.randn(4, 3))
    with pytest.raises(EmbeddingNotSupportedError, match="no posterior draws"):
        posterior_probas(net, torch.randn(4, 3))


# ---------------------------------------------------------------------------------------------
# MC dropout
# ---------------------------------------------------------------------------------------------
def test_mc_dropout_reproducible_chunk_invariant_and_clean(skorch_net, digits):
    X = digits[0].astype(np.float32)
    module = skorch_net.module_
    module.eval()
    module.body[0].train()
    modes, params = _modes(module), _params(module)
    rng_state = torch.get_rng_state()
    a = posterior_probas(skorch_net, X, n_samples=6, random_state=3, batch_size=17)
    b = posterior_probas(skorch_net, X, n_samples=6, random_state=3, batch_size=1000)
    c = posterior_probas(skorch_net, X, n_samples=6, random_state=4, batch_size=1000)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert _modes(module) == modes and _no_hooks(module)
    for p, q in zip(params, module.parameters()):
        assert torch.equal(p, q)
    assert a.shape == (6, len(X), 10)
    assert_close(a, b, rtol=1e-6, atol=1e-7)  # same masks in every chunk (float32 round-off)
    assert not torch.allclose(a, c)  # another seed, other masks
    for i in range(5):
        assert not torch.allclose(a[i], a[i + 1])  # draws differ
    assert_close(a.sum(-1), torch.ones(6, len(X)))
    module.eval()


def test_mc_dropout_masks_are_shared_by_all_pool_points():
    # Dropout on the input, identity head: draw i's logits are mask_i / (1 - p) for every row.
    p = 0.5

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(p)
            self.fc = nn.Linear(6, 6, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(6))

        def forward(self, x):
            return self.fc(self.drop(x))

    P = posterior_probas(Net(), torch.ones(40, 6), n_samples=8, random_state=0, batch_size=7)
    logp = P.log()
    z = logp - logp.min(-1, keepdim=True).values  # logits up to a shift: mask / (1 - p) - min
    assert_close(z, z[:, :1].expand_as(z))  # the same mask for every pool point
    vals = torch.unique(torch.round(z * 1e4) / 1e4)
    assert set(vals.tolist()) <= {0.0, 1.0 / (1 - p)}
    assert len(torch.unique(z[:, 0], dim=0)) > 1  # but not the same for every draw


def test_mc_dropout_lenet_reuses_dropout_layer():
    LeNet5 = _sq_nn().LeNet5
    torch.manual_seed(0)
    net = LeNet5(dropout=0.3)
    X = torch.rand(20, 784)
    a = posterior_probas(net, X, n_samples=3, random_state=1, batch_size=6)
    b = posterior_probas(net, X, n_samples=3, random_state=1, batch_size=20)
    assert a.shape == (3, 20, 10)
    assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a[0], a[1])
    assert has_posterior(net) and not has_posterior(LeNet5(dropout=0.0))
    out = last_layer_outputs(net, X)
    assert out.features.shape == (20, 84)


# ---------------------------------------------------------------------------------------------
# variational last layer
# ---------------------------------------------------------------------------------------------
def test_variational_last_layer_draws_match_sample_parameters():
    from sparse_query._utils import torch_generator

    torch.manual_seed(0)
    net = _sq_nn().BayesianLastLayerNet(nn.Identity(), 5, 3, hidden=4, init_log_std=-1.0)
    net.train()
    X = torch.randn(25, 5)
    P = posterior_probas(net, X, n_samples=7, random_state=11, batch_size=6)
    assert all(_modes(net)) and _no_hooks(net)
    net.eval()
    with torch.no_grad():
        h = net.embed(X)
        W, b = net.output.sample_parameters(7, torch_generator(11, "cpu"))
        expected = torch.softmax(torch.einsum("nd,mkd->mnk", h, W) + b[:, None, :], -1)
    assert_close(P, expected)
    assert_close(P, posterior_probas(net, X, n_samples=7, random_state=11))
    out = last_layer_outputs(net, X)
    assert out.bias is True
    assert_close(out.features, h)
    assert_close(out.logits, h @ net.output.weight_mu.detach().T + net.output.bias_mu.detach())


@pytest.mark.parametrize("position", ["last", "inside"])
def test_duck_typed_variational_layer(position):
    # last: one pass, draws applied to the captured features; inside: each draw replaces the
    # layer's output and the net runs on.
    from sparse_query._utils import torch_generator

    torch.manual_seed(0)
    var = ToyVariational(4, 6 if position == "inside" else 3)
    net = nn.Sequential(var, nn.ReLU(), nn.Linear(6, 3)) if position == "inside" else \
        nn.Sequential(nn.Linear(4, 4), nn.Tanh(), var)
    X = torch.randn(10, 4)
    P = posterior_probas(net, X, n_samples=4, random_state=2, batch_size=3)
    W, b = var.sample_parameters(4, torch_generator(2, "cpu"))
    with torch.no_grad():
        if position == "inside":
            expected = torch.stack([
                torch.softmax(net[2](torch.relu(X @ W[i].T + b[i])), 1) for i in range(4)
            ])
        else:
            h = torch.tanh(net[0](X))
            expected = torch.stack([torch.softmax(h @ W[i].T + b[i], 1) for i in range(4)])
    assert_close(P, expected)
    assert has_posterior(net) and _no_hooks(net)
    if position == "last":
        out = last_layer_outputs(net, X)
        assert out.bias is True
        assert_close(out.features, h)
        assert_close(out.logits, var(h).detach())


def test_sparse_query_nn_variational_linear_inside_the_net():
    from sparse_query._utils import torch_generator

    torch.manual_seed(0)
    var = _sq_nn().VariationalLinear(4, 6, init_log_std=-1.0)
    net = nn.Sequential(var, nn.ReLU(), nn.Linear(6, 3))
    X = torch.randn(10, 4)
    P = posterior_probas(net, X, n_samples=4, random_state=2, batch_size=3)
    W, b = var.sample_parameters(4, torch_generator(2, "cpu"))
    with torch.no_grad():
        expected = torch.stack([
            torch.softmax(net[2](torch.relu(X @ W[i].T + b[i])), 1) for i in range(4)
        ])
    assert_close(P, expected)


# ---------------------------------------------------------------------------------------------
# ensembles and committees
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("Ensemble", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_members_are_draws(Ensemble, digits):
    X, y = digits
    y = np.array(["c%d" % v for v in y])  # string labels: member classes_ are indices
    forest = Ensemble(n_estimators=6, max_depth=4, random_state=0).fit(X, y)
    P = posterior_probas(forest, X, n_samples=50, batch_size=70)
    assert P.shape == (6, len(X), 10) and P.dtype == torch.float64
    assert_allclose(P.mean(0).numpy(), forest.predict_proba(X), atol=1e-12)
    assert has_posterior(forest) and not has_last_layer(forest)
    assert_array_equal(classes_of(forest), forest.classes_)
    with pytest.raises(EmbeddingNotSupportedError,
                       match=f"{Ensemble.__name__} has no last linear layer.*posterior"):
        last_layer_outputs(forest, X)


def test_bagging_members_that_miss_classes(digits):
    X, y = digits
    bag = BaggingClassifier(KNeighborsClassifier(n_neighbors=1), n_estimators=8, max_samples=12,
                            max_features=0.5, random_state=0).fit(X, y + 10)
    assert any(len(m.classes_) < 10 for m in bag.estimators_)  # the case under test
    P = posterior_probas(bag, X, batch_size=100)
    assert P.shape == (8, len(X), 10)
    assert_allclose(P.mean(0).numpy(), bag.predict_proba(X), atol=1e-12)
    for i, m in enumerate(bag.estimators_):
        unseen = np.setdiff1d(np.arange(10), m.classes_)
        assert_array_equal(P[i][:, unseen].numpy(), 0.0)


def test_soft_voting_members(binary):
    X, y = binary
    vote = _fit(VotingClassifier([("lr", LogisticRegression(max_iter=200)),
                                  ("rf", RandomForestClassifier(n_estimators=3, random_state=0))],
                                 voting="soft"), X, y)
    P = posterior_probas(vote, X)
    assert_allclose(P.mean(0).numpy(), vote.predict_proba(X), atol=1e-12)


def test_modal_active_learner_is_unwrapped(digits):
    ActiveLearner, _ = _modal()
    X, y = digits
    learner = ActiveLearner(LogisticRegression(max_iter=200), X_training=X[:40],
                            y_training=y[:40])
    assert unwrap_estimator(learner) is learner.estimator
    Xl, yl = get_labeled_data(learner)
    assert_allclose(Xl, X[:40]) and assert_array_equal(yl, y[:40])
    out = last_layer_outputs(learner, X)
    assert_allclose(softmax(out.logits.numpy(), 1), learner.predict_proba(X), atol=1e-10)
    assert_allclose(predict_proba(learner, X), learner.predict_proba(X), atol=1e-12)
    assert get_labeled_data(learner.estimator) == (None, None)


def test_modal_committee_aligns_members_on_the_union_of_classes(digits):
    ActiveLearner, Committee = _modal()
    X, y = digits
    idx_a = np.flatnonzero(y < 6)[:40]  # classes 0..5
    idx_b = np.flatnonzero(y >= 3)[:40]  # classes 3..9
    members = [
        ActiveLearner(LogisticRegression(max_iter=200), X_training=X[idx_a], y_training=y[idx_a]),
        ActiveLearner(RandomForestClassifier(n_estimators=4, random_state=0),
                      X_training=X[idx_b], y_training=y[idx_b]),
    ]
    committee = Committee(members)
    assert unwrap_estimator(committee) is committee
    assert has_posterior(committee) and not has_last_layer(committee)
    assert_array_equal(classes_of(committee), np.arange(10))
    P = posterior_probas(committee, X, batch_size=50)
    assert P.shape == (2, len(X), 10)
    assert_array_equal(P[0][:, 6:].numpy(), 0.0)
    assert_array_equal(P[1][:, :3].numpy(), 0.0)
    assert_allclose(P[0][:, :6].numpy(), members[0].predict_proba(X), atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = committee.predict_proba(X)
    assert_allclose(predict_proba(committee, X), expected, atol=1e-12)
    assert_allclose(P.mean(0).numpy(), expected, atol=1e-12)
    Xl, yl = get_labeled_data(committee)
    union = np.union1d(idx_a, idx_b)
    assert len(Xl) == len(union) and len(yl) == len(union)
    assert_array_equal(np.sort(yl), np.sort(y[union]))
    with pytest.raises(EmbeddingNotSupportedError, match="Committee has no last linear layer"):
        last_layer_outputs(committee, X)
    committee.X_training, committee.y_training = X[:5], y[:5]  # the committee's own data wins
    Xl, yl = get_labeled_data(committee)
    assert_allclose(Xl, X[:5]) and assert_array_equal(yl, y[:5])


# ---------------------------------------------------------------------------------------------
# errors and parameter checks
# ---------------------------------------------------------------------------------------------
def test_unfitted_estimators(digits):
    X = digits[0]
    with pytest.raises(NotFittedError, match="LogisticRegression is not fitted"):
        last_layer_outputs(LogisticRegression(), X)
    with pytest.raises(NotFittedError, match="not fitted"):
        predict_proba(make_pipeline(StandardScaler(), LogisticRegression()), X)
    check_fitted(DropNet())  # a plain module is always usable
    skorch = pytest.importorskip("skorch")
    net = skorch.NeuralNetClassifier(DropNet, verbose=0)
    with pytest.raises(NotFittedError, match="not initialized"):
        posterior_probas(net, X)
    ActiveLearner, Committee = _modal()
    with pytest.raises(NotFittedError, match="Committee member 0"):
        check_fitted(Committee([ActiveLearner(LogisticRegression())]))
    with pytest.raises(NotFittedError):
        check_fitted(ActiveLearner(RandomForestClassifier()))


def test_estimator_without_predict_proba(digits):
    X, y = digits
    svc = SVC().fit(X[:80], y[:80])
    with pytest.raises(EmbeddingNotSupportedError,
                       match=r"SVC has no predict_proba.*probability=True"):
        predict_proba(svc, X)
    assert not has_last_layer(svc) and not has_posterior(svc)
    with pytest.raises(EmbeddingNotSupportedError, match="SVC has no last linear layer"):
        last_layer_outputs(svc, X)
    knn = KNeighborsClassifier().fit(X, y)
    assert predict_proba(knn, X).shape == (len(X), 10)
    with pytest.raises(EmbeddingNotSupportedError, match="KNeighborsClassifier has no posterior"):
        posterior_probas(knn, X)
    assert issubclass(EmbeddingNotSupportedError, TypeError)


@pytest.mark.parametrize("kwargs,err,match", [
    ({"batch_size": 0}, ValueError, "batch_size=0 must be >= 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
    ({"n_samples": 0}, ValueError, "n_samples=0 must be >= 1"),
    ({"progress": "yes"}, TypeError, "progress must be True or False"),
    ({"device": "tpu"}, ValueError, "device='tpu'"),
])
def test_bad_parameters(kwargs, err, match, skorch_net, digits):
    X = digits[0][:10]
    with pytest.raises(err, match=match):
        posterior_probas(skorch_net, X, **kwargs)
    if "n_samples" not in kwargs:
        with pytest.raises(err, match=match):
            last_layer_outputs(skorch_net, X, **kwargs)


def test_bad_pools(digits):
    X, y = digits
    lr = _fit(LogisticRegression(max_iter=100), X, y)
    with pytest.raises(ValueError, match="X is empty"):
        last_layer_outputs(lr, X[:0])
    with pytest.raises(ValueError, match="X is None"):
        predict_proba(lr, None)
    with pytest.raises(ValueError, match="batch_size=0"):
        predict_proba(lr, X, batch_size=0)


def test_progress_bar_and_missing_tqdm(digits, monkeypatch):
    X, y = digits
    lr = _fit(LogisticRegression(max_iter=100), X, y)
    a = last_layer_outputs(lr, X, batch_size=50, progress=True)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    with pytest.warns(UserWarning, match="needs tqdm") as rec:
        b = last_layer_outputs(lr, X, batch_size=50, progress=True)
    assert rec[0].filename == __file__  # points at the caller
    assert_close(a.logits, b.logits)
    net = DropNet(d=64, h=4, k=10)
    with pytest.warns(UserWarning, match="needs tqdm") as rec:
        posterior_probas(net, X, n_samples=2, progress=True)
    assert rec[0].filename == __file__


def test_device_argument_cpu(skorch_net, digits):
    X = digits[0][:30]
    assert_close(last_layer_outputs(skorch_net, X, device="cpu").logits,
                 last_layer_outputs(skorch_net, X).logits)


@pytest.mark.gpu
def test_device_argument_cuda_moves_back():
    torch.manual_seed(0)
    net = DropNet(d=5, h=8, k=3)
    X = torch.randn(40, 5)
    cpu = last_layer_outputs(net, X)
    gpu = last_layer_outputs(net, X, device="cuda")
    assert gpu.logits.device.type == "cpu"
    assert next(net.parameters()).device.type == "cpu"
    assert_close(gpu.logits, cpu.logits, rtol=1e-4, atol=1e-5)
    a = posterior_probas(net, X, n_samples=3, random_state=0)
    b = posterior_probas(net, X, n_samples=3, random_state=0, device="cuda")
    assert_close(a, b, rtol=1e-4, atol=1e-5)  # masks are drawn on the CPU: same draws


# ---------------------------------------------------------------------------------------------
# more inputs and layers
# ---------------------------------------------------------------------------------------------
def test_skorch_predict_proba_float64_pool_and_wrong_shape(skorch_net, digits):
    X = digits[0]
    assert_allclose(predict_proba(skorch_net, X, batch_size=100),
                    skorch_net.predict_proba(X.astype(np.float32)), atol=1e-6)
    with pytest.raises(ValueError, match="must match what the net was trained on"):
        predict_proba(skorch_net, X[:, :7])


def test_pipeline_with_forest_posterior(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=4, random_state=0))
    pipe.fit(X, y)
    P = posterior_probas(pipe, X, batch_size=64)
    assert P.shape == (4, len(X), 10)
    assert_allclose(P.mean(0).numpy(), pipe.predict_proba(X), atol=1e-12)
    assert has_posterior(pipe) and not has_last_layer(pipe)


def test_dataframe_pool_without_feature_name_warnings(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    lr = _fit(LogisticRegression(max_iter=200), df, y)
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(df, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = last_layer_outputs(lr, df, batch_size=50)
        P = posterior_probas(rf, df, batch_size=50)
    assert_allclose(softmax(out.logits.numpy(), 1), lr.predict_proba(df), atol=1e-10)
    assert_allclose(P.mean(0).numpy(), rf.predict_proba(df), atol=1e-12)


def test_channel_dropout_masks_whole_channels():
    # Dropout1d on (N, C, L): one mask value per channel, shared by its L positions and all rows.
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout1d(0.5)
            self.fc = nn.Linear(12, 12, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(12))

        def forward(self, x):
            return self.fc(self.drop(x).flatten(1))

    X = torch.ones(9, 4, 3)
    P = posterior_probas(Net(), X, n_samples=6, random_state=0, batch_size=4)
    logp = P.log()
    z = (logp - logp.min(-1, keepdim=True).values).reshape(6, 9, 4, 3)
    assert_close(z, z[:, :1, :, :1].expand_as(z))
    assert len(torch.unique(torch.round(z[:, 0, :, 0] * 1e4), dim=0)) > 1


def test_alpha_dropout_keeps_or_saturates_units():
    p = 0.4
    alpha = -1.7580993408473766
    a = ((1 - p) * (1 + p * alpha ** 2)) ** -0.5
    b = -a * alpha * p

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.AlphaDropout(p)
            self.fc = nn.Linear(8, 8, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(8))

        def forward(self, x):
            return self.fc(self.drop(x))

    x = torch.full((5, 8), 2.0)
    P = posterior_probas(Net(), x, n_samples=10, random_state=0)
    logp = P.log()
    z = logp - logp.min(-1, keepdim=True).values  # shift-free differences between units
    kept, dropped = a * 2.0 + b, a * alpha + b
    vals = torch.unique(torch.round(z * 1e4) / 1e4).double().numpy()
    assert_allclose(vals, [0.0, kept - dropped], atol=1e-3)
