"""Torch modules and skorch nets: finding the module, inference mode, last-layer hooks and the
check that the head found is the net's class head. Their posterior draws (MC dropout,
variational layers) are in ``_torch_draws``."""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from .._utils import resolve_device
from ._common import (
    _GRADIENT_USERS, EmbeddingNotSupportedError, LastLayer, _apply, _is_skorch_net, _name,
)
from ._rows import (
    _RowStack, _Staging, _check_batch_size, _chunks, _pool_as_tensor, _prepare_X, _progress, _to_tensor,
    _two_columns,
)


def _is_variational(m) -> bool:
    return getattr(m, "is_variational", False) is True and callable(
        getattr(m, "sample_parameters", None)
    )


_DROPOUT_TYPES = (
    torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d,
    torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout,
)


def _dropouts(module):
    return [m for m in module.modules() if isinstance(m, _DROPOUT_TYPES) and float(m.p) > 0.0]


def _torch_module(est):
    """``(module, default_device)`` for a torch module or an initialized skorch net, else None."""
    if isinstance(est, torch.nn.Module):
        return est, None
    if _is_skorch_net(est) and isinstance(getattr(est, "module_", None), torch.nn.Module):
        dev = getattr(est, "device", None)
        return est.module_, (None if dev is None else torch.device(dev))
    return None


def _param(module):
    for p in module.parameters():
        return p
    for b in module.buffers():
        return b
    return None


def _module_dtype(module):
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    def index(d):
        if d.index is not None:
            return d.index
        return torch.cuda.current_device() if d.type == "cuda" else 0

    return index(a) == index(b)


@contextmanager
def _inference(module, device):
    """Eval mode, ``no_grad``, optionally another device; all undone on exit (also on errors).

    Yields ``(device, handles)``: append hook handles to ``handles`` to have them removed.
    """
    modes = [(m, m.training) for m in module.modules()]
    handles = []
    p = _param(module)
    home = p.device if p is not None else torch.device("cpu")
    target = home if device is None else device
    moved = False
    try:
        if not _same_device(home, target):
            module.to(target)
            moved = True
        module.eval()
        with torch.no_grad():
            yield target, handles
    finally:
        for h in handles:
            h.remove()
        if moved:
            module.to(home)
        for m, training in modes:
            m.training = training


def _target_device(default, device):
    if device is not None:
        return resolve_device(device)
    return default


def _declared_last_layer(module):
    """``module.last_layer`` when it is a linear or variational submodule (sparse_query.nn)."""
    try:
        layer = getattr(module, "last_layer", None)
    except Exception:  # a property that fails: fall back to discovery
        return None
    if isinstance(layer, torch.nn.Module) and (
        isinstance(layer, torch.nn.Linear) or _is_variational(layer)
    ) and any(layer is m for m in module.modules()):
        return layer
    return None


class _Capture:
    """Forward hooks on the candidate last layers; remembers the last one executed.

    The candidates are ``module.last_layer`` when the module declares one, else every
    ``nn.Linear`` and variational submodule.
    """

    def __init__(self, module, handles):
        self.last = None
        declared = _declared_last_layer(module)
        candidates = [declared] if declared is not None else [
            m for m in module.modules() if isinstance(m, torch.nn.Linear) or _is_variational(m)
        ]
        for m in candidates:
            handles.append(m.register_forward_hook(self._hook))

    def _hook(self, layer, inputs, output):
        self.last = (layer, inputs[0] if inputs else None, output)


_SHAPE_WORDS = ("shape", "size", "dimension", "channels", "expect", "match", "features")


