"""Small torch modules: shapes, embed() hooks, the variational layer's maths, skorch training."""
import math
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from torch.testing import assert_close

from sparse_query.nn import (
    ELBOLoss,
    LeNet5,
    MLP,
    BayesianLastLayerNet,
    VariationalLinear,
    kl_divergence,
)


def _input_of(layer, net, x):
    """What ``layer`` receives when ``net(x)`` runs (a forward pre-hook)."""
    seen = []
    handle = layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        net(x)
    finally:
        handle.remove()
    return seen[0]


# ---------------------------------------------------------------------------- LeNet-5, MLP
def test_lenet5_shapes_and_embed():
    net = LeNet5(n_classes=7).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 28, 28, generator=gen)
    out = net(x)
    assert out.shape == (5, 7)
    assert_close(net(x.reshape(5, 784)), out)                       # flat input
    assert_close(net(x[:, 0]), out)                                 # (N, 28, 28)
    assert_close(net(x.double()), out)                              # cast to the weights' dtype
    assert net.embed(x).shape == (5, 84)
    assert_close(net.embed(x), _input_of(net.fc3, net, x))
    assert net.last_layer is net.fc3 and isinstance(net.fc3, torch.nn.Linear)
    assert not torch.allclose(torch.softmax(out, 1).sum(1), out.sum(1))   # logits, not probs


def test_lenet5_channels_and_bad_input():
    net = LeNet5(n_classes=3, in_channels=3)
    assert net(torch.zeros(2, 3 * 784)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 2352\) or \(N, 3, 28, 28\)"):
        net(torch.zeros(2, 784))
    with pytest.raises(ValueError, match="n_classes=1 must be >= 2"):
        LeNet5(n_classes=1)
    with pytest.raises(ValueError, match="in_channels=0 must be >= 1"):
        LeNet5(in_channels=0)
    with pytest.raises(ValueError, match="dropout=1.0 must be < 1"):
        LeNet5(dropout=1.0)


def test_lenet5_dropout_is_stochastic_only_in_training():
    net = LeNet5(dropout=0.5)
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(1))
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("hidden, width", [((64, 32), 32), ((), 12), (16, 16)])
def test_mlp_shapes_and_embed(hidden, width):
    net = MLP(12, 4, hidden=hidden).eval()
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(2))
    assert net(x).shape == (6, 4)
    assert net.embed(x).shape == (6, width)
    assert_close(net.embed(x), _input_of(net.output, net, x))
    assert net.last_layer is net.output
    assert net(x.reshape(6, 3, 4)).shape == (6, 4)                # flattens extra dims


