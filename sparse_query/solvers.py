"""Greedy (Algorithm 1) and proximal IHT (Algorithm 2) for :class:`~sparse_query.problem.SparseApproxProblem`.

Both return exactly ``b`` distinct indices for every legal problem, break ties by the lower
index and are deterministic on the CPU. All work is vectorised over the pool (no Python loop
over ``n``); greedy loops over the ``b`` steps, IHT over its iterations.

The IHT's proximal step uses the *exact* prox of SPEC section 5 by default; the rule printed
in the paper's appendix E is available as ``prox="paper"`` for reproduction only.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._utils import check_float, check_int, check_option
from .problem import SparseApproxProblem, SolverResult

__all__ = ["greedy", "proximal_iht", "hard_threshold_prox", "topk_lowest_index"]

PROX_RULES = ("exact", "paper")


def topk_lowest_index(score: torch.Tensor, k: int, *, largest: bool = True) -> torch.Tensor:
    """Indices of the ``k`` largest (or smallest) entries of ``score``, ties going to the lower index.

    O(n) plus a ``topk``; returns the indices sorted ascending.
    """
    n = score.shape[0]
    if k >= n:
        return torch.arange(n, device=score.device)
    vals = torch.topk(score, k, largest=largest, sorted=False).values
    thr = vals.min() if largest else vals.max()
    strict = score > thr if largest else score < thr
    chosen = strict.nonzero().reshape(-1)
    need = k - chosen.numel()
    if need > 0:
        ties = (score == thr).nonzero().reshape(-1)[:need]
        chosen = torch.cat([chosen, ties])
    return torch.sort(chosen).values


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
        The kept coordinates (sorted), ties to the lower index.
    w : Tensor of shape (n,)
        ``[s]_+`` on ``indices``, 0 elsewhere.
    """
    check_option(rule, "prox", PROX_RULES)
    s = torch.as_tensor(s)
    sigma = torch.as_tensor(sigma, dtype=s.dtype, device=s.device)
    sig2 = sigma * sigma
    if rule == "exact":
        idx = topk_lowest_index(0.5 * s.clamp(min=0) ** 2 + alpha * sig2, b, largest=True)
    else:
        idx = topk_lowest_index(0.5 * (-s).clamp(min=0) ** 2 - alpha * sig2, b, largest=False)
    w = torch.zeros_like(s)
    w[idx] = s[idx].clamp(min=0)
    return idx, w


def _result(problem, w, selected, n_iter, converged, history):
    sel = selected.detach().cpu().numpy().astype(np.int64)
    weights = w[selected].detach().cpu().double().numpy()
    return SolverResult(
        indices=sel,
        weights=weights,
        objective=problem.batch_objective(w, selected),
        n_iter=int(n_iter),
        converged=bool(converged),
        history=history,
    )