def _shape(x, n):
    """``(n,) + per-row shape`` of a tensor, or of the first entry of a dict / tuple input."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, tuple):
        x = x[0]
    return (n,) + tuple(x.shape[1:])


def _forward(module, x, X_shape):
    try:
        if isinstance(x, dict):  # skorch's dict inputs are keyword arguments of forward
            return module(**x)
        return module(x)
    except (RuntimeError, ValueError) as err:
        msg = str(err)
        inputs = list(x.values()) if isinstance(x, dict) else [x]
        ints = [t.dtype for t in inputs if isinstance(t, torch.Tensor) and not t.is_floating_point()]
        if ints and "dtype" in msg.lower():
            raise ValueError(
                f"X_pool holds {str(ints[0]).replace('torch.', '')} values but the net computes in "
                f"{str(_module_dtype(module)).replace('torch.', '')} ({msg.strip()}); cast the "
                "pool to the net's input type, e.g. X_pool.astype(np.float32) (the net's own "
                "predict_proba fails on it too)."
            ) from err
        if any(w in msg.lower() for w in _SHAPE_WORDS):
            raise ValueError(
                f"X has shape {tuple(X_shape)} but the net cannot process it ({msg.strip()}). "
                "The pool's feature shape must match what the net was trained on."
            ) from err
        raise


def _head_ok(out, z) -> bool:
    """Is the module's output the last layer's output, up to a (log-)softmax or (log-)sigmoid?"""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return False
    if out.shape != z.shape:
        if z.ndim == 2 and z.shape[1] == 1 and out.shape == z.shape[:1]:
            out = out.unsqueeze(1)
        else:
            return False
    if z.shape[1] == 1:
        maps = (None, torch.sigmoid, F.logsigmoid)
    else:
        maps = (None, lambda x: torch.softmax(x, 1), lambda x: torch.log_softmax(x, 1))
    # one candidate at a time: most heads output z itself, and forming the others costs as
    # much as the head's forward pass
    return any(torch.allclose(out.to(z.dtype), c, rtol=1e-4, atol=1e-5)
               for c in (z if f is None else f(z) for f in maps))


#: Largest ``max |softmax(z) - predict_proba|`` accepted as "the same probabilities". Both
#: sides come from the same forward pass of the same module on the same inputs, so in float32
#: they differ only by the rounding of a softmax over K values (a few ``eps = 1.2e-7`` times
#: ``K``, below 1e-6 for K <= 10 and logits up to ~80) plus the nonlinearity skorch applies;
#: 1e-4 leaves over 100x slack for that and for batch-dependent kernels, while a head that is
#: not the model's head differs by far more (``logits / 1.1`` already moves probabilities by
#: ~1e-2; a head that runs before an auxiliary layer or a ``Parameter`` head, by 0.1 and more). float64: the same reasoning with its eps.
_PROBA_ATOL = {torch.float64: 1e-8}
_PROBA_ATOL_DEFAULT = 1e-4

_DECLARE_HELP = (
    "Declare the class head: set `last_layer` on the module to the nn.Linear that produces the "
    "class logits (e.g. `self.last_layer = self.head` in __init__; a head that is a bare "
    "Parameter matrix must become an nn.Linear first). The protocol: the module's "
    "output (the first element when forward returns a tuple) must be that layer's output or "
    "its softmax / log-softmax, with one column per class (or one column for a binary "
    "sigmoid head), so that its softmax is the net's predict_proba."
)


def _proba_atol(dtype) -> float:
    return _PROBA_ATOL.get(dtype, _PROBA_ATOL_DEFAULT)


def _as_probabilities(p, atol):
    """``p`` (n, K) as class probabilities: itself when its rows are probabilities, ``exp(p)``
    when they are log-probabilities (a LogSoftmax output), else None."""
    if not isinstance(p, torch.Tensor):
        p = torch.as_tensor(p)
    if not p.is_floating_point() or p.ndim != 2 or p.shape[0] == 0:
        return None
    p = p.detach().to(torch.float64)
    tol = max(atol, 1e-6) * max(1, p.shape[1])
    if bool((p >= -atol).all()) and bool(((p.sum(1) - 1).abs() <= tol).all()):
        return p.clamp_min(0)
    if bool((p <= atol).all()):
        e = p.exp()
        if bool(((e.sum(1) - 1).abs() <= tol).all()):
            return e
    return None


def _layer_name(module, layer) -> str:
    for name, m in module.named_modules():
        if m is layer:
            return f"{name or 'the module'} ({_name(layer)})"
    return _name(layer)


def _predict_proba_overridden(net) -> bool:
    """True when a subclass replaces skorch's ``predict_proba`` (we then call the real one)."""
    from skorch import NeuralNet, NeuralNetClassifier

    own = getattr(type(net), "predict_proba", None)
    return own not in (NeuralNet.predict_proba, NeuralNetClassifier.predict_proba)


