"""Features, logits, probabilities and posterior draws from fitted estimators.

This module is the only place that knows what a skorch net, a scikit-learn pipeline, an
ensemble or a modAL learner looks like. Everything above it (embeddings, strategies) sees
numpy arrays and torch tensors.

What is found where (duck typing; skorch, modAL and tqdm are imported lazily, if at all):

- ``torch.nn.Module`` / skorch net: last layer = input and output of the last executed
  ``nn.Linear`` (or ``module.last_layer``); posterior draws = MC dropout with fixed masks, or
  a variational layer's weight samples.
- ``LogisticRegression``, ``SGDClassifier`` and other linear classifiers: last layer = ``X`` and
  ``coef_`` / ``intercept_``.
- ``MLPClassifier``: last layer = the last hidden activations and the output layer.
- ``Pipeline``: the final step's, on ``X`` transformed by the other steps.
- forests, bagging, soft voting, a modAL ``Committee``: posterior draws = the members.
- modAL ``ActiveLearner``: whatever its ``.estimator`` offers.

Every function that touches the pool works in chunks of ``batch_size`` rows, and every change
to a torch module (eval mode, hooks, device) is undone in ``finally``.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._utils import check_int, resolve_device, torch_generator

__all__ = [
    "EmbeddingNotSupportedError",
    "LastLayer",
    "unwrap_estimator",
    "get_labeled_data",
    "check_fitted",
    "classes_of",
    "predict_proba",
    "has_last_layer",
    "last_layer_outputs",
    "has_posterior",
    "posterior_probas",
    "logits_fn",
]

_LAST_LAYER_HELP = (
    "Use embedding='posterior' (its members are posterior draws), or a LogisticRegression / "
    "MLPClassifier / skorch net."
)
_GRADIENT_USERS = (
    "Use a LogisticRegression, SGDClassifier(loss='log_loss'), MLPClassifier, or a skorch net / "
    "torch module whose logits come from a final nn.Linear."
)
_POSTERIOR_HELP = (
    "Posterior draws come from ensembles (RandomForestClassifier, ExtraTreesClassifier, "
    "BaggingClassifier, soft VotingClassifier), a modAL Committee, or a skorch net / torch module "
    "with nn.Dropout layers (MC dropout) or a variational last layer (sparse_query.nn). "
    "Use embedding='gradient' for single models with a last linear layer."
)


class EmbeddingNotSupportedError(TypeError):
    """The estimator offers neither the features nor the posterior draws that were asked for.

    The message says what is needed and which estimators provide it.
    """


# ---------------------------------------------------------------------------------------------
# Recognising wrappers
# ---------------------------------------------------------------------------------------------
def _is_committee(obj) -> bool:
    return hasattr(obj, "learner_list") and isinstance(getattr(obj, "learner_list"), (list, tuple))


def _is_learner(obj) -> bool:
    return (not _is_committee(obj)) and hasattr(obj, "estimator") and hasattr(obj, "query_strategy")


def _is_skorch_net(obj) -> bool:
    cls = type(obj)
    return all(hasattr(cls, name) for name in ("initialize", "get_iterator", "infer")) and hasattr(
        obj, "module"
    )


def _is_pipeline(obj) -> bool:
    return hasattr(obj, "steps") and isinstance(getattr(obj, "steps"), list) and hasattr(
        obj, "__getitem__"
    )


def _name(obj) -> str:
    return type(obj).__name__


def unwrap_estimator(obj):
    """Return the estimator a modAL ``ActiveLearner`` wraps (recursively).

    Parameters
    ----------
    obj : object
        Any object with ``.estimator`` and ``.query_strategy`` (a modAL learner), or anything else.

    Returns
    -------
    estimator : object
        ``obj.estimator`` (unwrapped again while it is itself a learner). A modAL ``Committee`` and
        every other object are returned as they are: a committee's members are posterior draws.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LogisticRegression()
    >>> unwrap_estimator(clf) is clf
    True
    """
    seen = 0
    while _is_learner(obj) and seen < 16:
        obj = obj.estimator
        seen += 1
    return obj


def _resolve(estimator):
    """``(transforms, final)``: pipeline prefixes to apply to ``X``, then the final estimator."""
    transforms = []
    est = unwrap_estimator(estimator)
    for _ in range(16):
        if _is_pipeline(est):
            if len(est.steps) > 1:
                transforms.append(est[:-1])
            est = unwrap_estimator(est.steps[-1][1])
        else:
            break
    return transforms, est


def _apply(transforms, X):
    for t in transforms:
        X = t.transform(X)
    return X


def _members(committee):
    return [unwrap_estimator(m) for m in committee.learner_list]


# ---------------------------------------------------------------------------------------------
# Labeled data, fitted checks, classes
# ---------------------------------------------------------------------------------------------
def _concat(parts):
    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat(parts)
    if all(hasattr(p, "tocsr") for p in parts):
        import scipy.sparse as sp

        return sp.vstack(parts).tocsr()
    return np.concatenate([np.asarray(p) for p in parts])


def get_labeled_data(obj):
    """The labeled data a modAL learner or committee holds.

    Parameters
    ----------
    obj : object
        A modAL ``ActiveLearner`` (``X_training`` / ``y_training``), a modAL ``Committee`` (its own
        ``X_training`` when set, otherwise the union of its members' labeled data, duplicates
        removed for numeric arrays) or anything else.

    Returns
    -------
    X : array-like of shape (n_labeled, ...) or None
    y : array-like of shape (n_labeled,) or None
        ``(None, None)`` when ``obj`` holds no labeled data.
    """
    if _is_committee(obj):
        X, y = getattr(obj, "X_training", None), getattr(obj, "y_training", None)
        if X is not None and y is not None:
            return X, y
        Xs, ys = [], []
        for learner in obj.learner_list:
            Xi, yi = get_labeled_data(learner)
            if Xi is not None and yi is not None:
                Xs.append(Xi)
                ys.append(yi)
        if not Xs:
            return None, None
        X, y = _concat(Xs), _concat(ys)
        if isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and X.dtype != object:
            flat = X.reshape(X.shape[0], -1)
            key = np.concatenate([flat, y.reshape(y.shape[0], -1).astype(flat.dtype, copy=False)],
                                 axis=1) if np.issubdtype(y.dtype, np.number) else flat
            _, first = np.unique(key, axis=0, return_index=True)
            keep = np.sort(first)
            X, y = X[keep], y[keep]
        return X, y
    if _is_learner(obj):
        X, y = getattr(obj, "X_training", None), getattr(obj, "y_training", None)
        if X is None or y is None:
            return None, None
        return X, y
    return None, None


def check_fitted(estimator) -> None:
    """Raise ``NotFittedError`` when the (unwrapped) estimator is not fitted.

    scikit-learn estimators and pipelines use :func:`sklearn.utils.validation.check_is_fitted`;
    skorch nets raise skorch's ``NotInitializedError`` (a ``NotFittedError`` subclass) unless
    initialized; a committee checks every member; a plain ``torch.nn.Module`` always passes.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        With a message naming the estimator and telling to fit it first.
    """
    if _is_committee(estimator):
        if not estimator.learner_list:
            raise NotFittedError("The modAL Committee has no members; add fitted learners first.")
        for i, member in enumerate(_members(estimator)):
            try:
                check_fitted(member)
            except NotFittedError as err:
                raise type(err)(f"Committee member {i} is not fitted: {err}") from None
        return
    est = unwrap_estimator(estimator)
    if isinstance(est, torch.nn.Module):
        return
    if _is_skorch_net(est):
        if not getattr(est, "initialized_", False) or not hasattr(est, "module_"):
            from skorch.exceptions import NotInitializedError

            raise NotInitializedError(
                f"This {_name(est)} is not initialized yet; call 'fit' (or 'initialize') on it "
                "before querying."
            )
        return
    if not hasattr(est, "fit"):
        return
    try:
        check_is_fitted(est)
    except NotFittedError:
        raise NotFittedError(
            f"This {_name(est)} is not fitted yet; call 'fit' with the labeled data before "
            "querying (a modAL ActiveLearner fits it when given X_training / y_training)."
        ) from None


def classes_of(estimator):
    """The class labels in the column order of :func:`predict_proba`, or ``None`` if unknown.

    For a modAL ``Committee``: its ``classes_`` or the sorted union of the members' classes; for
    a plain torch module: ``None``. (:func:`last_layer_outputs` reports ``classes=None`` when a
    skorch net's module has more outputs than the classes it saw, e.g. a seed set missing a
    class, since the columns are then output indices.)

    Returns
    -------
    classes : ndarray of shape (n_classes,) or None
    """
    if _is_committee(estimator):
        classes = getattr(estimator, "classes_", None)
        if classes is not None:
            return np.asarray(classes)
        known = [classes_of(m) for m in _members(estimator)]
        known = [c for c in known if c is not None]
        return np.unique(np.concatenate(known)) if known else None
    est = unwrap_estimator(estimator)
    if isinstance(est, torch.nn.Module):
        return None
    try:
        classes = est.classes_
    except (AttributeError, NotFittedError):
        return None
    return None if classes is None else np.asarray(classes)


# ---------------------------------------------------------------------------------------------
# Chunking, conversion, progress
# ---------------------------------------------------------------------------------------------
def _num_rows(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X)


def _prepare_X(X, name="X"):
    if X is None:
        raise ValueError(f"{name} is None; pass the pool as an array-like.")
    if isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if hasattr(X, "tocsr") and not hasattr(X, "indptr"):  # coo & co: make it row-sliceable
        X = X.tocsr()
    n = _num_rows(X)
    if n == 0:
        raise ValueError(f"{name} is empty (0 rows); pass at least one sample.")
    return X, n


def _take(X, start, stop):
    if hasattr(X, "iloc"):
        return X.iloc[start:stop]
    return X[start:stop]


def _check_batch_size(batch_size, n):
    if batch_size is None:
        return max(n, 1)
    return check_int(batch_size, "batch_size", min_val=1)


@contextmanager
def _progress(total, enabled, desc, depth=1):
    """A tqdm bar, or None; ``depth`` is how many calls lie between the user and the caller."""
    bar = None
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("progress=True needs tqdm (pip install tqdm); continuing without a bar.",
                          UserWarning, stacklevel=3 + depth)
        else:
            bar = tqdm(total=total, desc=desc, leave=False)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _chunks(X, n, batch_size, bar):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield start, stop, _take(X, start, stop)
        if bar is not None:
            bar.update(stop - start)


def _to_numpy(chunk, dtype=None):
    if isinstance(chunk, torch.Tensor):
        chunk = chunk.detach().cpu().numpy()
    elif hasattr(chunk, "toarray"):
        chunk = chunk.toarray()
    elif hasattr(chunk, "to_numpy"):
        chunk = chunk.to_numpy()
    return np.asarray(chunk, dtype=dtype)


def _to_tensor(chunk, dtype, device):
    if not isinstance(chunk, torch.Tensor):
        chunk = torch.as_tensor(_to_numpy(chunk))
    if chunk.is_floating_point() and chunk.dtype != dtype:
        chunk = chunk.to(dtype)
    return chunk.to(device)


def _two_columns(z):
    """A single logit column (binary) becomes ``[0, z]``, so softmax gives ``[1 - s(z), s(z)]``."""
    if z.shape[-1] != 1:
        return z
    if isinstance(z, torch.Tensor):
        return torch.cat([torch.zeros_like(z), z], -1)
    return np.concatenate([np.zeros_like(z), z], axis=-1)


def _normalise(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    s[s <= 0] = 1.0
    return p / s


# ---------------------------------------------------------------------------------------------
# torch modules and skorch nets
# ---------------------------------------------------------------------------------------------
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


def _forward(module, x, X_shape):
    try:
        return module(x)
    except (RuntimeError, ValueError) as err:
        msg = str(err)
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
        cands = (z, torch.sigmoid(z), F.logsigmoid(z))
    else:
        cands = (z, torch.softmax(z, 1), torch.log_softmax(z, 1))
    return any(torch.allclose(out.to(c.dtype), c, rtol=1e-4, atol=1e-5) for c in cands)


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
                      classes):
    X, n = _prepare_X(X)
    batch_size = _check_batch_size(batch_size, n)
    dtype = _module_dtype(module)
    feats, logits = [], []
    layer0 = None
    embed = getattr(module, "embed", None)
    with _inference(module, _target_device(default_device, device)) as (dev, handles):
        capture = _Capture(module, handles)
        with _progress(n, progress, "last layer", depth=2) as bar:
            for start, stop, chunk in _chunks(X, n, batch_size, bar):
                x = _to_tensor(_apply(transforms, chunk), dtype, dev)
                capture.last = None
                out = _forward(module, x, (n,) + tuple(x.shape[1:]))
                layer, h, z = _last_layer_from_capture(capture, module, x.shape)
                if layer0 is None:
                    layer0 = layer
                    if not _head_ok(out, z):
                        warnings.warn(
                            f"The output of {_name(module)} is not the output of its last "
                            f"linear layer ({_name(layer)}) up to a softmax or log-softmax; the "
                            "logits are taken from that layer.", UserWarning, stacklevel=3,
                        )
                    if callable(embed):
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
                feats.append(h.detach().to("cpu"))
                logits.append(_two_columns(z.detach()).to("cpu"))
    features = torch.cat(feats)
    z = torch.cat(logits)
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    return LastLayer(features=features, logits=z, bias=_layer_has_bias(layer0), classes=classes)


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
                     batch_size, device, progress):
    variational = [m for m in module.modules() if _is_variational(m)]
    dropouts = _dropouts(module)
    if not variational and not dropouts:
        raise EmbeddingNotSupportedError(
            f"{_name(module)} has neither nn.Dropout layers with p > 0 nor a variational layer, "
            "so it has no posterior draws and embedding='posterior' cannot be used. "
            + _POSTERIOR_HELP
        )
    X, n = _prepare_X(X)
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
                shape = (n,) + tuple(x.shape[1:])
                if variational:
                    capture.last = None
                    _forward(module, x, shape)
                    layer, h, _ = _last_layer_from_capture(capture, module, x.shape)
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
                    probs = _draw_loop(module, x, shape, capture, draws, n_samples)
                probs = probs.detach().to("cpu")
                if out is None:
                    out = torch.empty((n_samples, n, probs.shape[-1]), dtype=probs.dtype)
                out[:, start:stop] = probs
    return out


def _draw_loop(module, x, shape, capture, draws, n_draws):
    probs = []
    for i in range(n_draws):
        draws.i = i
        draws.calls = {}
        capture.last = None
        _forward(module, x, shape)
        _, _, z = _last_layer_from_capture(capture, module, x.shape)
        probs.append(torch.softmax(_two_columns(z), 1))
    return torch.stack(probs)


# ---------------------------------------------------------------------------------------------
# scikit-learn linear models and MLPs
# ---------------------------------------------------------------------------------------------
def _is_sklearn_linear(est) -> bool:
    coef = getattr(est, "coef_", None)
    return (
        isinstance(coef, np.ndarray) and coef.ndim == 2 and hasattr(est, "intercept_")
        and hasattr(est, "classes_") and not hasattr(est, "coefs_")
    )


def _is_sklearn_mlp(est) -> bool:
    return (
        isinstance(getattr(est, "coefs_", None), list) and hasattr(est, "intercepts_")
        and hasattr(est, "out_activation_") and hasattr(est, "classes_")
    )


_ACTIVATIONS = {
    "identity": lambda a: a,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0),
}


def _check_width(chunk, d, est):
    if chunk.ndim != 2 or chunk.shape[1] != d:
        raise ValueError(
            f"X has rows of shape {chunk.shape[1:]} but {_name(est)} was fitted on {d} features; "
            "pass a pool with the same columns as the training data."
        )


def _sklearn_last_layer(est, chunk):
    """``(features, logits, bias)`` as numpy arrays for one chunk."""
    if _is_sklearn_mlp(est):
        dtype = est.coefs_[0].dtype
        h = _to_numpy(chunk, dtype)
        _check_width(h, est.coefs_[0].shape[0], est)
        act = _ACTIVATIONS.get(est.activation)
        if act is None:
            raise EmbeddingNotSupportedError(
                f"MLPClassifier(activation={est.activation!r}) is not supported; use 'identity', "
                "'logistic', 'tanh' or 'relu'."
            )
        for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
            h = act(h @ W + b)
        z = h @ est.coefs_[-1] + est.intercepts_[-1]
        if est.out_activation_ == "logistic" and z.shape[1] > 1:
            raise EmbeddingNotSupportedError(
                "A multi-label MLPClassifier has no softmax over classes, so its last layer "
                "cannot serve as class logits; fit it on single-label targets."
            )
        return h, _two_columns(z), True
    coef = np.asarray(est.coef_)
    x = _to_numpy(chunk, np.result_type(coef.dtype, np.float32))
    _check_width(x, coef.shape[1], est)
    z = x @ coef.T + np.asarray(est.intercept_, dtype=x.dtype)
    return x, _two_columns(z), bool(getattr(est, "fit_intercept", True))


# ---------------------------------------------------------------------------------------------
# Ensembles and committees
# ---------------------------------------------------------------------------------------------
def _index_space(est) -> bool:
    """True for ensembles that fit members on label indices ``0..K-1`` (not on the labels)."""
    from sklearn.ensemble import (
        BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier, VotingClassifier,
    )

    return isinstance(est, (RandomForestClassifier, ExtraTreesClassifier, BaggingClassifier,
                            VotingClassifier))


def _ensemble_members(est):
    members = getattr(est, "estimators_", None)
    if members is None or _is_committee(est):
        return None
    if isinstance(members, np.ndarray):
        members = list(members.ravel())
    if not isinstance(members, (list, tuple)) or len(members) == 0:
        return None
    if not all(hasattr(m, "predict_proba") for m in members):
        return None
    return list(members)


def _align(proba, member_classes, classes, index_space, who):
    """Put a member's columns into the parent's class order; unseen classes get probability 0."""
    proba = np.asarray(proba, dtype=np.float64)
    K = len(classes)
    if member_classes is None:
        if proba.shape[1] != K:
            raise ValueError(f"{who} gives {proba.shape[1]} columns but has no classes_ to align "
                             f"them with the {K} classes.")
        return proba
    member_classes = np.asarray(member_classes)
    if proba.shape[1] != len(member_classes):
        raise ValueError(f"{who}: predict_proba has {proba.shape[1]} columns but classes_ has "
                         f"{len(member_classes)} entries.")
    if not index_space:
        pos = {c: i for i, c in enumerate(classes.tolist())}
        if all(c in pos for c in member_classes.tolist()):
            cols = np.array([pos[c] for c in member_classes.tolist()], dtype=np.int64)
        else:
            index_space = True
    if index_space:
        idx = np.asarray(member_classes)
        ok = np.issubdtype(idx.dtype, np.number) and np.all(idx == np.round(idx)) and (
            idx.size == 0 or (idx.min() >= 0 and idx.max() < K))
        if not ok:
            raise ValueError(f"{who} has classes {member_classes!r} that are neither among the "
                             f"ensemble's classes {classes!r} nor indices into them.")
        cols = idx.astype(np.int64)
    if len(cols) == K and np.array_equal(cols, np.arange(K)):
        return proba
    full = np.zeros((proba.shape[0], K))
    full[:, cols] = proba
    return full


def _member_probas(est, chunk):
    """List of ``(n_chunk, K)`` aligned member probabilities of an ensemble or committee."""
    if _is_committee(est):
        classes = classes_of(est)
        out = []
        for i, m in enumerate(_members(est)):
            p = predict_proba(m, chunk)
            if classes is None:  # members without classes_ (torch modules): columns must agree
                if out and p.shape[1] != out[0].shape[1]:
                    raise ValueError(
                        f"Committee member {i} gives {p.shape[1]} classes and member 0 gives "
                        f"{out[0].shape[1]}, and they have no classes_ to align them by."
                    )
                out.append(p)
            else:
                out.append(_align(p, classes_of(m), classes, False, f"Committee member {i}"))
        return out
    members = _ensemble_members(est)
    classes = np.asarray(est.classes_)
    feats = getattr(est, "estimators_features_", None)
    x = chunk if not hasattr(chunk, "iloc") else chunk.to_numpy()
    index_space = _index_space(est)
    out = []
    for i, m in enumerate(members):
        xi = x if feats is None else x[:, feats[i]]
        p = m.predict_proba(xi)
        out.append(_align(p, getattr(m, "classes_", None), classes, index_space,
                          f"{_name(est)} member {i}"))
    return out


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def _skorch_input_dtype(est, module):
    """numpy float inputs to a bare skorch net are cast to its module's float dtype."""
    if module is None or not _is_skorch_net(est):
        return None
    return np.float64 if _module_dtype(module) == torch.float64 else np.float32


