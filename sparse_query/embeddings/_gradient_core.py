"""The last-layer gradient embedding's result and unchecked core (paper eq. 14).

:class:`GradientEmbedding` (``e_j = a_j (outer) h_j`` in factored form), the class side that the
dense, the sparse (:mod:`~sparse_query.embeddings.gradient_sparse`) and the committee
(:mod:`~sparse_query.embeddings.committee`) embeddings share (the label distribution ``P_j``,
``a_j = p_j - P_j`` and ``E_{y~P_j} ||P_j - onehot(y)||``), and the dense core behind the checked
:func:`~sparse_query.embeddings.gradient_embedding`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..operators import FactoredOperator


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


def _gradient_embedding(z: torch.Tensor, h: torch.Tensor, temperature: float, bias: bool,
                        chunk_size: int, implicit_bias: bool = False) -> GradientEmbedding:
    """Unchecked core of :func:`gradient_embedding` (same-dtype, same-device, finite inputs).

    ``implicit_bias=True`` (with ``bias``) returns ``h`` itself, no ``n x (d + 1)`` copy, and
    marks the bias column implicit (``GradientEmbedding.ones_column``); ``h`` may then be
    float32 beside float64 logits (its norms are taken in the logits' dtype), and the
    operator's user converts both factors to one dtype."""
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
            # ||[h, 1]|| without the n x d temporary h * h (vector_norm is one pass, ~14x
            # faster at d = 512)
            norm = torch.sqrt(_row_norms(h[sl], z.dtype).square_() + 1.0)
        else:
            hc = h_out[sl]
            hc[:, : h.shape[1]] = h[sl]
            if bias:
                hc[:, -1] = 1.0
            norm = torch.linalg.vector_norm(hc, dim=1)
        sigma[sl] = norm * dist[sl] / n
    return GradientEmbedding(a=a, h=h_out, sigma=sigma, probs=P_out, temperature=temperature,
                             ones_column=implicit)


def _row_norms(h: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``||h_j||`` computed in ``dtype``; rows of another dtype are upcast ~2^20 values at a
    time into one reused buffer, so no chunk-sized copy is made (row norms do not depend on
    how rows are grouped; a fresh temporary per block fragments the allocator's heap)."""
    if h.dtype == dtype:
        return torch.linalg.vector_norm(h, dim=1)
    step = max(1, (1 << 20) // max(1, h.shape[1]))
    out = torch.empty(h.shape[0], dtype=dtype, device=h.device)
    buf = torch.empty((min(step, h.shape[0]), h.shape[1]), dtype=dtype, device=h.device)
    for s in range(0, h.shape[0], step):
        e = min(s + step, h.shape[0])
        block = buf[:e - s]
        block.copy_(h[s:e])
        torch.linalg.vector_norm(block, dim=1, out=out[s:e])
    return out


def _class_factors(z: torch.Tensor, temperature: float, chunk_size: int):
    """The class side of the gradient embedding, in chunks of rows: ``a = p - P``, the label
    distribution ``P`` and ``E_{y~P} ||P - onehot(y)||`` (n,). Shared by the dense and the sparse
    (``embeddings.gradient_sparse``) embeddings, which differ only in ``h``."""
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
