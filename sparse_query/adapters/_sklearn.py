"""scikit-learn linear classifiers and ``MLPClassifier``: last-layer features and logits."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ._common import EmbeddingNotSupportedError, _name
from ._rows import _to_numpy, _two_columns
from ._sparse import _is_scipy_sparse, _sparse_linear_last_layer


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
    if _is_scipy_sparse(chunk):  # a sparse pool (TF-IDF, one-hot): keep the features sparse
        return _sparse_linear_last_layer(est, coef, chunk)
    ct = np.result_type(coef.dtype, np.float32)  # the logits' dtype
    x = _to_numpy(chunk)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(ct)
    _check_width(x, coef.shape[1], est)
    # the features are the pool's rows as they are (a float pool's own memory: no copy)
    z = x.astype(ct, copy=False) @ coef.T + np.asarray(est.intercept_, dtype=ct)
    return x, _two_columns(z), bool(getattr(est, "fit_intercept", True))


def _check_sklearn_proba(est, chunk, z, rows):
    """The invariant of the gradient embedding for scikit-learn models: ``softmax(z)`` of the
    logits we computed is ``est.predict_proba``. Multiclass one-vs-rest models (multiclass
    ``SGDClassifier``, ``LogisticRegression(multi_class="ovr")``) normalise per-class sigmoids
    instead, and models without ``predict_proba`` (``LinearSVC``, hinge ``SGDClassifier``,
    ``RidgeClassifier``, ``Perceptron``) define no probabilities at all: both are refused.

    Tolerance: both sides are the same float64 (or, for an MLP fitted on float32, float32)
    arithmetic on the same inputs; 1e-8 (1e-4 in float32) is far above their rounding and far
    below any real mismatch (a one-vs-rest model's differs by 1e-2 and more).
    """
    name = _name(est)
    if not hasattr(est, "predict_proba"):
        raise EmbeddingNotSupportedError(
            f"{name} has no predict_proba, so the class probabilities behind the gradient "
            "embedding would be made up from its decision function. Use LogisticRegression or "
            "SGDClassifier(loss='log_loss') (binary), wrap it in CalibratedClassifierCV and use "
            "a baseline (EntropySampling, MarginSampling), or an MLPClassifier."
        )
    p = np.asarray(est.predict_proba(chunk), dtype=np.float64)
    zz = np.asarray(z, dtype=np.float64)
    q = np.exp(zz - zz.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    atol = 1e-4 if np.asarray(z).dtype == np.float32 else 1e-8
    diff = float(np.abs(p - q).max()) if p.shape == q.shape else np.inf
    if diff > atol:
        raise EmbeddingNotSupportedError(
            f"The softmax of {name}'s decision function differs from its predict_proba by up to "
            f"{diff:.3g} on rows {rows[0]}:{rows[1]} (tolerance {atol:g}): a multiclass "
            "one-vs-rest model normalises per-class sigmoids, which is not a softmax over a last "
            "linear layer. Use LogisticRegression (multinomial by default), an MLPClassifier, "
            "or a baseline that uses predict_proba (EntropySampling, MarginSampling)."
        )
