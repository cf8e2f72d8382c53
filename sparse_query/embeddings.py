"""Embeddings: the inputs ``e_j`` and ``sigma_j`` of the sparse-approximation problem (SPEC section 2).

Two kinds, both pure tensor maths (no estimators, except :func:`estimate_temperature`, which
only calls what it is handed):

* :func:`gradient_embedding` -- the non-Bayesian last-layer gradient embedding (paper eq. 14),
  returned in factored form ``e_j = a_j (outer) h_j``;
* :func:`posterior_embedding` -- the Bayesian embedding from loss samples over posterior
  draws (paper eq. 13).

Both use ``e_j = E_{y~P_j} g_j(y)`` and ``sigma_j = (1/n) E_{y~P_j} ||g_j(y) - e_j||`` with
exact sums over the ``K`` classes. :func:`fit_temperature` and :func:`estimate_temperature`
calibrate the label distribution ``P_j`` of the gradient embedding (Guo et al. 2017).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._utils import all_finite, check_float, check_int, numpy_rng, preserved_global_rng
from .problem import FactoredOperator

__all__ = [
    "GradientEmbedding",
    "PosteriorEmbedding",
    "gradient_embedding",
    "posterior_embedding",
    "fit_temperature",
    "estimate_temperature",
]

#: Temperature returned by :func:`estimate_temperature` when the labeled set is too small to
#: hold out a calibration split. SPEC section 2: on scikit-learn digits with logistic
#: regression, T = 0.1 (88.4-88.7) and the T -> 0 limit (88.4) beat T = 1 (85.6, below random).
DEFAULT_FALLBACK_TEMPERATURE = 0.1

#: Smallest labeled set :func:`estimate_temperature` will split for a held-out fit.
DEFAULT_MIN_SAMPLES = 50


# --------------------------------------------------------------------------------------------
# input conversion
# --------------------------------------------------------------------------------------------
def _as_float_tensor(x, name: str, ndim: int) -> torch.Tensor:
    """``x`` as a floating torch tensor with ``ndim`` dims; float64 stays float64, else float32."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array or torch tensor; got "
                            f"{type(x).__name__}.") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                        or arr.dtype == np.bool_):
            raise TypeError(f"{name} must be a numeric array or torch tensor; got dtype "
                            f"{arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued; got dtype {t.dtype}.")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    if t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {tuple(t.shape)}.")
    if t.numel() and not all_finite(t):
        bad = (~torch.isfinite(t)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(bad)}); "
                         "remove or impute those rows before querying.")
    return t


def _is_sparse(x) -> bool:
    """A scipy.sparse matrix or a torch sparse tensor (see :mod:`sparse_query.operators.sparse`)."""
    if isinstance(x, torch.Tensor):
        return x.layout in (torch.sparse_coo, torch.sparse_csr)
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _check_chunk_size(chunk_size) -> int:
    return check_int(chunk_size, "chunk_size", min_val=1)


# --------------------------------------------------------------------------------------------
# gradient embedding (paper eq. 14)
# --------------------------------------------------------------------------------------------
@dataclass
class GradientEmbedding:
    """Last-layer gradient embedding in factored form, ``e_j = a_j (outer) h_j``.

    Attributes
    ----------
    a : torch.Tensor of shape (n_samples, n_classes)
        ``p_j - P_j``: model probabilities minus the label distribution.
    h : torch.Tensor of shape (n_samples, n_features + 1) or (n_samples, n_features)
        ``[h_j, 1]`` (the 1 carries the bias gradient) or ``h_j`` when ``bias=False``.
    sigma : torch.Tensor of shape (n_samples,)
        ``(1/n) ||h_j|| sum_y P_j(y) ||P_j - onehot(y)||``, non-negative.
    probs : torch.Tensor of shape (n_samples, n_classes)
        The label distribution ``P_j``.
    temperature : float
        The temperature ``P_j`` was computed with (0 for the one-hot limit).
    ones_column : bool
        True when ``h`` is ``h_j`` itself and the embedding's constant bias column is implicit
        (``e_j = a_j (outer) [h_j, 1]``, what the sampler uses to avoid copying the features);
        False (the default of :func:`gradient_embedding`) when ``h`` already holds it.
    """

    a: torch.Tensor
    h: torch.Tensor
    sigma: torch.Tensor
    probs: torch.Tensor
    temperature: float
    ones_column: bool = False

    @property
    def n_samples(self) -> int:
        """Number of pool points ``n``."""
        return int(self.a.shape[0])

    @property
    def dim(self) -> int:
        """Dimension ``m = K * (d + 1)`` (or ``K * d``) of the embedding ``e_j``."""
        return int(self.a.shape[1] * (self.h.shape[1] + int(self.ones_column)))

    def dense(self) -> torch.Tensor:
        """Materialise ``e`` as an ``(n_samples, K * h.shape[1])`` matrix (tests, small pools only).

        Row-major flattening: ``e[j, k * h.shape[1] + l] = a[j, k] * h[j, l]``.
        """
        h = self.h
        if self.ones_column:
            h = torch.cat([h, torch.ones((h.shape[0], 1), dtype=h.dtype, device=h.device)], 1)
        return (self.a[:, :, None] * h[:, None, :]).reshape(self.a.shape[0], -1)

    def operator(self, **kw):
        """The :class:`~sparse_query.operators.FactoredOperator` of this embedding (the bias
        column kept implicit when ``ones_column``); the sparse subclass returns its CSR one."""
        return FactoredOperator(self.a, self.h, ones_column=self.ones_column, **kw)

    def to(self, device) -> "GradientEmbedding":
        """A copy with every tensor on ``device``."""
        return GradientEmbedding(self.a.to(device), self.h.to(device), self.sigma.to(device),
                                 self.probs.to(device), self.temperature, self.ones_column)


