"""Learning-curve metrics: normalised AUC and mean ± std summaries over seeds."""
from __future__ import annotations

import numpy as np

__all__ = ["auc", "mean_std"]


def auc(labels, accuracy) -> float:
    """Trapezoidal area under accuracy vs. number of labels, divided by the label range.

    Reads like an accuracy: a constant curve at ``a`` has AUC ``a``.

    Parameters
    ----------
    labels : array-like of shape (n_rounds,)
        Number of labeled points at each evaluation, strictly increasing.
    accuracy : array-like of shape (n_rounds,)

    Returns
    -------
    float
        The normalised area; for a single evaluation, that accuracy.
    """
    x = np.asarray(labels, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"labels and accuracy must be 1-D of the same non-zero length; got "
                         f"shapes {x.shape} and {y.shape}.")
    if x.size == 1:
        return float(y[0])
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"labels={x.tolist()} must be strictly increasing.")
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
