"""Cheap MC-dropout posterior draws on cached features (issue 14).

**Draws on cached features.** When the only stochastic layer of a net is one ``nn.Dropout``
whose output goes straight into the last ``nn.Linear`` (``sparse_query.nn.MLP`` with one hidden
layer, any net ``... -> Dropout -> Linear``), draw ``i`` is ``z_i = (h * m_i / (1 - p)) W^T + c``
with ``h`` the features of one deterministic forward pass. So the pool goes through the net
once, and each further draw costs one ``n x d x K`` product instead of a forward pass: hundreds
of draws cost little. The masks are drawn exactly as the full-forward path draws them (same
generator, same order, same shape), so both give the same draws for the same
``random_state`` (``tests/test_trees_draws.py`` checks it).
"""
from __future__ import annotations

import torch

from .._utils import torch_generator
from ._common import _resolve
from ._rows import _prepare_X
from ._torch import (
    _Capture, _dropouts, _forward, _inference, _is_variational, _module_dtype,
    _to_tensor, _torch_last_layer, _torch_module,
)
from ._common import _apply
from ._rows import _take


def cached_dropout_layer(module, x):
    """``(dropout, last_linear)`` when draws can run on cached features, else ``None``.

    Runs one eval-mode forward pass on ``x`` (a small probe batch) and checks: exactly one
    dropout layer with ``p > 0``, an ``nn.Dropout`` (element-wise masks), run once, whose output
    object is the input of the last executed ``nn.Linear``; no variational layer.
    """
    drops = _dropouts(module)
    if len(drops) != 1 or type(drops[0]) is not torch.nn.Dropout:
        return None
    if any(_is_variational(m) for m in module.modules()):
        return None
    drop = drops[0]
    seen = []
    with _inference(module, None) as (dev, handles):
        capture = _Capture(module, handles)
        handles.append(drop.register_forward_hook(lambda m, i, o: seen.append(o)))
        x = x.to(dev)
        _forward(module, x, tuple(x.shape))
    if len(seen) != 1 or capture.last is None:
        return None
    layer, h, _ = capture.last
    if not isinstance(layer, torch.nn.Linear) or h is not seen[0] or h.ndim != 2:
        return None
    return drop, layer


def cached_dropout_probas(estimator, X, *, n_samples, random_state, batch_size=1024,
                          device=None):
    """MC-dropout probabilities ``(M, n, K)`` from one forward pass, or ``None`` if not applicable.

    ``None`` means the net is not ``... -> Dropout -> Linear`` with a single dropout layer (the
    caller then uses full forward passes). Same draws as
    :func:`~sparse_query.adapters.posterior_probas` for the same ``random_state``.
    """
    transforms, est = _resolve(estimator)
    tm = _torch_module(est)
    if tm is None:
        return None
    module, default = tm
    X, n = _prepare_X(X)
    probe = _to_tensor(_apply(transforms, _take(X, 0, min(n, 2))), _module_dtype(module),
                       torch.device("cpu"))
    found = cached_dropout_layer(module, probe)
    if found is None:
        return None
    drop, layer = found
    ll = _torch_last_layer(module, default, X, transforms, batch_size=batch_size,
                           device=device, progress=False, classes=None)
    h = ll.features                                        # (n, d), eval mode: pre-mask input
    gen = torch_generator(random_state, "cpu")             # as _DrawHooks: one CPU stream
    keep = 1.0 - float(drop.p)
    masks = torch.bernoulli(torch.full((n_samples, h.shape[1]), keep, dtype=torch.float64),
                            generator=gen).to(h.dtype)
    W = layer.weight.detach().to("cpu", h.dtype)           # (K, d)
    b = None if layer.bias is None else layer.bias.detach().to("cpu", h.dtype)
    out = None
    for s in range(0, n, batch_size):                      # (M, chunk, K) at a time
        hc = h[s:s + batch_size]
        z = torch.einsum("nd,md,kd->mnk", hc, masks / keep, W)
        if b is not None:
            z = z + b
        if z.shape[-1] == 1:
            z = torch.cat([torch.zeros_like(z), z], -1)
        p = torch.softmax(z, -1)
        if out is None:
            out = torch.empty((n_samples, n, p.shape[-1]), dtype=p.dtype)
        out[:, s:s + batch_size] = p
    return out