def _refuse_head(module, layer, why):
    return EmbeddingNotSupportedError(
        f"The last linear layer found in {_name(module)}, {_layer_name(module, layer)}, is not "
        f"its class head: {why}. embedding='gradient' (and every strategy using last-layer "
        "features) would use the wrong numbers. " + _DECLARE_HELP
    )


def _check_head(module, net, layer, out, z, declared, rows):
    """The invariant behind every last-layer embedding: ``softmax(z)`` of the layer we hooked is
    the model's own class probability. Raises :class:`EmbeddingNotSupportedError` otherwise.

    ``net``: the skorch net (its ``predict_proba`` is the nonlinearity applied to the first
    element of the module's output), or None for a plain module (whose output must be ``z`` or
    its (log-)softmax / (log-)sigmoid). ``rows``: ``(start, stop)`` for the message.
    """
    if isinstance(out, (tuple, list)):
        if not declared:
            raise _refuse_head(module, layer, (
                f"forward returns a {type(out).__name__} of {len(out)} outputs, so which of them "
                "are the class scores cannot be told"))
        out = out[0]
    zz = _two_columns(z.detach())
    if net is None:
        if not _head_ok(out, z):
            width = tuple(getattr(out, "shape", ()))[1:] if isinstance(out, torch.Tensor) else ()
            raise _refuse_head(module, layer, (
                f"its output has {z.shape[1]} column(s) and the module's output (shape "
                f"{tuple(getattr(out, 'shape', ()))}) is neither it nor its softmax / "
                f"log-softmax{' (different widths)' if width and width[0] != z.shape[1] else ''}"))
        return
    if not isinstance(out, torch.Tensor):
        raise _refuse_head(module, layer, f"the module returns a {type(out).__name__}")
    nonlin = net._get_predict_nonlinearity()
    p_model = _as_probabilities(nonlin(out), _proba_atol(z.dtype))
    if p_model is None:
        raise EmbeddingNotSupportedError(
            f"{_name(net)}.predict_proba does not return class probabilities (nor "
            f"log-probabilities) on rows {rows[0]}:{rows[1]}, so its head cannot be checked. Use "
            "criterion=torch.nn.CrossEntropyLoss on logits, or NLLLoss on a LogSoftmax output, or "
            "set predict_nonlinearity to the map from the module's output to probabilities."
        )
    if p_model.shape != zz.shape:
        raise _refuse_head(module, layer, (
            f"it has {z.shape[1]} output(s) but predict_proba has {p_model.shape[1]} columns"))
    ours = torch.softmax(zz.to(torch.float64), 1).to(p_model.device)
    diff = float((ours - p_model).abs().max())
    if diff > _proba_atol(z.dtype):
        raise _refuse_head(module, layer, (
            f"the softmax of its output differs from {_name(net)}.predict_proba by up to "
            f"{diff:.3g} on rows {rows[0]}:{rows[1]} (tolerance {_proba_atol(z.dtype):g}); "
            "is there a temperature, a scaling or another layer after it in forward?"))


def _check_overridden_predict_proba(net, X, n, logits, batch_size, transforms):
    """A subclass that overrides ``predict_proba``: compare with the real thing (one more pass)."""
    from ._rows import _take

    tol = _proba_atol(logits.dtype)
    ours = torch.softmax(_two_columns(logits).to(torch.float64), 1).numpy()
    modes = [(m, m.training) for m in net.module_.modules()]
    try:
        parts = [net.predict_proba(_apply(transforms, _take(X, start, min(start + batch_size, n))))
                 for start in range(0, n, batch_size)]
    finally:
        for m, training in modes:
            m.training = training
    for start, p in zip(range(0, n, batch_size), parts):
        stop = min(start + batch_size, n)
        p = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)
        p = np.asarray(p, dtype=np.float64)
        if p.shape != ours[start:stop].shape or np.abs(p - ours[start:stop]).max() > tol:
            raise EmbeddingNotSupportedError(
                f"{_name(net)}.predict_proba (overridden by {type(net).__name__}) differs from the "
                f"softmax of the last linear layer on rows {start}:{stop}; the layer found is "
                "not what your predict_proba uses. " + _DECLARE_HELP
            )


