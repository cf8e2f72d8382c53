"""Probabilities and the inputs a classifier's final step reads (``embedding="input-gradient"``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_int
from ._common import (
    EmbeddingNotSupportedError, _apply, _final_name, _is_committee, _name, _resolve, check_fitted,
    classes_of, unwrap_estimator,
)
from ._rows import _chunks, _prepare_X, _progress, _to_numpy
from ._torch import _torch_module

__all__ = ["PROBA_EPS", "ProbaInputs", "has_proba_inputs", "proba_inputs"]

#: Probabilities are raised to this before the log that makes the logits of ``ProbaInputs``.
PROBA_EPS = 1e-12


@dataclass
class ProbaInputs:
    """What a classifier with ``predict_proba`` reads and what it answers, on a pool.

    Attributes
    ----------
    inputs : ndarray of shape (n_samples, n_features) or scipy.sparse.csr_matrix
        The rows the final step reads (a pipeline's pool after every step but the last). A
        numeric 2-D numpy pool without transforms is returned itself (no copy); anything else
        as float32, sparse rows as CSR, a DataFrame's categorical columns one-hot.
    logits : torch.Tensor of shape (n_samples, n_classes), float64
        ``log(max(p, 1e-12))`` renormalised, so ``softmax(logits)`` is the model's own
        ``predict_proba`` within ``n_classes * 1e-12``.
    classes : ndarray of shape (n_classes,) or None
    """

    inputs: object
    logits: torch.Tensor
    classes: np.ndarray | None


def has_proba_inputs(estimator) -> bool:
    """Whether :func:`proba_inputs` can serve this (fitted) estimator: a scikit-learn style
    classifier (or pipeline ending in one) with ``predict_proba``; not a modAL Committee, a
    torch module or a skorch net (their last layer serves ``embedding="gradient"``)."""
    if _is_committee(estimator):
        return False
    _, est = _resolve(estimator)
    if isinstance(est, torch.nn.Module) or _torch_module(est) is not None:
        return False
    return hasattr(est, "predict_proba")


def _numeric_rows(x, n_rows):
    """One chunk of the final step's inputs as float32 numpy rows (CSR when sparse): a
    DataFrame's categorical columns become one indicator column per category."""
    if sp.issparse(x):
        return sp.csr_matrix(x, dtype=np.float32)
    if hasattr(x, "dtypes") and hasattr(x, "columns"):
        cats = [str(t) == "category" for t in x.dtypes]
        if any(cats):
            parts = []
            for name, is_cat in zip(x.columns, cats):
                col = x[name]
                if is_cat:
                    codes = np.asarray(col.cat.codes)
                    block = np.zeros((len(codes), len(col.cat.categories)), dtype=np.float32)
                    hit = codes >= 0  # a missing value (-1) has no indicator
                    block[np.flatnonzero(hit), codes[hit]] = 1.0
                    parts.append(block)
                else:
                    parts.append(_to_numpy(col.to_frame(), np.float32))
            return np.hstack(parts)
    return _to_numpy(x, np.float32).reshape(n_rows, -1)


def proba_inputs(estimator, X, *, batch_size: int = 1024, progress: bool = False,
                 rtol: float = 1e-8) -> ProbaInputs:
    """The model's own class probabilities and the inputs its final step reads, on a pool.

    For a ``Pipeline`` the inputs are ``pipeline[:-1].transform(X)`` and the probabilities
    the final step's ``predict_proba`` on them -- the pipeline's own ``predict_proba``, which
    is checked on the first chunk. A modAL ``ActiveLearner`` and a fitted search serve their
    estimator.

    Parameters
    ----------
    estimator : object
        A fitted classifier with ``predict_proba``, a pipeline ending in one, or a modAL
        ``ActiveLearner`` around either.
    X : array-like, DataFrame or scipy.sparse matrix of shape (n_samples, ...)
        The pool.
    batch_size : int, default=1024
        Rows per call to the model.
    progress : bool, default=False
        Show a tqdm progress bar.
    rtol : float, default=1e-8
        Tolerance of the check that the probabilities are the pipeline's ``predict_proba``
        (absolute, on probabilities).

    Returns
    -------
    ProbaInputs
        ``inputs``, ``logits`` (whose softmax is ``predict_proba``) and ``classes``.

    Raises
    ------
    EmbeddingNotSupportedError
        For a committee, a torch module or skorch net, a model without ``predict_proba``
        (named, also as a pipeline's final step), or probabilities whose rows are not
        probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.naive_bayes import GaussianNB
    >>> X = np.array([[0.], [1.], [2.], [3.]]); y = np.array([0, 0, 1, 1])
    >>> out = proba_inputs(GaussianNB().fit(X, y), X)
    >>> out.inputs is X, tuple(out.logits.shape)
    (True, (4, 2))
    """
    check_fitted(estimator)
    batch_size = check_int(batch_size, "batch_size", min_val=1)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False; got {progress!r}.")
    if _is_committee(estimator):
        raise EmbeddingNotSupportedError(
            "A modAL Committee has no single set of inputs and probabilities for "
            "embedding='input-gradient'; use embedding='committee-gradient' or 'posterior', "
            "or pass one of its members.")
    transforms, est = _resolve(estimator)
    who = _final_name(estimator)
    if isinstance(est, torch.nn.Module) or _torch_module(est) is not None:
        raise EmbeddingNotSupportedError(
            f"{who} is a torch model: embedding='input-gradient' serves scikit-learn "
            "classifiers with predict_proba. Use embedding='gradient' (its last nn.Linear).")
    if not hasattr(est, "predict_proba"):
        raise EmbeddingNotSupportedError(
            f"{who} has no predict_proba, so there are no class probabilities to embed. Fit it "
            "with probability=True (SVC / NuSVC), wrap it in CalibratedClassifierCV, or use a "
            "probabilistic classifier.")
    outer = unwrap_estimator(estimator)
    X, n = _prepare_X(X)
    own = (not transforms and isinstance(X, np.ndarray) and X.ndim == 2
           and X.dtype.kind in "fiub")
    xs, ps, tol = [], [], 1e-6
    with _progress(n, bool(progress), "probabilities") as bar:
        for start, stop, chunk in _chunks(X, n, batch_size, bar):
            x = _apply(transforms, chunk)
            p = np.asarray(est.predict_proba(x))
            if p.dtype.kind == "f":  # a float32 predict_proba (scikit-learn 1.9's GaussianNB
                # on a float32 pool) sums to 1 within some 1e-5; scores miss by far more
                tol = max(tol, 100 * float(np.finfo(p.dtype).eps))
            p = p.astype(np.float64, copy=False)
            if start == 0 and transforms:  # the pipeline's own answer, on the first chunk
                q = np.asarray(outer.predict_proba(chunk), dtype=np.float64)
                diff = float(np.abs(p - q).max()) if p.shape == q.shape else np.inf
                if diff > rtol:
                    raise EmbeddingNotSupportedError(
                        f"{_name(outer)}.predict_proba differs by up to {diff:.3g} from its final "
                        f"step {_name(est)}.predict_proba on the other steps' transform of the "
                        "pool; embedding='input-gradient' needs a pipeline whose predict_proba "
                        "is its final step's on pipeline[:-1].transform(X).")
            if not own:
                xs.append(_numeric_rows(x, stop - start))
            ps.append(p)
    p = np.concatenate(ps)
    if p.ndim != 2 or p.shape[0] != n:
        raise EmbeddingNotSupportedError(
            f"{who}.predict_proba returned shape {p.shape} for {n} rows; a single-output "
            "classifier returns (n_samples, n_classes).")
    if (not np.isfinite(p).all() or p.min() < -1e-9
            or np.abs(p.sum(axis=1) - 1.0).max() > tol):
        raise EmbeddingNotSupportedError(
            f"{who}.predict_proba returns rows that are not probabilities (values in "
            f"[{np.nanmin(p):.4g}, {np.nanmax(p):.4g}], row sums off 1 by up to "
            f"{np.nanmax(np.abs(p.sum(axis=1) - 1.0)):.3g}); embedding='input-gradient' needs "
            "the model's class probabilities.")
    q = np.maximum(p, PROBA_EPS)
    z = torch.from_numpy(np.log(q / q.sum(axis=1, keepdims=True)))
    if own:
        inputs = X
    elif sp.issparse(xs[0]):
        inputs = sp.vstack(xs, format="csr")
    else:
        inputs = np.concatenate(xs)
    classes = classes_of(estimator)
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    return ProbaInputs(inputs=inputs, logits=z, classes=classes)
