"""scikit-learn linear classifiers and ``MLPClassifier``: last-layer features and logits."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ._common import EmbeddingNotSupportedError, _name, _to_numpy, _two_columns
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
    x = _to_numpy(chunk, np.result_type(coef.dtype, np.float32))
    _check_width(x, coef.shape[1], est)
    z = x @ coef.T + np.asarray(est.intercept_, dtype=x.dtype)
    return x, _two_columns(z), bool(getattr(est, "fit_intercept", True))