def _last_layer_from_capture(capture, module, X_shape):
    if capture.last is None:
        raise EmbeddingNotSupportedError(
            f"{_name(module)} ran no nn.Linear (or variational) layer, so it has no last linear "
            "layer and embedding='gradient' cannot be used. " + _GRADIENT_USERS
        )
    layer, h, z = capture.last
    if not isinstance(h, torch.Tensor) or h.ndim != 2 or z.ndim != 2:
        raise EmbeddingNotSupportedError(
            f"The last linear layer of {_name(module)} ({_name(layer)}) receives input of shape "
            f"{tuple(getattr(h, 'shape', ()))}; a (batch, features) input is needed for "
            "last-layer features. " + _GRADIENT_USERS
        )
    return layer, h, z


def _layer_has_bias(layer) -> bool:
    """``nn.Linear``: ``bias is not None``; other (variational) layers: a boolean ``has_bias`` /
    ``use_bias`` flag, else a non-None ``bias``, ``bias_mu``, ``bias_mean`` or ``bias_loc``."""
    if isinstance(layer, torch.nn.Linear):
        return layer.bias is not None
    for name in ("has_bias", "use_bias"):
        flag = getattr(layer, name, None)
        if isinstance(flag, bool):
            return flag
    for name in ("bias", "bias_mu", "bias_mean", "bias_loc"):
        if getattr(layer, name, None) is not None:
            return True
    return False


def _torch_last_layer(module, default_device, X, transforms, *, batch_size, device, progress,
                      classes, net=None):
    X, n = _prepare_X(X)
    X_user = X
    if not transforms:  # a float numpy pool: its chunks become views, not copies
        X = _pool_as_tensor(X)
    declared = _declared_last_layer(module) is not None
    batch_size = _check_batch_size(batch_size, n)
    dtype = _module_dtype(module)
    feats, logits = _RowStack(n, X), []
    layer0 = None
    embed = getattr(module, "embed", None)
    with _inference(module, _target_device(default_device, device)) as (dev, handles):
        capture = _Capture(module, handles)
        stage = _Staging(dtype, dev)  # chunks converted to the net's dtype
        with _progress(n, progress, "last layer", depth=2) as bar:
            for start, stop, chunk in _chunks(X, n, batch_size, bar):
                x = stage(_apply(transforms, chunk))
                capture.last = None
                out = _forward(module, x, _shape(x, n))
                layer, h, z = _last_layer_from_capture(capture, module, _shape(x, n))
                _check_head(module, net, layer, out, z, declared, (start, stop))
                if layer0 is None:
                    layer0 = layer
                    if classes is not None and len(classes) > _two_columns(z).shape[1]:
                        raise _refuse_head(module, layer, (
                            f"it has {z.shape[1]} output(s) but the net knows {len(classes)} "
                            "classes"))
                    if callable(embed) and isinstance(x, torch.Tensor):
                        e = embed(x)
                        if not (isinstance(e, torch.Tensor) and e.shape == h.shape
                                and torch.allclose(e, h, rtol=1e-4, atol=1e-5)):
                            warnings.warn(
                                f"{_name(module)}.embed(x) differs from the input of its last "
                                f"linear layer ({_name(layer)}); the layer's input is used as "
                                "the features.", UserWarning, stacklevel=3,
                            )
                elif layer is not layer0:
                    raise RuntimeError(
                        f"{_name(module)} ran a different last layer on rows {start}:{stop}; "
                        "the network must have a fixed last linear layer."
                    )
                feats.append(h.detach())
                logits.append(_two_columns(z.detach()).to("cpu"))
    features = feats.result()
    z = torch.cat(logits)
    if net is not None and _predict_proba_overridden(net):
        _check_overridden_predict_proba(net, X_user, n, z, batch_size, transforms)
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    return LastLayer(features=features, logits=z, bias=_layer_has_bias(layer0), classes=classes)
