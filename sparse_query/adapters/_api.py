"""The public dispatch functions: probabilities, last-layer outputs, posterior draws."""
from __future__ import annotations

import numpy as np
import torch

from .._utils import check_int, resolve_device
from ._common import (
    _GRADIENT_USERS, _LAST_LAYER_HELP, _check_feature_names, _POSTERIOR_HELP,
    EmbeddingNotSupportedError, LastLayer, _apply, _is_committee, _is_skorch_net, _members, _name,
    _resolve, check_fitted, classes_of, unwrap_estimator,
)
from ._rows import _RowStack, _check_batch_size, _chunks, _normalise, _prepare_X, _progress
from ._dropout import cached_dropout_probas
from ._ensembles import _align, _column_labels, _ensemble_members, _index_space, _not_draws_reason
from ._sklearn import (
    _check_sklearn_proba, _is_sklearn_linear, _is_sklearn_mlp, _sklearn_last_layer,
)
from ._sparse import _cat_features, _is_scipy_sparse
from ._torch import (
    _SHAPE_WORDS, _as_probabilities, _proba_atol, _dropouts, _is_variational, _module_dtype, _torch_last_layer, _torch_module,
)
from ._torch_draws import _torch_posterior


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
    proba = np.concatenate(parts)
    if module is not None:
        proba = _net_probabilities(est, proba)
    return _normalise(proba)


def _net_probabilities(net, proba):
    """A net's ``predict_proba`` output as probabilities: log-probabilities (a ``LogSoftmax``
    module trained with ``NLLLoss``, where skorch applies no nonlinearity) are exponentiated;
    anything else that is not a probability table is refused rather than renormalised."""
    out = _as_probabilities(torch.from_numpy(np.ascontiguousarray(proba, dtype=np.float64)),
                            _proba_atol(torch.float32))
    if out is None:
        p = np.asarray(proba, dtype=np.float64)
        rng = f"values in [{p.min():.4g}, {p.max():.4g}]" if p.size else "no values"
        raise EmbeddingNotSupportedError(
            f"{_name(net)}.predict_proba returns {rng} whose rows are neither probabilities nor "
            "log-probabilities. Use criterion=torch.nn.CrossEntropyLoss on logits (skorch then "
            "applies a softmax), NLLLoss on a LogSoftmax output, or set predict_nonlinearity to "
            "the map from the module's output to probabilities."
        )
    return out.numpy()


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
                out.append(_align(p, _column_labels(m, p), classes, False,
                                  f"Committee member {i}"))
        return out
    members = _ensemble_members(est)
    classes = np.asarray(est.classes_)
    feats = getattr(est, "estimators_features_", None)
    _check_feature_names(est, chunk)  # members see numpy: scikit-learn's check would not run
    x = chunk if not hasattr(chunk, "iloc") else chunk.to_numpy()
    index_space = _index_space(est)
    out = []
    for i, m in enumerate(members):
        xi = x if feats is None else x[:, feats[i]]
        p = m.predict_proba(xi)
        out.append(_align(p, getattr(m, "classes_", None), classes, index_space,
                          f"{_name(est)} member {i}"))
    return out


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