def _label_distribution(z: torch.Tensor, p: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(z / T)``; ``p`` itself at T = 1; ``onehot(argmax z)`` (lowest index on ties) at 0."""
    if temperature == 0.0:
        # torch.argmax returns the first maximal index, i.e. ties go to the lowest class.
        return torch.nn.functional.one_hot(z.argmax(dim=1), z.shape[1]).to(z.dtype)
    if temperature == 1.0:
        return p
    return torch.softmax(z / temperature, dim=1)


def _expected_onehot_distance(P: torch.Tensor) -> torch.Tensor:
    """``sum_y P(y) ||P - onehot(y)||`` per row, in O(K) per row and without cancellation.

    ``||P - e_y||^2 = (1 - P_y)^2 + sum_{k != y} P_k^2``. For ``y`` other than the row's top
    class ``m`` both terms are computed as written (``1 - P_y >= 1/2`` and the sum contains
    ``P_m^2 >= 1/K^2``, so nothing cancels). For ``y = m`` -- where ``P`` is nearly one-hot and
    ``1 - P_m`` would cancel -- both are summed from the other entries directly.
    """
    m = P.argmax(dim=1, keepdim=True)
    rest = P.scatter(1, m, 0.0)                         # P with its top entry zeroed
    sq_total = (P * P).sum(dim=1, keepdim=True)
    sq = (1.0 - P) ** 2 + (sq_total - P * P).clamp_min(0.0)
    sq_top = rest.sum(dim=1, keepdim=True) ** 2 + (rest * rest).sum(dim=1, keepdim=True)
    sq = sq.scatter(1, m, sq_top)
    return (P * sq.sqrt()).sum(dim=1)


def gradient_embedding(logits, features, *, temperature: float = 1.0, bias: bool = True,
                       chunk_size: int = 65536, _implicit_bias: bool = False) -> GradientEmbedding:
    """Expected last-layer cross-entropy gradients and their spread (paper eq. 14).

    For a model with penultimate features ``h_j``, logits ``z_j = W h_j + c`` and
    probabilities ``p_j = softmax(z_j)``, the gradient of the cross-entropy for label ``y``
    w.r.t. ``(W, c)`` is ``g_j(y) = (p_j - onehot(y)) (outer) [h_j, 1]``. With the label
    distribution ``P_j = softmax(z_j / T)``::

        e_j     = E_{y~P_j} g_j(y) = (p_j - P_j) (outer) [h_j, 1]
        sigma_j = (1/n) E_{y~P_j} ||g_j(y) - e_j||
                = (1/n) ||[h_j, 1]|| sum_y P_j(y) ||P_j - onehot(y)||

    ``e_j`` is returned factored (``a_j = p_j - P_j`` and ``h~_j = [h_j, 1]``), never as an
    ``n x K(d+1)`` matrix.

    The two limits of the temperature:

    * ``T = 1``: ``P_j = p_j``, so every ``e_j = 0`` and only ``sigma`` is informative -- the
      method reduces to pure uncertainty sampling (top-``b`` by ``sigma``);
    * ``T -> 0`` (``temperature=0``): ``P_j = onehot(argmax p_j)``, so ``e_j`` is BADGE's
      embedding ``(p_j - onehot(yhat_j)) (outer) h~_j`` and ``sigma_j = 0`` -- pure
      representation.

    Parameters
    ----------
    logits : torch.Tensor or ndarray of shape (n_samples, n_classes)
        The model's last-layer outputs ``z_j`` (before the softmax), ``n_classes >= 2``.
    features : torch.Tensor, ndarray or sparse matrix of shape (n_samples, n_features)
        The inputs ``h_j`` of the last linear layer. A ``scipy.sparse`` matrix (or a torch
        sparse tensor) stays sparse: the result is a
        :class:`~sparse_query.embeddings_sparse.SparseGradientEmbedding` whose ``h`` is CSR
        (the bias column appended as explicit entries), and
        ``sparse_query.operators.sparse.factored_operator(emb.a, emb.h)`` (or
        ``SparseApproxProblem((emb.a, emb.h), ...)``) solves on it without densifying.
    temperature : float, default=1.0
        ``T >= 0`` used for ``P_j`` only (``p_j`` is always the model's own softmax).
        ``0`` means the one-hot limit (ties go to the lowest class index). Resolve
        ``"auto"`` with :func:`estimate_temperature` before calling.
    bias : bool, default=True
        Whether the last layer has a bias; if so ``h~_j = [h_j, 1]``, else ``h~_j = h_j``.
    chunk_size : int, default=65536
        Rows processed at once; bounds the temporary memory.

    Returns
    -------
    GradientEmbedding
        ``a (n, K)``, ``h (n, d+1)``, ``sigma (n,)``, ``probs (n, K)``. float64 when the
        inputs are float64 (either of them), float32 otherwise, on the inputs' device.

    Examples
    --------
    >>> import torch
    >>> from sparse_query.embeddings import gradient_embedding
    >>> emb = gradient_embedding(torch.randn(5, 3), torch.randn(5, 4), temperature=0.1)
    >>> emb.a.shape, emb.h.shape, emb.sigma.shape, emb.dense().shape
    (torch.Size([5, 3]), torch.Size([5, 5]), torch.Size([5]), torch.Size([5, 15]))
    """
    if isinstance(temperature, str):
        raise TypeError(f"temperature={temperature!r} must be a number >= 0 here; resolve "
                        "'auto' with sparse_query.embeddings.estimate_temperature first.")
    temperature = check_float(temperature, "temperature", min_val=0.0)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}.")
    chunk_size = _check_chunk_size(chunk_size)
    z = _as_float_tensor(logits, "logits", 2)
    if _is_sparse(features):  # wide sparse features: keep H sparse (embeddings.gradient_sparse)
        if z.shape[0] == 0:
            raise ValueError("logits has no rows; the pool must hold at least one sample.")
        if z.shape[1] < 2:
            raise ValueError(f"logits has {z.shape[1]} column(s); need n_classes >= 2.")
        from .embeddings_sparse import _sparse_gradient_embedding

        return _sparse_gradient_embedding(z, features, float(temperature), bool(bias),
                                          chunk_size)
    h = _as_float_tensor(features, "features", 2)
    n, K = z.shape
    if n == 0:
        raise ValueError("logits has no rows; the pool must hold at least one sample.")
    if h.shape[0] != n:
        raise ValueError(f"features has {h.shape[0]} rows but logits has {n}; both must "
                         "describe the same pool points, in the same order.")
    if K < 2:
        raise ValueError(f"logits has {K} column(s); need n_classes >= 2. For a binary model "
                         "with a single logit s, pass torch.stack([-s / 2, s / 2], 1) or [0, s].")
    if h.device != z.device:
        raise ValueError(f"logits is on {z.device} but features on {h.device}; move them to "
                         "the same device.")
    dtype = torch.float64 if torch.float64 in (z.dtype, h.dtype) else torch.float32
    z, h = z.to(dtype), h.to(dtype)
    return _gradient_embedding(z, h, float(temperature), bool(bias), chunk_size,
                               implicit_bias=bool(_implicit_bias))


def _gradient_embedding(z: torch.Tensor, h: torch.Tensor, temperature: float, bias: bool,
                        chunk_size: int, implicit_bias: bool = False) -> GradientEmbedding:
    """Unchecked core of :func:`gradient_embedding` (same-dtype, same-device, finite inputs).

    ``implicit_bias=True`` (with ``bias``) returns ``h`` itself, no ``n x (d + 1)`` copy, and
    marks the bias column implicit (``GradientEmbedding.ones_column``)."""
    n = z.shape[0]
    implicit = bool(bias and implicit_bias)
    a, P_out, dist = _class_factors(z, temperature, chunk_size)
    if implicit:
        h_out = h
    else:
        h_out = torch.empty((n, h.shape[1] + (1 if bias else 0)), dtype=z.dtype, device=z.device)
    sigma = torch.empty((n,), dtype=z.dtype, device=z.device)
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        if implicit:
            norm = torch.sqrt((h[sl] * h[sl]).sum(dim=1) + 1.0)
        else:
            hc = h_out[sl]
            hc[:, : h.shape[1]] = h[sl]
            if bias:
                hc[:, -1] = 1.0
            norm = torch.linalg.vector_norm(hc, dim=1)
        sigma[sl] = norm * dist[sl] / n
    return GradientEmbedding(a=a, h=h_out, sigma=sigma, probs=P_out, temperature=temperature,
                             ones_column=implicit)


def _class_factors(z: torch.Tensor, temperature: float, chunk_size: int):
    """The class side of the gradient embedding, in chunks of rows: ``a = p - P``, the label
    distribution ``P`` and ``E_{y~P} ||P - onehot(y)||`` (n,). Shared by the dense and the sparse
    (``embeddings_sparse``) embeddings, which differ only in ``h``."""
    n, K = z.shape
    a = torch.empty((n, K), dtype=z.dtype, device=z.device)
    P_out = torch.empty((n, K), dtype=z.dtype, device=z.device)
    dist = torch.empty((n,), dtype=z.dtype, device=z.device)
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        zc = z[sl]
        p = torch.softmax(zc, dim=1)
        P = _label_distribution(zc, p, temperature)
        a[sl] = p - P
        P_out[sl] = P
        dist[sl] = _expected_onehot_distance(P)
    return a, P_out, dist


# --------------------------------------------------------------------------------------------
# posterior embedding (paper eq. 13)
# --------------------------------------------------------------------------------------------
@dataclass
class PosteriorEmbedding:
    """Bayesian embedding from losses over posterior draws (dense, ``m = M`` draws).

    Attributes
    ----------
    e : torch.Tensor of shape (n_samples, n_draws)
        ``e_j = E_{y~P_j} g_j(y)`` with ``g_j(y) = (1/sqrt(M)) [l_ij(y) - mean_i' l_i'j(y)]_i``
        and ``l_ij(y) = -log p_ij(y)``.
    sigma : torch.Tensor of shape (n_samples,)
        ``(1/n) E_{y~P_j} ||g_j(y) - e_j||``, non-negative.
    probs : torch.Tensor of shape (n_samples, n_classes)
        The predictive mean ``P_j = (1/M) sum_i p_ij``.
    """

    e: torch.Tensor
    sigma: torch.Tensor
    probs: torch.Tensor

    @property
    def n_samples(self) -> int:
        """Number of pool points ``n``."""
        return int(self.e.shape[0])

    @property
    def dim(self) -> int:
        """Dimension ``m = M`` of the embedding ``e_j``."""
        return int(self.e.shape[1])

    def dense(self) -> torch.Tensor:
        """``e`` itself, ``(n_samples, n_draws)`` (same interface as :class:`GradientEmbedding`)."""
        return self.e

    def to(self, device) -> "PosteriorEmbedding":
        """A copy with every tensor on ``device``."""
        return PosteriorEmbedding(self.e.to(device), self.sigma.to(device), self.probs.to(device))


def posterior_embedding(probs, *, eps: float = 1e-12, chunk_size: int = 4096,
                        atol: float = 1e-3) -> PosteriorEmbedding:
    """Expected centred losses over posterior draws and their spread (paper eq. 13).

    With ``p_ij`` the class probabilities of posterior draw ``i`` on pool point ``j`` and
    ``l_ij(y) = -log max(p_ij(y), eps)``::

        g_j(y)  = (1/sqrt(M)) [l_ij(y) - (1/M) sum_i' l_i'j(y)]_{i=1..M}      (in R^M)
        P_j     = (1/M) sum_i p_ij                                          (predictive mean)
        e_j     = sum_y P_j(y) g_j(y)
        sigma_j = (1/n) sum_y P_j(y) ||g_j(y) - e_j||

    Expectations are exact sums over the ``K`` classes.

    Parameters
    ----------
    probs : torch.Tensor or ndarray of shape (n_draws, n_samples, n_classes)
        Softmax outputs of ``M`` posterior draws (MC-dropout passes with masks fixed across
        the pool, ensemble or committee members, variational samples) on the pool.
    eps : float, default=1e-12
        Probabilities are raised to ``eps`` before the log, so one loss is at most
        ``-log(eps)`` (27.6 nats at the default). A softmax in float32 that underflows
        returns exact zeros (``-log 0 = inf``); the clamp keeps those finite while staying
        far below any probability a model means (``1e-12``). Larger values (``1e-6``) damp
        the influence of draws that are confidently wrong.
    chunk_size : int, default=4096
        Pool points processed at once; temporary memory is ``O(M * chunk_size * K)``.
    atol : float, default=1e-3
        Tolerance on ``0 <= p <= 1`` and on each row summing to 1.

    Returns
    -------
    PosteriorEmbedding
        ``e (n, M)``, ``sigma (n,)``, ``probs (n, K)``; float64 for float64 input, float32
        otherwise, on the input's device. With ``M = 1`` there is no spread over draws: ``e``
        and ``sigma`` are all zero (with a warning).

    Examples
    --------
    >>> import torch
    >>> from sparse_query.embeddings import posterior_embedding
    >>> draws = torch.softmax(torch.randn(8, 5, 3), dim=-1)      # M=8 draws, n=5, K=3
    >>> emb = posterior_embedding(draws)
    >>> emb.e.shape, emb.sigma.shape, emb.probs.shape
    (torch.Size([5, 8]), torch.Size([5]), torch.Size([5, 3]))
    """
    eps = check_float(eps, "eps", min_val=0.0, max_val=1.0, min_inclusive=False)
    atol = check_float(atol, "atol", min_val=0.0)
    chunk_size = _check_chunk_size(chunk_size)
    p = probs.detach() if isinstance(probs, torch.Tensor) else probs
    if isinstance(p, torch.Tensor) and p.dim() == 2 or (not isinstance(p, torch.Tensor)
                                                         and np.ndim(p) == 2):
        shape = tuple(p.shape) if hasattr(p, "shape") else np.shape(p)
        raise ValueError(f"probs has shape {shape}; need (n_draws, n_samples, n_classes). For a "
                         "single draw pass probs[None]; for a list of draws stack them on axis 0.")
    p = _as_float_tensor(p, "probs", 3)
    M, n, K = p.shape
    if M == 0 or n == 0:
        raise ValueError(f"probs has shape {tuple(p.shape)}; need at least one draw and one "
                         "pool point.")
    if K < 2:
        raise ValueError(f"probs has {K} class column(s); need n_classes >= 2. For a binary "
                         "model with P(y=1) = q, pass torch.stack([1 - q, q], -1).")
    lo, hi = float(p.min()), float(p.max())
    if lo < -atol or hi > 1.0 + atol:
        raise ValueError(f"probs must hold probabilities in [0, 1]; found values in "
                         f"[{lo:.4g}, {hi:.4g}]. Pass softmax outputs (predict_proba), not logits.")
    dev = (p.sum(dim=2) - 1.0).abs()
    worst = float(dev.max())
    if worst > atol:
        i, j = np.unravel_index(int(dev.argmax()), (M, n))
        raise ValueError(f"probs rows must sum to 1 over the class axis (last); draw {i}, point "
                         f"{j} sums to {float(p[i, j].sum()):.4g}. Pass softmax outputs with "
                         "shape (n_draws, n_samples, n_classes).")
    if M == 1:
        warnings.warn("probs holds a single posterior draw (n_draws=1): the losses do not vary "
                      "over draws, so the embedding and sigma are all zero. Use several draws "
                      "(MC dropout, an ensemble, a committee, variational samples).",
                      UserWarning, stacklevel=2)
    return _posterior_embedding(p, eps, chunk_size)


def _posterior_embedding(p: torch.Tensor, eps: float, chunk_size: int) -> PosteriorEmbedding:
    """Unchecked core of :func:`posterior_embedding`; ``p`` is (M, n, K), finite, valid."""
    M, n, K = p.shape
    e = torch.empty((n, M), dtype=p.dtype, device=p.device)
    sigma = torch.empty((n,), dtype=p.dtype, device=p.device)
    P_out = torch.empty((n, K), dtype=p.dtype, device=p.device)
    scale = 1.0 / math.sqrt(M)
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        pc = p[:, sl]                                     # (M, c, K)
        P = pc.mean(dim=0)                                # (c, K)
        loss = -torch.log(pc.clamp_min(eps))              # (M, c, K)
        g = (loss - loss.mean(dim=0, keepdim=True)) * scale
        ec = torch.einsum("mck,ck->cm", g, P)             # (c, M)
        dist = torch.linalg.vector_norm(g - ec.T[:, :, None], dim=0)   # (c, K)
        e[sl] = ec
        sigma[sl] = (P * dist).sum(dim=1) / n
        P_out[sl] = P
    return PosteriorEmbedding(e=e, sigma=sigma, probs=P_out)


# --------------------------------------------------------------------------------------------
# temperature scaling (Guo et al. 2017)
# --------------------------------------------------------------------------------------------
def _check_bounds(bounds) -> tuple[float, float]:
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ValueError(f"bounds={bounds!r} must be a pair (low, high) with 0 < low < high.") \
            from None
    lo = check_float(lo, "bounds[0]", min_val=0.0, min_inclusive=False)
    hi = check_float(hi, "bounds[1]", min_val=0.0, min_inclusive=False)
    if not lo < hi:
        raise ValueError(f"bounds={bounds!r} must satisfy low < high (e.g. (0.05, 20.0)).")
    return lo, hi


def _fit_temperature(z: torch.Tensor, y: torch.Tensor, lo: float, hi: float) -> tuple[float, bool]:
    """Minimise mean NLL of softmax(z / T) over log T in [log lo, log hi]; (T, at_bound)."""
    from scipy.optimize import minimize_scalar

    z = z.to(torch.float64)
    y = y.to(torch.int64)

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z / math.exp(log_t), y))

    res = minimize_scalar(nll, bounds=(math.log(lo), math.log(hi)), method="bounded",
                          options={"xatol": 1e-6})
    log_t = float(res.x)
    # The bounded method never evaluates the end points exactly; check them explicitly.
    candidates = [(nll(log_t), log_t), (nll(math.log(lo)), math.log(lo)),
                  (nll(math.log(hi)), math.log(hi))]
    best = min(candidates, key=lambda c: c[0])[1]
    t = math.exp(best)
    at_bound = abs(best - math.log(lo)) < 1e-3 or abs(best - math.log(hi)) < 1e-3
    return float(min(max(t, lo), hi)), at_bound


def _check_labels(y, n: int, K: int, name: str = "y") -> torch.Tensor:
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (integer class indices); got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} labels but logits has {n} rows.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class indices 0..{K - 1}; got "
                             "non-integer values.")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer class indices 0..{K - 1}; got dtype "
                         f"{arr.dtype}. Map labels to column indices (e.g. via classes_).")
    if arr.size and (arr.min() < 0 or arr.max() >= K):
        raise ValueError(f"{name} holds values in [{arr.min()}, {arr.max()}]; class indices must "
                         f"be in [0, {K - 1}] (one per logits column).")
    return torch.from_numpy(arr.astype(np.int64))


def fit_temperature(logits, y, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature scaling: the ``T`` minimising the mean NLL of ``softmax(logits / T)`` on ``y``.

    A deterministic bounded 1-D minimisation over ``log T`` (scipy's ``minimize_scalar``),
    with the end points of ``bounds`` checked explicitly.

    Parameters
    ----------
    logits : torch.Tensor or ndarray of shape (n_samples, n_classes)
        Held-out logits, ``n_classes >= 2``.
    y : array-like of shape (n_samples,)
        Integer class indices in ``[0, n_classes)`` (columns of ``logits``).
    bounds : (float, float), default=(0.05, 20.0)
        ``0 < low < high``; the answer is clipped to this range.

    Returns
    -------
    float
        The fitted temperature. When the optimum lies on a bound (e.g. a held-out set the
        model classifies perfectly drives ``T`` to ``low``) it warns and returns the bound.

    Examples
    --------
    >>> import torch
    >>> from sparse_query.embeddings import fit_temperature
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    >>> round(fit_temperature(z, [0, 1, 1, 0]), 2) > 1.0   # one mistake in four: soften
    True
    """
    lo, hi = _check_bounds(bounds)
    z = _as_float_tensor(logits, "logits", 2)
    n, K = z.shape
    if n == 0:
        raise ValueError("logits has no rows; need at least one labeled sample to fit T.")
    if K < 2:
        raise ValueError(f"logits has {K} column(s); need n_classes >= 2.")
    yt = _check_labels(y, n, K)
    t, at_bound = _fit_temperature(z.cpu(), yt, lo, hi)
    if at_bound:
        warnings.warn(f"the fitted temperature {t:.4g} lies on bounds={(lo, hi)}; the NLL keeps "
                      "decreasing past it (e.g. the held-out set is classified perfectly). "
                      "Widen bounds or use more held-out data.", UserWarning, stacklevel=2)
    return t


def _take(X, idx: np.ndarray):
    """Rows ``idx`` of an array-like (numpy, torch, pandas, scipy sparse, list)."""
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(idx, dtype=torch.long, device=X.device)]
    if hasattr(X, "shape") and hasattr(X, "__getitem__"):
        return X[idx]
    return [X[int(i)] for i in idx]


def _len(X) -> int:
    if hasattr(X, "shape") and len(X.shape) > 0:
        return int(X.shape[0])
    return len(X)


def _labels_to_columns(y, classes) -> tuple[np.ndarray, np.ndarray]:
    """Column index of each label in ``classes``; (indices, mask of labels that were found)."""
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    lookup = {}
    for i, c in enumerate(np.asarray(classes).tolist()):
        lookup.setdefault(c, i)
    cols = np.array([lookup.get(v, -1) for v in y.tolist()], dtype=np.int64)
    return cols, cols >= 0


def _logits_and_columns(estimator, X, y, logits_fn, n_classes_hint=None):
    """Logits of ``estimator`` on ``X`` and the labels ``y`` as logits columns (unseen dropped)."""
    z = logits_fn(estimator, X)
    z = _as_float_tensor(z, "logits_fn(estimator, X)", 2).cpu()
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        classes = np.arange(z.shape[1])
    if len(classes) != z.shape[1]:
        raise ValueError(f"logits_fn returned {z.shape[1]} columns but the estimator has "
                         f"{len(classes)} classes_; the columns must follow classes_.")
    cols, found = _labels_to_columns(y, classes)
    return z[torch.from_numpy(found)], torch.from_numpy(cols[found])


def estimate_temperature(estimator, X_labeled, y_labeled, *,
                         logits_fn: Callable, validation=None, test_size: float = 0.3,
                         min_samples: int = DEFAULT_MIN_SAMPLES,
                         fallback: float = DEFAULT_FALLBACK_TEMPERATURE,
                         bounds: tuple[float, float] = (0.05, 20.0),
                         random_state=None) -> tuple[float, str]:
    """The ``"auto"`` temperature: temperature scaling on held-out labeled data.

    * ``validation=(X_val, y_val)`` given: fit ``T`` on the (fitted) ``estimator``'s logits on
      ``X_val`` -- source ``"validation"``.
    * otherwise: clone the estimator (``sklearn.base.clone``), fit the clone on a stratified
      split of the labeled set (``1 - test_size`` of it), and fit ``T`` on the clone's logits
      on the held-out part -- source ``"held-out"``. The clone is fitted with the global
      random generators (Python, numpy, torch) seeded from ``random_state`` and restored
      afterwards: the caller's global random state is unchanged.
    * when that is impossible -- fewer than ``min_samples`` labeled points, a class with fewer
      than 2 members, a split too small to hold every class, a clone that cannot be fitted, or
      no usable held-out label -- return ``(fallback, "fallback: <reason>")`` without error.

    Labels are mapped to logits columns through the estimator's ``classes_`` (held-out labels
    the model has no column for are dropped); an estimator without ``classes_`` must have
    labels ``0..K-1``.

    Parameters
    ----------
    estimator : object
        A classifier; fitted for the validation path, clonable for the held-out path.
    X_labeled : array-like of shape (n_labeled, ...)
        Labeled inputs (numpy, torch, pandas, list).
    y_labeled : array-like of shape (n_labeled,)
        Their labels (any hashable class labels).
    logits_fn : callable ``(estimator, X) -> (n, K)`` logits
        Supplied by :mod:`sparse_query.adapters`; this function knows nothing of skorch.
    validation : (X_val, y_val) or None, default=None
        Separate labeled data to fit ``T`` on with ``estimator`` itself.
    test_size : float, default=0.3
        Fraction of the labeled set held out, in ``(0, 1)``.
    min_samples : int, default=50
        Smallest labeled set that is split. Measured on digits with logistic regression
        (8 random labeled sets per size): with 20-30 points a stratified 0.3 split is
        impossible in most draws anyway (classes with < 2 members); from 50 points on the
        held-out ``T`` is within 15-20% (median) of ``T`` fitted on the 1,700 unlabeled
        digits, though single draws still miss by up to 2x.
    fallback : float, default=0.1
        Temperature (``>= 0``) returned when no fit is possible. SPEC section 2 measured
        ``T = 0.1`` (and the ``T -> 0`` limit) best on digits with logistic regression,
        ``T = 1`` worst.
    bounds : (float, float), default=(0.05, 20.0)
        Search range of :func:`fit_temperature`.
    random_state : None, int or numpy Generator, default=None
        Seeds the stratified split; never the global seed.

    Returns
    -------
    (float, str)
        The temperature and where it came from: ``"validation"``, ``"held-out"`` or
        ``"fallback: <reason>"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sparse_query.embeddings import estimate_temperature
    >>> X, y = np.random.default_rng(0).normal(size=(10, 2)), np.arange(10) % 2
    >>> estimate_temperature(LogisticRegression(), X, y,
    ...                      logits_fn=lambda est, X: est.decision_function(X))
    (0.1, 'fallback: only 10 labeled samples (min_samples=50)')
    """
    if not callable(logits_fn):
        raise TypeError(f"logits_fn must be a callable (estimator, X) -> logits; got "
                        f"{type(logits_fn).__name__}.")
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a float in (0, 1); got {test_size!r}.")
    test_size = float(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size={test_size} must be in (0, 1), e.g. 0.3.")
    min_samples = check_int(min_samples, "min_samples", min_val=2)
    fallback = check_float(fallback, "fallback", min_val=0.0)
    lo, hi = _check_bounds(bounds)
    if validation is not None:
        try:
            X_val, y_val = validation
        except (TypeError, ValueError):
            raise ValueError("validation must be a pair (X_val, y_val) or None.") from None
        if _len(X_val) != _len(y_val):
            raise ValueError(f"validation has {_len(X_val)} inputs but {_len(y_val)} labels.")
        z, cols = _logits_and_columns(estimator, X_val, y_val, logits_fn)
        if cols.numel() == 0:
            return fallback, "fallback: no validation label is among the estimator's classes_"
        if z.shape[1] < 2:
            return fallback, "fallback: the estimator has a single class"
        return _fit_temperature(z, cols, lo, hi)[0], "validation"

    y = np.asarray(y_labeled.detach().cpu() if isinstance(y_labeled, torch.Tensor)
                   else y_labeled)
    if y.ndim != 1:
        raise ValueError(f"y_labeled must be 1-D; got shape {y.shape}.")
    n = y.shape[0]
    if _len(X_labeled) != n:
        raise ValueError(f"X_labeled has {_len(X_labeled)} rows but y_labeled has {n} labels.")
    if n < min_samples:
        return fallback, f"fallback: only {n} labeled samples (min_samples={min_samples})"
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return fallback, "fallback: the labeled set holds a single class"
    if counts.min() < 2:
        return fallback, (f"fallback: class {np.asarray(classes)[counts.argmin()].tolist()!r} has "
                          f"{counts.min()} labeled sample(s) (< 2)")
    n_test = int(math.ceil(test_size * n))
    if n_test < len(classes) or n - n_test < len(classes):
        return fallback, (f"fallback: a {test_size:g} split of {n} samples cannot hold all "
                          f"{len(classes)} classes on both sides")

    from sklearn.base import clone
    from sklearn.model_selection import StratifiedShuffleSplit

    seed = int(numpy_rng(random_state).integers(0, 2**31 - 1))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    try:
        train_idx, test_idx = next(splitter.split(np.zeros((n, 1)), y))
    except ValueError as exc:
        return fallback, f"fallback: the labeled set cannot be split ({exc})"
    try:
        model = clone(estimator)
        with preserved_global_rng(seed):  # skorch / sklearn draw from the global RNGs
            model.fit(_take(X_labeled, train_idx), y[train_idx])
    except Exception as exc:  # noqa: BLE001 - any failure of a user model means "cannot fit"
        return fallback, (f"fallback: the cloned estimator could not be fitted "
                          f"({type(exc).__name__}: {exc})")
    z, cols = _logits_and_columns(model, _take(X_labeled, test_idx), y[test_idx], logits_fn)
    if cols.numel() == 0 or z.shape[1] < 2:
        return fallback, "fallback: no held-out label is among the clone's classes_"
    return _fit_temperature(z, cols, lo, hi)[0], "held-out"