def test_mlp_dropout_and_bad_params():
    net = MLP(8, 3, dropout=0.5).train()
    x = torch.randn(10, 8, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(net(x), net(x))
    assert torch.equal(net.eval()(x), net(x))
    with pytest.raises(ValueError, match="MLP expects 8 input features; got 5"):
        net(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"dropout=-0.1 must be >= 0"):
        MLP(8, 3, dropout=-0.1)
    with pytest.raises(ValueError, match=r"hidden\[1\]=0 must be >= 1"):
        MLP(8, 3, hidden=(4, 0))
    with pytest.raises(ValueError, match="n_features=0 must be >= 1"):
        MLP(0, 3)
    with pytest.raises(TypeError, match="n_classes must be an integer"):
        MLP(8, 3.0)


# ---------------------------------------------------------------------------- variational layer
def _layer(seed=0, in_f=3, out_f=2, log_std=-1.0, prior_std=1.0, bias=True):
    layer = VariationalLinear(in_f, out_f, prior_std=prior_std, init_log_std=log_std, bias=bias)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight_mu.copy_(torch.randn(out_f, in_f, generator=gen))
        layer.weight_log_std.add_(0.3 * torch.randn(out_f, in_f, generator=gen))
        if bias:
            layer.bias_mu.copy_(torch.randn(out_f, generator=gen))
            layer.bias_log_std.add_(0.3 * torch.randn(out_f, generator=gen))
    return layer


def test_variational_linear_eval_is_deterministic_mean():
    layer = _layer().eval()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(layer(x), layer(x))
    assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    assert layer.is_variational is True and VariationalLinear.is_variational is True


def test_variational_linear_training_uses_local_reparameterisation():
    layer = _layer().train()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(layer(x), layer(x))
    with torch.no_grad():
        draws = torch.stack([layer(x) for _ in range(4000)])      # (S, 4, 2)
        mean = x @ layer.weight_mu.T + layer.bias_mu
        var = (x * x) @ torch.exp(2 * layer.weight_log_std).T + torch.exp(2 * layer.bias_log_std)
    assert_close(draws.mean(0), mean, rtol=0, atol=float(4 * var.max().sqrt() / math.sqrt(4000)))
    assert_close(draws.var(0), var, rtol=0.1, atol=0)


def test_variational_linear_sample_parameters():
    layer = _layer()
    W, b = layer.sample_parameters(20000, generator=torch.Generator().manual_seed(6))
    assert W.shape == (20000, 2, 3) and b.shape == (20000, 2)
    assert not W.requires_grad
    assert_close(W.mean(0), layer.weight_mu.detach(), rtol=0, atol=0.02)
    assert_close(W.std(0), torch.exp(layer.weight_log_std).detach(), rtol=0.03, atol=0)
    assert_close(b.mean(0), layer.bias_mu.detach(), rtol=0, atol=0.02)
    assert_close(b.std(0), torch.exp(layer.bias_log_std).detach(), rtol=0.03, atol=0)
    W1, b1 = layer.sample_parameters(3, generator=torch.Generator().manual_seed(7))
    W2, b2 = layer.sample_parameters(3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(W1, W2) and torch.equal(b1, b2)
    Wn, bn = _layer(bias=False).sample_parameters(4)
    assert torch.equal(bn, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="n_samples=0 must be >= 1"):
        layer.sample_parameters(0)


def test_variational_linear_kl():
    layer = _layer(prior_std=0.7)
    q_w = torch.distributions.Normal(layer.weight_mu, torch.exp(layer.weight_log_std))
    q_b = torch.distributions.Normal(layer.bias_mu, torch.exp(layer.bias_log_std))
    prior = torch.distributions.Normal(0.0, 0.7)
    exact = (torch.distributions.kl_divergence(q_w, prior).sum()
             + torch.distributions.kl_divergence(q_b, prior).sum())
    kl = layer.kl_divergence()
    assert_close(kl, exact)
    assert float(kl.detach()) >= 0
    # Monte-Carlo estimate E_q[log q - log p] from full weight draws
    W, b = layer.sample_parameters(50000, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        mc = ((q_w.log_prob(W) - prior.log_prob(W)).sum((1, 2))
              + (q_b.log_prob(b) - prior.log_prob(b)).sum(1)).mean()
    assert_allclose(float(mc), float(kl.detach()), rtol=0.03)
    # zero exactly at the prior, and it has gradients
    at_prior = VariationalLinear(3, 2, prior_std=0.5, init_log_std=math.log(0.5))
    with torch.no_grad():
        at_prior.weight_mu.zero_()
        at_prior.bias_mu.zero_()
    assert_close(at_prior.kl_divergence(), torch.tensor(0.0), atol=1e-6, rtol=0)
    kl.backward()
    assert layer.weight_log_std.grad is not None


def test_variational_linear_bad_params():
    with pytest.raises(ValueError, match="prior_std=0.0 must be > 0"):
        VariationalLinear(3, 2, prior_std=0.0)
    with pytest.raises(ValueError, match="in_features=0 must be >= 1"):
        VariationalLinear(0, 2)
    with pytest.raises(ValueError, match="init_log_std=inf must be finite"):
        VariationalLinear(3, 2, init_log_std=float("inf"))


def test_kl_divergence_of_a_module():
    net = BayesianLastLayerNet(torch.nn.Identity(), 4, 3, hidden=5)
    assert_close(kl_divergence(net), net.output.kl_divergence())
    assert_close(kl_divergence(MLP(4, 3)), torch.tensor(0.0))
    two = torch.nn.Sequential(VariationalLinear(4, 4), VariationalLinear(4, 3))
    assert_close(kl_divergence(two), two[0].kl_divergence() + two[1].kl_divergence())


def test_bayesian_last_layer_net():
    net = BayesianLastLayerNet(MLP(10, 2, hidden=(6,)).body, feature_dim=6, n_classes=4, hidden=8)
    x = torch.randn(7, 10, generator=torch.Generator().manual_seed(9))
    assert net.embed(x).shape == (7, 8)
    net.eval()
    assert_close(net.embed(x), _input_of(net.output, net, x))
    assert torch.equal(net(x), net(x))
    assert net(x).shape == (7, 4)
    assert net.last_layer is net.output and net.output.is_variational
    net.train()
    assert not torch.equal(net(x), net(x))
    with pytest.raises(ValueError, match="feature_extractor returned 6 features per sample but "
                                         "feature_dim=5"):
        BayesianLastLayerNet(MLP(10, 2, hidden=(6,)).body, 5, 4)(x)
    with pytest.raises(TypeError, match="feature_extractor must be a torch.nn.Module"):
        BayesianLastLayerNet(lambda x: x, 5, 4)
    with pytest.raises(ValueError, match="hidden=0 must be >= 1"):
        BayesianLastLayerNet(torch.nn.Identity(), 5, 4, hidden=0)


# ---------------------------------------------------------------------------- ELBO
def test_elbo_loss_value():
    gen = torch.Generator().manual_seed(10)
    logits, y = torch.randn(8, 3, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    ce = torch.nn.functional.cross_entropy(logits, y)
    kl = torch.tensor(5.0)
    assert isinstance(ELBOLoss(), torch.nn.CrossEntropyLoss)      # skorch's softmax inference
    assert_close(ELBOLoss()(logits, y), ce)
    assert_close(ELBOLoss(n_train=100)(logits, y, kl=kl), ce + 0.05)
    assert_close(ELBOLoss(kl_weight=0.5)(logits, y, kl=kl, n_train=10), ce + 0.25)
    assert_close(ELBOLoss(kl_weight=0.0)(logits, y, kl=kl), ce)
    with pytest.raises(ValueError, match="ELBOLoss needs n_train"):
        ELBOLoss()(logits, y, kl=kl)
    with pytest.raises(ValueError, match="reduction='sum' is not supported"):
        ELBOLoss(reduction="sum")
    with pytest.raises(ValueError, match="kl_weight=-1.0 must be >= 0"):
        ELBOLoss(kl_weight=-1.0)
    with pytest.raises(ValueError, match="n_train=0 must be >= 1"):
        ELBOLoss(n_train=0)


# ---------------------------------------------------------------------------- skorch
def _toy(n=96, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def _fit_variational(cls, X, y):
    return cls(
        BayesianLastLayerNet, module__feature_extractor=torch.nn.Identity(),
        module__feature_dim=6, module__n_classes=3, module__hidden=16,
        module__init_log_std=-3.0, optimizer=torch.optim.Adam, lr=0.02, max_epochs=30,
        batch_size=32, train_split=None, verbose=0).fit(X, y)


def test_variational_net_classifier_trains_with_skorch():
    pytest.importorskip("skorch")
    from sklearn.base import clone
    from skorch.dataset import ValidSplit

    from sparse_query.nn import VariationalNetClassifier

    X, y = _toy()
    with torch.random.fork_rng():            # reproducible init/shuffles; global state restored
        torch.manual_seed(0)
        net = _fit_variational(VariationalNetClassifier, X, y)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert net.n_train_ == len(y)
    # the training loss is CE + KL / n_train with a non-zero KL
    net.module_.eval()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    with torch.no_grad():
        logits = net.module_(Xt)
        kl = kl_divergence(net.module_)
        loss = net.get_loss(logits, yt, X=Xt, training=True)
        val_loss = net.get_loss(logits, yt, X=Xt, training=False)
    ce = torch.nn.functional.cross_entropy(logits, yt)
    assert float(kl) > 0
    assert_close(loss, ce + kl / len(y))
    assert_close(val_loss, ce)
    proba = net.predict_proba(X)
    assert proba.shape == (len(y), 3)
    assert_allclose(proba.sum(1), 1.0, rtol=1e-5)                   # softmax was applied
    assert (net.predict(X) == y).mean() > 0.8
    # the training split, not the whole input, sets n_train; criterion__n_train overrides it
    net2 = clone(net).set_params(max_epochs=1, train_split=ValidSplit(4))
    net2.fit(X, y)
    assert net2.n_train_ == 72
    net3 = clone(net).set_params(max_epochs=1, criterion__n_train=1000).fit(X, y)
    with torch.no_grad():
        loss3 = net3.get_loss(logits, yt, training=True)
    assert_close(loss3, ce + kl_divergence(net3.module_) / 1000)
    assert isinstance(pickle.loads(pickle.dumps(net)), VariationalNetClassifier)


def test_lenet5_and_mlp_train_with_skorch():
    skorch = pytest.importorskip("skorch")
    rng = np.random.default_rng(1)
    X = rng.random((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    net = skorch.NeuralNetClassifier(LeNet5, criterion=torch.nn.CrossEntropyLoss, max_epochs=2,
                                     lr=0.05, train_split=None, verbose=0).fit(X, y)
    assert_allclose(net.predict_proba(X[:5]).sum(1), 1.0, rtol=1e-5)
    net = skorch.NeuralNetClassifier(MLP, module__n_features=784, module__n_classes=10,
                                     criterion=torch.nn.CrossEntropyLoss, max_epochs=2,
                                     train_split=None, verbose=0).fit(X, y)
    assert net.predict_proba(X[:5]).shape == (5, 10)
