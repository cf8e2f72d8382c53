"""The hard-threshold prox of proximal IHT and the pool vectors it runs on.

:func:`hard_threshold_prox` (the exact rule by default, the paper's appendix-E rule as
``rule="paper"``), its score :func:`prox_score`, the tie-breaking top-``k``
:func:`topk_lowest_index`, and :class:`PoolVectors`, the length-``n`` vectors of IHT held next
to the pool (``distributed.DaskPoolVectors`` keeps them on Dask workers instead).
"""
from __future__ import annotations

import torch

from .._utils import check_option
from ..problem import SparseApproxProblem

__all__ = ["PROX_RULES", "topk_lowest_index", "prox_score", "hard_threshold_prox", "PoolVectors"]

PROX_RULES = ("exact", "paper")


def topk_lowest_index(score: torch.Tensor, k: int, *, largest: bool = True,
                      tiebreak: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the ``k`` largest (or smallest) entries of ``score``, sorted ascending.

    Entries tied at the threshold go to the largest ``tiebreak`` when it is given, and then to
    the lower index. O(n) plus a ``topk``.
    """
    n = score.shape[0]
    if k >= n:
        return torch.arange(n, device=score.device)
    vals, idx = torch.topk(score, k, largest=largest, sorted=False)
    thr = vals.min() if largest else vals.max()
    if int((score >= thr if largest else score <= thr).sum()) == k:
        return torch.sort(idx).values  # no tie crosses the threshold: topk's set is the answer
    strict = score > thr if largest else score < thr
    chosen = strict.nonzero().reshape(-1)
    need = k - chosen.numel()
    if need > 0:
        ties = (score == thr).nonzero().reshape(-1)
        if tiebreak is not None and ties.numel() > need:
            # the ``need`` largest tiebreaks, equal ones to the lower index: the same set as a
            # stable descending sort's first ``need``, without sorting (up to n) ties
            ties = ties[topk_lowest_index(tiebreak[ties], need)]
        else:
            ties = ties[:need]
        chosen = torch.cat([chosen, ties])
    return torch.sort(chosen).values


def prox_score(s, sigma, alpha: float, rule: str = "exact"):
    """The score :func:`hard_threshold_prox` ranks by, and whether it keeps the largest."""
    sigma = torch.as_tensor(sigma, dtype=s.dtype, device=s.device)
    return _score(s, alpha * (sigma * sigma), rule)


def _score(s, alpha_sig2, rule):
    """``1/2 [s]_+^2 + alpha sigma^2`` (exact; keep the largest) or ``1/2 [-s]_+^2 - alpha
    sigma^2`` (paper; keep the smallest), formed in place on one new tensor."""
    exact = rule == "exact"
    score = s.clamp(min=0) if exact else s.neg().clamp_(min=0)
    score.square_().mul_(0.5)
    return (score.add_(alpha_sig2) if exact else score.sub_(alpha_sig2)), exact


def hard_threshold_prox(s, sigma, alpha: float, b: int, *, rule: str = "exact"):
    """The proximal step of Algorithm 2, line 6.

    Solves ``argmin_{w >= 0, ||w||_0 <= b} 1/2 ||w - s||^2 - alpha sum_j 1(w_j > 0) sigma_j^2``.

    ``rule="exact"`` (default) keeps the ``b`` largest ``1/2 [s_j]_+^2 + alpha sigma_j^2``: leaving
    ``j`` out costs ``1/2 s_j^2``, keeping it costs ``1/2 [-s_j]_+^2 - alpha sigma_j^2``, and the
    difference is that score. ``rule="paper"`` keeps the ``b`` smallest
    ``1/2 [-s_j]_+^2 - alpha sigma_j^2`` as printed in the paper's appendix E, which ignores the
    cost of the coordinates left out and is not the minimiser in general.

    Returns
    -------
    indices : Tensor of shape (b,)
        The kept coordinates (sorted); ties go to the larger ``s_j``, then the lower index.
    w : Tensor of shape (n,)
        ``[s]_+`` on ``indices``, 0 elsewhere.
    """
    check_option(rule, "prox", PROX_RULES)
    s = torch.as_tensor(s)
    score, largest = prox_score(s, sigma, alpha, rule)
    # coordinates whose score ties (typically several s_j <= 0 with equal sigma_j) go to the
    # largest s_j: the prox objective cannot tell them apart, and this keeps the choice
    # independent of the order of the pool
    idx = topk_lowest_index(score, b, largest=largest, tiebreak=s)
    w = torch.zeros_like(s)
    w[idx] = s[idx].clamp(min=0)
    return idx, w


class PoolVectors:
    """The length-``n`` vectors of proximal IHT -- the gradient and the prox over it -- held
    next to the pool. This one keeps them as tensors on the problem's device;
    :class:`sparse_query.distributed.DaskPoolVectors` keeps one piece per chunk on the workers.
    Iterates are sparse ``(sorted indices, values)`` pairs, so the solver itself holds O(b).

    ``u`` below is whatever :meth:`gradient` returns (here a tensor); the solver only passes
    it back.
    """

    def __init__(self, problem: SparseApproxProblem):
        self.problem = problem
        self._alpha_sig2 = None

    def gradient(self, z_idx, z_val, r):
        """``u = grad f1(z) = 2 Phi^T r / b + 2 beta (z - 1)`` for ``r = Phi z - v``."""
        p = self.problem
        u = 2.0 * p.op.project(r) / p.b - 2.0 * p.beta
        u[z_idx] += 2.0 * p.beta * z_val
        return u

    def take(self, u, idx):
        """``u[idx]``."""
        return u[idx]

    def norm2(self, u):
        """``sum_j u_j^2``."""
        return float((u.double() ** 2).sum())

    def dense_terms(self, u):
        """``(Phi u, sum_j u_j, sum_j u_j^2)``: one pass over the pool."""
        return self.problem.phi_dense(u), float(u.double().sum()), self.norm2(u)

    def prox(self, u, z_idx, z_val, mu, rule):
        """:func:`hard_threshold_prox` at ``s = z - mu u``: the kept indices and ``s`` there.

        ``alpha sigma^2`` is formed once per problem: IHT's escape tries up to
        ``2 max_halvings + 1`` step lengths, each a prox over the whole pool."""
        check_option(rule, "prox", PROX_RULES)
        s = u * -mu
        s[z_idx] += z_val
        if self._alpha_sig2 is None:
            sigma = torch.as_tensor(self.problem.sigma, dtype=s.dtype, device=s.device)
            self._alpha_sig2 = self.problem.alpha * (sigma * sigma)
        score, largest = _score(s, self._alpha_sig2, rule)
        sel = topk_lowest_index(score, self.problem.b, largest=largest, tiebreak=s)
        return sel, s[sel]

    def sigma2(self, idx):
        return self.problem.sigma2[idx]
