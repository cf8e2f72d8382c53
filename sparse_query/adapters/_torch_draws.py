"""Posterior draws of torch modules and skorch nets: MC dropout with fixed masks and
variational layers' weight samples, made deterministic per draw by forward hooks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._utils import check_int, torch_generator
from ._common import _POSTERIOR_HELP, EmbeddingNotSupportedError, _apply, _name
from ._rows import _check_batch_size, _chunks, _prepare_X, _progress, _to_tensor, _two_columns
from ._torch import (
    _Capture, _check_head, _declared_last_layer, _dropouts, _forward, _inference,
    _is_variational, _last_layer_from_capture, _module_dtype, _param, _shape, _target_device,
)


class _DrawHooks:
    """Forward hooks that make draw ``i`` of MC dropout / variational layers deterministic.

    Dropout masks are Bernoulli draws of shape ``input.shape[1:]`` (per channel for the
    ``Dropout1d/2d/3d`` and ``FeatureAlphaDropout`` layers), drawn once per layer for all draws
    from a CPU generator seeded from ``random_state``, so every chunk of the pool sees the same
    masks. The dropout layers themselves stay in eval mode (identity); the hook applies the mask.
    """

    def __init__(self, module, n_draws, generator, handles, var_params):
        self.i = 0
        self.n_draws = n_draws
        self.gen = generator
        self.masks = {}
        self.calls = {}
        self.var_params = var_params
        if generator is not None:  # MC dropout; with variational layers dropout stays off
            for m in _dropouts(module):
                handles.append(m.register_forward_hook(self._dropout_hook))
        for m in var_params:
            handles.append(m.register_forward_hook(self._variational_hook))

    def _mask(self, layer, x):
        channelwise = isinstance(layer, (torch.nn.Dropout1d, torch.nn.Dropout2d,
                                         torch.nn.Dropout3d, torch.nn.FeatureAlphaDropout))
        shape = tuple(x.shape[1:])
        if channelwise and len(shape) >= 2:
            shape = (shape[0],) + (1,) * (len(shape) - 1)
        k = self.calls.get(id(layer), 0)  # a layer may run more than once per forward
        self.calls[id(layer)] = k + 1
        key = (id(layer), k)
        if key not in self.masks:
            keep = 1.0 - float(layer.p)
            probs = torch.full((self.n_draws,) + shape, keep, dtype=torch.float64)
            self.masks[key] = (shape, torch.bernoulli(probs, generator=self.gen))
        mshape, masks = self.masks[key]
        if mshape != shape:
            raise ValueError(
                f"A dropout layer saw inputs of shape {shape} after {mshape}; MC dropout needs "
                "the same per-sample shape for the whole pool and the same path through the net."
            )
        return masks[self.i].to(device=x.device, dtype=x.dtype)

    def _dropout_hook(self, layer, inputs, output):
        x = inputs[0]
        mask = self._mask(layer, x)
        p = float(layer.p)
        if isinstance(layer, (torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)):
            alpha = -1.7580993408473766  # -scale * alpha of SELU: the value dropped units take
            a = ((1.0 - p) * (1.0 + p * alpha ** 2)) ** -0.5
            return a * (x * mask + alpha * (1.0 - mask)) - a * alpha * p
        return x * mask / (1.0 - p)

    def _variational_hook(self, layer, inputs, output):
        W, b = self.var_params[layer]
        return F.linear(inputs[0], W[self.i].to(inputs[0].dtype),
                        None if b is None else b[self.i].to(inputs[0].dtype))


def _torch_posterior(module, default_device, X, transforms, *, n_samples, random_state,
                     batch_size, device, progress, net=None):
    variational = [m for m in module.modules() if _is_variational(m)]
    dropouts = _dropouts(module)
    if not variational and not dropouts:
        raise EmbeddingNotSupportedError(
            f"{_name(module)} has neither nn.Dropout layers with p > 0 nor a variational layer, "
            "so it has no posterior draws and embedding='posterior' cannot be used. "
            + _POSTERIOR_HELP
        )
    X, n = _prepare_X(X)
    declared = _declared_last_layer(module) is not None
    n_samples = check_int(n_samples, "n_samples", min_val=1)
    batch_size = _check_batch_size(batch_size, n)
    dtype = _module_dtype(module)
    out = None
    with _inference(module, _target_device(default_device, device)) as (dev, handles):
        var_params, gens = {}, {}
        if variational:
            for m in variational:  # registration order: reproducible
                p = _param(m)
                where = p.device if p is not None else torch.device("cpu")
                if str(where) not in gens:  # one stream per device, shared by its layers
                    gens[str(where)] = torch_generator(random_state, where)
                W, b = m.sample_parameters(n_samples, gens[str(where)])
                var_params[m] = (W.detach().to(dev), None if b is None else b.detach().to(dev))
        capture = _Capture(module, handles)
        fast = None
        draws = None
        if not variational:
            draws = _DrawHooks(module, n_samples, torch_generator(random_state, "cpu"), handles, {})
        with _progress(n, progress, "posterior draws", depth=2) as bar:
            for start, stop, chunk in _chunks(X, n, batch_size, bar):
                x = _to_tensor(_apply(transforms, chunk), dtype, dev)
                shape = _shape(x, n)
                if variational:
                    capture.last = None
                    out0 = _forward(module, x, shape)
                    layer, h, z0 = _last_layer_from_capture(capture, module, shape)
                    _check_head(module, net, layer, out0, z0, declared, (start, stop))
                    if fast is None:
                        fast = len(variational) == 1 and layer is variational[0]
                        if not fast:  # replace every variational layer's output, draw by draw
                            draws = _DrawHooks(module, n_samples, None, handles, var_params)
                    if fast:
                        W, b = var_params[layer]
                        z = torch.einsum("nd,mkd->mnk", h, W.to(h.dtype))
                        if b is not None:
                            z = z + b.to(h.dtype)[:, None, :]
                        probs = torch.softmax(_two_columns(z), -1)
                    else:
                        probs = _draw_loop(module, x, shape, capture, draws, n_samples)
                else:
                    probs = _draw_loop(module, x, shape, capture, draws, n_samples,
                                       check=(net, declared, (start, stop)))
                probs = probs.detach().to("cpu")
                if out is None:
                    out = torch.empty((n_samples, n, probs.shape[-1]), dtype=probs.dtype)
                out[:, start:stop] = probs
    return out


def _draw_loop(module, x, shape, capture, draws, n_draws, check=None):
    probs = []
    for i in range(n_draws):
        draws.i = i
        draws.calls = {}
        capture.last = None
        out = _forward(module, x, shape)
        layer, _, z = _last_layer_from_capture(capture, module, shape)
        if check is not None and i == 0:  # within a draw the output and the head agree too
            _check_head(module, check[0], layer, out, z, check[1], check[2])
        probs.append(torch.softmax(_two_columns(z), 1))
    return torch.stack(probs)