def predict_proba(estimator, X, *, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities of a fitted estimator on ``X``.

    Parameters
    ----------
    estimator : object
        A fitted classifier with ``predict_proba`` (scikit-learn estimator or pipeline, skorch
        net), a ``torch.nn.Module`` (softmax of its last linear layer's output), a modAL
        ``ActiveLearner`` (its estimator) or a modAL ``Committee`` (the mean of its members'
        probabilities, aligned on the union of their classes).
    X : array-like of shape (n_samples, ...)
        The pool.
    batch_size : int or None, default=None
        Rows per call to the estimator; ``None`` passes ``X`` whole (skorch batches by itself).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), float64
        Rows sum to 1; columns follow :func:`classes_of`.

    Raises
    ------
    EmbeddingNotSupportedError
        When the estimator has no ``predict_proba``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.], [1.], [2.], [3.]]); y = np.array([0, 0, 1, 1])
    >>> predict_proba(LogisticRegression().fit(X, y), X).shape
    (4, 2)
    """
    check_fitted(estimator)
    X, n = _prepare_X(X)
    bs = _check_batch_size(batch_size, n)
    if _is_committee(estimator):
        parts = [np.mean(_member_probas(estimator, chunk), axis=0)
                 for _, _, chunk in _chunks(X, n, bs, None)]
        return _normalise(np.concatenate(parts))
    est = unwrap_estimator(estimator)
    if isinstance(est, torch.nn.Module):
        z = last_layer_outputs(est, X, batch_size=bs).logits
        return _normalise(torch.softmax(z.to(torch.float64), 1).numpy())
    if not hasattr(est, "predict_proba"):
        raise EmbeddingNotSupportedError(
            f"{_name(est)} has no predict_proba, so class probabilities are not available. Fit "
            "it with probability=True (SVC / NuSVC), wrap it in CalibratedClassifierCV, or use a "
            "probabilistic classifier (LogisticRegression, RandomForestClassifier, a skorch net)."
        )
    tm = _torch_module(_resolve(est)[1])
    module = tm[0] if tm is not None else None
    modes = [(m, m.training) for m in module.modules()] if module is not None else []
    cast = _skorch_input_dtype(est, module)
    try:  # skorch leaves its module in eval mode after predicting: undo that
        parts = []
        for _, _, chunk in _chunks(X, n, bs, None):
            if (cast is not None and isinstance(chunk, np.ndarray)
                    and np.issubdtype(chunk.dtype, np.floating)):
                chunk = chunk.astype(cast, copy=False)
            try:
                parts.append(est.predict_proba(chunk))
            except (RuntimeError, ValueError) as err:
                if module is None or not any(w in str(err).lower() for w in _SHAPE_WORDS):
                    raise
                raise ValueError(
                    f"X has shape {tuple(getattr(X, 'shape', (n,)))} but the net cannot process "
                    f"it ({str(err).strip()}). The pool's feature shape must match what the net "
                    "was trained on."
                ) from err
    finally:
        for m, training in modes:
            m.training = training
    parts = [p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)
             for p in parts]
    return _normalise(np.concatenate(parts))


@dataclass
class LastLayer:
    """What the last linear layer of a model sees and produces on a pool.

    Attributes
    ----------
    features : torch.Tensor of shape (n_samples, n_features)
        The input of the last linear layer (CPU; float32, or float64 if the model is).
    logits : torch.Tensor of shape (n_samples, n_classes)
        Its output, ``features @ W.T + c``. A binary model with a single output column ``z``
        (scikit-learn's binary ``coef_``, a logistic MLP output, a 1-unit head) gets the two
        columns ``[0, z]``, so ``softmax(logits)`` is its class probability.
    bias : bool
        Whether the last layer has a bias ``c``.
    classes : ndarray of shape (n_classes,) or None
        The class labels of the logits' columns, when known.
    """

    features: torch.Tensor
    logits: torch.Tensor
    bias: bool
    classes: np.ndarray | None


def has_last_layer(estimator) -> bool:
    """Whether :func:`last_layer_outputs` can serve this (fitted) estimator.

    True for linear classifiers with ``coef_`` (``LogisticRegression``, ``SGDClassifier``...),
    ``MLPClassifier``, torch modules and initialized skorch nets containing an ``nn.Linear`` or a
    variational layer, and pipelines ending in one of those; False for ensembles, committees
    and probability-only estimators (``SVC``, ``KNeighborsClassifier``).
    """
    if _is_committee(estimator):
        return False
    _, est = _resolve(estimator)
    tm = _torch_module(est)
    if tm is not None:
        return any(isinstance(m, torch.nn.Linear) or _is_variational(m) for m in tm[0].modules())
    return _is_sklearn_linear(est) or _is_sklearn_mlp(est)


def _no_last_layer(est):
    if _is_committee(est) or _ensemble_members(est) is not None:
        what = "a modAL Committee" if _is_committee(est) else _name(est)
        return EmbeddingNotSupportedError(
            f"{what} has no last linear layer, so embedding='gradient' cannot be used. "
            + _LAST_LAYER_HELP
        )
    return EmbeddingNotSupportedError(
        f"{_name(est)} has no last linear layer, so embedding='gradient' cannot be used. "
        + _GRADIENT_USERS
    )


def last_layer_outputs(estimator, X, *, batch_size: int = 1024, device=None,
                       progress: bool = False) -> LastLayer:
    """Penultimate features and logits of a fitted model on a pool.

    For torch modules and skorch nets the features are the input of the last executed
    ``nn.Linear`` (or variational layer), captured with a forward hook, and the logits its
    output; inference runs in eval mode under ``torch.no_grad()`` on the net's device (or
    ``device``), chunk by chunk, and every submodule's train/eval mode, the device and the hooks
    are restored afterwards. If the module has an ``embed`` method it is checked against the
    hooked features (a warning if they differ). The module's output is expected to be these
    logits, or their softmax / log-softmax (a warning otherwise).

    For linear scikit-learn classifiers the features are ``X`` (as float) and the logits
    ``X @ coef_.T + intercept_``; their softmax is ``predict_proba`` for ``LogisticRegression``
    (binary, or multinomial multiclass) and binary ``SGDClassifier(loss='log_loss')``. One-vs-rest
    models (multiclass ``SGDClassifier``, ``LogisticRegression(multi_class='ovr')``) normalise
    per-class sigmoids instead; their logits are still the decision function, and embeddings use
    its softmax. For ``MLPClassifier`` the features are the last hidden layer's activations,
    recomputed from ``coefs_`` / ``intercepts_``. For a ``Pipeline``, ``X`` goes through every step
    but the last first.

    Parameters
    ----------
    estimator : object
        Fitted model (or modAL ``ActiveLearner`` / ``Pipeline`` around one).
    X : array-like or torch.Tensor of shape (n_samples, ...)
        The pool.
    batch_size : int, default=1024
        Rows per forward pass.
    device : str, torch.device or None, default=None
        Where torch inference runs; ``None`` is the net's own device. The module is moved there
        for the call and moved back afterwards.
    progress : bool, default=False
        Show a tqdm progress bar (warns and continues without one if tqdm is missing).

    Returns
    -------
    LastLayer
        ``features`` (n_samples, d), ``logits`` (n_samples, K), ``bias``, ``classes``.

    Raises
    ------
    EmbeddingNotSupportedError
        When the estimator has no last linear layer (ensembles, committees, ``SVC`` ...).
    sklearn.exceptions.NotFittedError
        When it is not fitted.
    ValueError
        When the pool's feature shape does not fit the model.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.], [1.], [2.], [3.]]); y = np.array([0, 0, 1, 1])
    >>> out = last_layer_outputs(LogisticRegression().fit(X, y), X)
    >>> tuple(out.features.shape), tuple(out.logits.shape), out.bias
    ((4, 1), (4, 2), True)
    """
    check_fitted(estimator)
    batch_size = check_int(batch_size, "batch_size", min_val=1)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False; got {progress!r}.")
    if _is_committee(estimator):
        raise _no_last_layer(estimator)
    transforms, est = _resolve(estimator)
    classes = classes_of(estimator)
    tm = _torch_module(est)
    if tm is not None:
        if not has_last_layer(est):
            raise _no_last_layer(est)
        return _torch_last_layer(tm[0], tm[1], X, transforms, batch_size=batch_size,
                                 device=device, progress=bool(progress), classes=classes)
    if not (_is_sklearn_linear(est) or _is_sklearn_mlp(est)):
        raise _no_last_layer(est)
    if device is not None:
        resolve_device(device)
    X, n = _prepare_X(X)
    feats, logits = [], []
    bias = True
    with _progress(n, bool(progress), "last layer") as bar:
        for _, _, chunk in _chunks(X, n, batch_size, bar):
            h, z, bias = _sklearn_last_layer(est, _apply(transforms, chunk))
            feats.append(torch.from_numpy(np.ascontiguousarray(h)))
            logits.append(torch.from_numpy(np.ascontiguousarray(z)))
    z = torch.cat(logits)
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    return LastLayer(features=torch.cat(feats), logits=z, bias=bias, classes=classes)


def logits_fn(estimator, X) -> np.ndarray:
    """``last_layer_outputs(estimator, X).logits`` as a numpy array of shape (n_samples, K).

    A convenience for temperature scaling, which needs logits of the labeled data.
    """
    return last_layer_outputs(estimator, X).logits.numpy()


def has_posterior(estimator) -> bool:
    """Whether :func:`posterior_probas` can serve this (fitted) estimator.

    True for a modAL ``Committee``, ensembles whose members have ``predict_proba`` (forests,
    bagging, soft voting), and torch modules / skorch nets with dropout layers (``p > 0``) or a
    variational layer (``is_variational = True`` and ``sample_parameters``); pipelines ending in
    one of those included.
    """
    if _is_committee(estimator):
        return len(estimator.learner_list) > 0
    _, est = _resolve(estimator)
    tm = _torch_module(est)
    if tm is not None:
        return bool(_dropouts(tm[0])) or any(_is_variational(m) for m in tm[0].modules())
    return _ensemble_members(est) is not None


def posterior_probas(estimator, X, *, n_samples: int = 20, random_state=None,
                     batch_size: int = 1024, device=None, progress: bool = False) -> torch.Tensor:
    """Class probabilities of posterior draws ``θ_1 … θ_M`` on every pool point.

    Where the draws come from:

    - **Ensembles** (forests, bagging, soft voting) and **modAL committees**: each member is one
      draw, so ``M`` is the number of members and ``n_samples`` / ``random_state`` are ignored.
      Members' columns are aligned to the ensemble's ``classes_`` (a member that never saw a
      class gives it probability 0); a committee aligns on the union of its members' classes.
    - **Variational layers** (``is_variational = True``, ``sample_parameters(M, generator)``): ``M``
      weight samples are drawn once from a generator on the layer's device seeded by
      ``random_state`` and applied to every chunk. Dropout layers stay off in this case.
    - **MC dropout** (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
      ``FeatureAlphaDropout`` with ``p > 0``): ``M`` forward passes with dropout active and
      everything else in eval mode, draw ``i`` using the same masks for every pool point (masks
      are drawn once from a generator seeded by ``random_state``). Dropout applied through
      ``torch.nn.functional.dropout(x, training=self.training)`` inside ``forward`` is not seen.

    Torch probabilities are the softmax of the last linear layer's output (see
    :func:`last_layer_outputs`). The model's modes, parameters, device and hooks are unchanged
    after the call; the global RNG is not used.

    Parameters
    ----------
    estimator : object
        A fitted model with posterior draws (see :func:`has_posterior`).
    X : array-like or torch.Tensor of shape (n_samples_pool, ...)
        The pool.
    n_samples : int, default=20
        Number of draws ``M`` for MC dropout and variational layers.
    random_state : None, int or numpy Generator, default=None
        Seeds the dropout masks / weight samples: the same seed gives the same draws.
    batch_size : int, default=1024
        Rows per forward pass; the draws do not depend on it.
    device : str, torch.device or None, default=None
        Where torch inference runs; ``None`` is the net's own device.
    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    probas : torch.Tensor of shape (M, n_samples_pool, n_classes), on the CPU
        float64 for scikit-learn members, the model's dtype for torch.

    Raises
    ------
    EmbeddingNotSupportedError
        When the estimator has no posterior draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.arange(8.).reshape(-1, 1); y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    >>> tuple(posterior_probas(rf, X).shape)
    (5, 8, 2)
    """
    check_fitted(estimator)
    n_samples = check_int(n_samples, "n_samples", min_val=1)
    batch_size = check_int(batch_size, "batch_size", min_val=1)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False; got {progress!r}.")
    if _is_committee(estimator):
        transforms, est = [], estimator
        if not estimator.learner_list:
            raise EmbeddingNotSupportedError("The modAL Committee has no members.")
    else:
        transforms, est = _resolve(estimator)
    tm = None if _is_committee(est) else _torch_module(est)
    if tm is not None:
        return _torch_posterior(tm[0], tm[1], X, transforms, n_samples=n_samples,
                                random_state=random_state, batch_size=batch_size, device=device,
                                progress=bool(progress))
    if not _is_committee(est) and _ensemble_members(est) is None:
        raise EmbeddingNotSupportedError(
            f"{_name(est)} has no posterior draws, so embedding='posterior' cannot be used. "
            + _POSTERIOR_HELP
        )
    if device is not None:
        resolve_device(device)
    X, n = _prepare_X(X)
    parts = []
    with _progress(n, bool(progress), "posterior draws") as bar:
        for _, _, chunk in _chunks(X, n, batch_size, bar):
            parts.append(np.stack(_member_probas(est, _apply(transforms, chunk))))
    return torch.from_numpy(np.concatenate(parts, axis=1))