def _why_not_draws(est) -> str:
    """``": <reason>"`` for estimators with members that are not posterior draws, else ``""``."""
    est = _resolve(est)[1] if not _is_committee(est) else est
    if getattr(est, "estimators_", None) is None or _is_committee(est):
        return ""
    reason = _not_draws_reason(est)
    return "" if reason is None else ": " + reason


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
    hooked features (a warning if they differ; the hooked input is used).

    The invariant behind every last-layer embedding is checked on every chunk: the softmax of
    the hooked logits must be the model's own class probability -- for a skorch net its
    ``predict_proba`` (skorch's ``predict_nonlinearity`` applied to the module's output, or the
    subclass's own ``predict_proba`` when it overrides it), within ``1e-4`` in float32
    (``1e-8`` in float64); for a plain module the output must be the logits or their
    (log-)softmax. A head that is not the model's head (a ``Parameter`` matrix after a hidden
    ``nn.Linear``, an auxiliary layer that runs after the class head, ``logits / T`` in
    ``forward``), a tuple output (unless ``module.last_layer`` declares the head) and a head
    narrower than the classes raise :class:`EmbeddingNotSupportedError`. Declare the head with
    ``module.last_layer = <the nn.Linear producing the class logits>``; with a tuple output the
    first element must be the class output (skorch's convention).

    For linear scikit-learn classifiers the features are ``X`` (as float) and the logits
    ``X @ coef_.T + intercept_``; a ``scipy.sparse`` ``X`` (or a pipeline whose last transform
    yields one, e.g. ``TfidfVectorizer``) gives ``features`` as a CSR matrix, never densified;
    their softmax is ``predict_proba`` for ``LogisticRegression``
    (binary, or multinomial multiclass) and binary ``SGDClassifier(loss='log_loss')``, and that
    is checked on every chunk: one-vs-rest models (multiclass ``SGDClassifier``,
    ``LogisticRegression(multi_class='ovr')``), which normalise per-class sigmoids, and models
    without ``predict_proba`` (``LinearSVC``, ``RidgeClassifier``, hinge ``SGDClassifier``) raise
    :class:`EmbeddingNotSupportedError`. A DataFrame pool must have the estimator's
    ``feature_names_in_`` in order. For ``MLPClassifier`` the features are the last hidden layer's activations,
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
        When the estimator has no last linear layer (ensembles, committees, ``SVC`` ...), when
        the layer found is not its class head (see above), or for a regressor.
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
                                 device=device, progress=bool(progress), classes=classes,
                                 net=est if _is_skorch_net(est) else None)
    if not (_is_sklearn_linear(est) or _is_sklearn_mlp(est)):
        raise _no_last_layer(est)
    if device is not None:
        resolve_device(device)
    X, n = _prepare_X(X)
    # dense features go into one (n, d) tensor as they come, or stay views of a float pool
    stack = _RowStack(n, None if transforms else X)
    sparse_feats, logits = [], []
    bias = True
    with _progress(n, bool(progress), "last layer") as bar:
        for start, stop, chunk in _chunks(X, n, batch_size, bar):
            chunk = _apply(transforms, chunk)
            _check_feature_names(est, chunk)  # we compute X @ coef_: do scikit-learn's check
            h, z, bias = _sklearn_last_layer(est, chunk)
            _check_sklearn_proba(est, chunk, z, (start, stop))
            if _is_scipy_sparse(h):
                sparse_feats.append(h)
            else:
                stack.append(torch.from_numpy(np.ascontiguousarray(h)))
            logits.append(torch.from_numpy(np.ascontiguousarray(z)))
    z = torch.cat(logits)
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    features = _cat_features(sparse_feats) if sparse_feats else stack.result()
    return LastLayer(features=features, logits=z, bias=bias, classes=classes)


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
        if not progress:  # one forward pass when dropout feeds the last layer (adapters._dropout)
            fast = cached_dropout_probas(estimator, X, n_samples=n_samples,
                                         random_state=random_state, batch_size=batch_size,
                                         device=device)
            if fast is not None:
                return fast
        return _torch_posterior(tm[0], tm[1], X, transforms, n_samples=n_samples,
                                random_state=random_state, batch_size=batch_size, device=device,
                                progress=bool(progress),
                                net=est if _is_skorch_net(est) else None)
    if not _is_committee(est) and _ensemble_members(est) is None:
        raise EmbeddingNotSupportedError(
            f"{_name(est)} has no posterior draws, so embedding='posterior' cannot be used"
            + _why_not_draws(est) + ". " + _POSTERIOR_HELP
        )
    if device is not None:
        resolve_device(device)
    X, n = _prepare_X(X)
    parts = []
    with _progress(n, bool(progress), "posterior draws") as bar:
        for _, _, chunk in _chunks(X, n, batch_size, bar):
            parts.append(np.stack(_member_probas(est, _apply(transforms, chunk))))
    return torch.from_numpy(np.concatenate(parts, axis=1))
