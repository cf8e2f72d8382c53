"""The Bayesian posterior embedding (paper eq. 13): :class:`PosteriorEmbedding` and
:func:`posterior_embedding`, from loss samples over posterior draws."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .._utils import check_float
from ._inputs import _as_float_tensor, _check_chunk_size


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
