"""Greedy, Algorithm 1 of the paper: add one index per step, then line-search and de-bias.

Returns exactly ``b`` distinct indices for every legal problem, breaks ties towards the lower
index and is deterministic on the CPU; vectorised over the pool, it loops over the ``b`` steps.
"""
from __future__ import annotations

import math

import torch

from .._utils import check_float, check_int, check_option
from ..problem import SparseApproxProblem, SolverResult
from ._common import _every_group, _result

__all__ = ["greedy"]


def greedy(problem: SparseApproxProblem, *, tau: float = 1.0, max_cache_bytes: int = 2**30,
           _mode: str | None = None) -> SolverResult:
    """Algorithm 1 of the paper: add one index per step, then line-search and de-bias.

    Step ``k`` picks ``j = argmin_{j not in S} tau * grad f1(w)_j - alpha * sigma_j^2`` (lowest
    index on ties), sets ``w <- w - LineSearch(e^j, w) e^j``, de-biases on the support and clips
    negative weights to 0.

    The gradient is kept up to date in one of two ways, chosen by cost: with cached columns
    of ``Phi^T Phi`` (one ``O(n (K + d))`` column per step for factored embeddings plus an
    ``O(n |S|)`` product; support work ``O(|S|^2)``), or through the residual ``r = Phi w - v``
    with one pass ``Phi^T r`` per step (``O(n m)``; support work ``O(|S| m)``). Either way the
    whole run is ``O(n m b)`` or less.

    Parameters
    ----------
    problem : SparseApproxProblem
    tau : float, default=1.0
        Step size of the first-order score, ``tau > 0``.
    max_cache_bytes : int, default=2**30
        Largest ``n x b`` Gram-column cache greedy may keep.

    Returns
    -------
    SolverResult
        ``indices`` in selection order, ``n_iter = b``, ``converged = True``.
    """
    if not isinstance(problem, SparseApproxProblem):
        raise TypeError(f"problem must be a SparseApproxProblem; got {type(problem).__name__}.")
    tau = check_float(tau, "tau", min_val=0.0, min_inclusive=False)
    max_cache_bytes = check_int(max_cache_bytes, "max_cache_bytes", min_val=0)
    if problem.n < problem.b:
        return _every_group(problem)
    op, n, b = problem.op, problem.n, problem.b
    alpha, beta = problem.alpha, problem.beta
    dev, dt = problem.device, problem.dtype
    itemsize = torch.finfo(dt).bits // 8
    if _mode is None:
        cheap = op.column_cost + b / 2 < op.project_cost
        mode = "gram" if cheap and n * b * itemsize <= max_cache_bytes else "residual"
    else:
        mode = check_option(_mode, "_mode", ("gram", "residual"))

    c = problem.c
    b2 = float(b) * float(b)
    w = torch.zeros(n, dtype=dt, device=dev)
    selected = torch.empty(b, dtype=torch.long, device=dev)
    if mode == "gram":
        # Phi^T Phi restricted to the selection, and its columns over the whole pool
        G = torch.zeros((b, b), dtype=dt, device=dev)
        cols = torch.empty((b, n), dtype=dt, device=dev)  # row k: column k of Phi^T Phi
    else:
        # the residual r = Phi w - v lives in the embedding space: support work is O(|S| m)
        r = -problem.v.clone()
    # off the support the score tau * grad f1(w)_j - alpha sigma_j^2 is an affine function of
    # Phi^T Phi w (gram) or Phi^T r (residual) -- grad f1(w)_j = 2 (Phi^T Phi w - c)_j - 2 beta
    # where w_j = 0 -- so each step costs one fused pass; the support is masked by an inf in
    # ``base`` (inf + finite = inf), one scalar write per step
    neg_alpha_sig2 = -alpha * problem.sigma2
    base = neg_alpha_sig2 - 2.0 * tau * beta
    if mode == "gram":
        base = base - 2.0 * tau * c
    sig2_sum = 0.0
    score = -2.0 * tau * c + base if mode == "residual" else base.clone()  # at w = 0
    w_s = torch.zeros(0, dtype=dt, device=dev)
    history = []
    for k in range(b):
        j = int(torch.argmin(score))  # first minimum: ties go to the lower index
        selected[k] = j
        base[j] = math.inf
        S = selected[: k + 1]
        w_s = torch.cat([w_s, torch.zeros(1, dtype=dt, device=dev)])
        sig2_sum += float(problem.sigma2[j])
        if mode == "gram":
            torch.mul(op.gram_columns(selected[k : k + 1])[:, 0], 1.0 / b2, out=cols[k])
            g_new = cols[k, S]
            G[k, : k + 1] = g_new
            G[: k + 1, k] = g_new
            Gs = G[: k + 1, : k + 1]
            cs = c[S]
            g_s = Gs @ w_s - cs  # Phi_S^T (Phi w - v)
            e_jj = float(Gs[k, k])
        else:
            g_s = op.project_rows(r, S) / b
            e_jj = float(op.gram_block(selected[k : k + 1], selected[k : k + 1])) / b2
        # line search along e^j: mu = (<Phi w - v, Phi e^j> + beta (w_j - 1)) / (||Phi e^j||^2 + beta)
        den = e_jj + beta
        mu = (float(g_s[k]) - beta) / den if den > 0 else 0.0
        w_s[k] -= mu
        if mode == "gram":
            g_s = g_s - mu * Gs[:, k]
        else:
            r = r + op.combine_rows(selected[k : k + 1], w_s[k : k + 1]) / b
            g_s = op.project_rows(r, S) / b
        # de-bias: u = grad f1(w) on the support, exact line search along it
        u = 2.0 * g_s + 2.0 * beta * (w_s - 1.0)
        if mode == "gram":
            phi_u_sq = float(u @ (Gs @ u))
            cross = float(u @ g_s)
        else:
            phi_u = op.combine_rows(S, u) / b
            phi_u_sq = float(op.inner(phi_u, phi_u))
            cross = float(op.inner(r, phi_u))
        den = phi_u_sq + beta * float(u @ u)
        if den > 0 and math.isfinite(den):
            mu = (cross + beta * float(u @ (w_s - 1.0))) / den
            if math.isfinite(mu):
                w_s = w_s - mu * u
        w_s = w_s.clamp(min=0.0)
        # f1 = ||Phi w - v||^2 + beta ||w - 1||^2, with O(|S|^2) (gram) or O(|S| m) work
        if mode == "gram":
            q = Gs @ w_s
            bias = problem.vv + float(w_s @ (q - 2.0 * cs))
        else:
            r = op.combine_rows(S, w_s) / b - problem.v
            bias = float(op.inner(r, r))
        stab = float(((w_s - 1.0) ** 2).sum()) + (n - k - 1) + problem.stab_const
        history.append(bias + beta * stab - alpha * sig2_sum)
        if k + 1 < b:
            if mode == "gram":  # base + 2 tau Phi^T Phi w
                score = torch.addmv(base, cols[: k + 1].T, w_s, alpha=2.0 * tau)
            else:  # base + (2 tau / b) Phi^T r
                score = torch.add(base, op.project(r), alpha=2.0 * tau / b)
    w[selected] = w_s
    return _result(problem, w, selected, b, True, history)