def greedy(problem: SparseApproxProblem, *, tau: float = 1.0, max_cache_bytes: int = 2**30,
           _mode: str | None = None) -> SolverResult:
    """Algorithm 1 of the paper: add one index per step, then line-search and de-bias.

    Step ``k`` picks ``j = argmin_{j not in S} tau * grad f1(w)_j - alpha * sigma_j^2`` (lowest
    index on ties), sets ``w <- w - LineSearch(e^j, w) e^j``, de-biases on the support and clips
    negative weights to 0.

    The gradient is kept up to date in one of two ways, chosen by cost: with cached columns
    of ``Phi^T Phi`` (one O(n (K + d)) column per step for factored embeddings plus an
    O(n |S|) product; support work O(|S|^2)), or through the residual ``r = Phi w - v`` with
    one pass ``Phi^T r`` per step (O(n m); support work O(|S| m)). Either way the whole run
    is O(n m b) or less.

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
    in_s = torch.zeros(n, dtype=torch.bool, device=dev)
    selected = torch.empty(b, dtype=torch.long, device=dev)
    if mode == "gram":
        # Phi^T Phi restricted to the selection, and its columns over the whole pool
        G = torch.zeros((b, b), dtype=dt, device=dev)
        cols = torch.empty((n, b), dtype=dt, device=dev)
    else:
        # the residual r = Phi w - v lives in the embedding space: support work is O(|S| m)
        r = -problem.v.clone()
    neg_alpha_sig2 = -alpha * problem.sigma2
    sig2_sum = 0.0
    grad = -2.0 * c - 2.0 * beta  # grad f1 at w = 0
    w_s = torch.zeros(0, dtype=dt, device=dev)
    history = []
    for k in range(b):
        score = tau * grad + neg_alpha_sig2
        score = score.masked_fill(in_s, math.inf)
        j = int(torch.argmin(score))  # first minimum: ties go to the lower index
        selected[k] = j
        in_s[j] = True
        S = selected[: k + 1]
        w_s = torch.cat([w_s, torch.zeros(1, dtype=dt, device=dev)])
        sig2_sum += float(problem.sigma2[j])
        if mode == "gram":
            cols[:, k] = op.gram_columns(selected[k : k + 1])[:, 0] / b2
            g_new = cols[S, k]
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
        w[S] = w_s
        # f1 = ||Phi w - v||^2 + beta ||w - 1||^2, with O(|S|^2) (gram) or O(|S| m) work
        if mode == "gram":
            q = Gs @ w_s
            bias = problem.vv + float(w_s @ (q - 2.0 * cs))
        else:
            r = op.combine_rows(S, w_s) / b - problem.v
            bias = float(op.inner(r, r))
        stab = float(((w_s - 1.0) ** 2).sum()) + (n - k - 1)
        history.append(bias + beta * stab - alpha * sig2_sum)
        if k + 1 < b:
            if mode == "gram":
                q_all = cols[:, : k + 1] @ w_s
            else:
                q_all = op.project(r) / b + c
            grad = 2.0 * (q_all - c) + 2.0 * beta * (w - 1.0)
    return _result(problem, w, selected, b, True, history)


def proximal_iht(problem: SparseApproxProblem, *, max_iter: int = 100, tol: float = 1e-4,
                 patience: int | None = 10, prox: str = "exact") -> SolverResult:
    """Algorithm 2 of the paper: proximal iterative hard thresholding with momentum.

    Each iteration: ``u = grad f1(z)``; ``s = z - LineSearch(u, z) u``; ``w = prox(s)`` (keeps
    ``b`` indices); de-bias on those indices; clip negatives; ``tau = LineSearch(w - w', w)``;
    ``z = w - tau (w - w')``. Two passes over the pool per iteration (``Phi^T r`` and ``Phi u``);
    the prox is a ``topk``, O(n log b).

    Stops after ``max_iter`` iterations, or (``converged=True``) when the chosen set is
    unchanged and ``max|w - w'| <= tol * max(1, max|w|)``, or when the chosen set has not changed
    for ``patience`` consecutive iterations: on ill-conditioned problems the weights keep
    creeping long after the batch -- the output that matters -- has settled. The iteration with
    the lowest objective is returned (IHT is not monotone).

    Parameters
    ----------
    problem : SparseApproxProblem
    max_iter : int, default=100
    tol : float, default=1e-4
    patience : int or None, default=10
        Stop once the batch is unchanged for this many iterations; ``None`` never does.
    prox : {"exact", "paper"}, default="exact"
        ``"exact"`` is the true minimiser of the proximal step (SPEC section 5); ``"paper"``
        is appendix E's rule, kept only to reproduce the paper.

    Returns
    -------
    SolverResult
        ``indices`` sorted ascending.
    """
    if not isinstance(problem, SparseApproxProblem):
        raise TypeError(f"problem must be a SparseApproxProblem; got {type(problem).__name__}.")
    max_iter = check_int(max_iter, "max_iter", min_val=1)
    tol = check_float(tol, "tol", min_val=0.0)
    if patience is not None:
        patience = check_int(patience, "patience", min_val=1)
    check_option(prox, "prox", PROX_RULES)
    op, n, b = problem.op, problem.n, problem.b
    beta = problem.beta
    dev, dt = problem.device, problem.dtype
    w = torch.zeros(n, dtype=dt, device=dev)
    z = torch.zeros(n, dtype=dt, device=dev)
    prev_sel = None
    best = None
    history = []
    converged = False
    n_iter = 0
    stable = 0
    phi_z = torch.zeros_like(problem.v)
    phi_w = torch.zeros_like(problem.v)
    for t in range(1, max_iter + 1):
        n_iter = t
        w_prev, phi_w_prev = w, phi_w
        u = 2.0 * op.project(phi_z - problem.v) / b + 2.0 * beta * (z - 1.0)
        mu = problem.line_search(u, z, phi_u=problem.phi_dense(u), phi_w=phi_z)
        s = z - mu * u
        sel, w = hard_threshold_prox(s, problem.sigma, problem.alpha, b, rule=prox)
        w = problem.debias(w, sel).clamp(min=0.0)
        phi_w = problem.phi(w)
        d = w - w_prev
        phi_d = phi_w - phi_w_prev
        step = problem.line_search(d, w, phi_u=phi_d, phi_w=phi_w)
        z = w - step * d
        phi_z = phi_w - step * phi_d
        obj = problem.batch_objective(w, sel, phi_w=phi_w)
        history.append(obj)
        if best is None or obj < best[0]:
            best = (obj, w, sel)
        same = prev_sel is not None and torch.equal(sel, prev_sel)
        stable = stable + 1 if same else 0
        scale = max(1.0, float(w.abs().max()))
        if same and (float(d.abs().max()) <= tol * scale or (patience and stable >= patience)):
            converged = True
            break
        prev_sel = sel
    _, w_best, sel_best = best
    return _result(problem, w_best, sel_best, n_iter, converged, history)
