"""Proximal IHT, Algorithm 2 of the paper, with the exact prox by default.

The normalised-IHT step on the current support, accepted only when it lowers the objective,
momentum restarts, patience-based stopping, the second start from a content-hashed spread
batch (``init="fallback"``: when the zero start loses to it; ``"both"``: always) and a
final polish. Iterates are sparse ``(indices, values)`` pairs;
the length-``n`` vectors live in a :class:`~sparse_query.solvers.prox.PoolVectors`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .._utils import check_float, check_int, check_option
from ..problem import SparseApproxProblem, SolverResult
from ._common import _every_group
from .prox import PROX_RULES, PoolVectors

__all__ = ["proximal_iht"]

IHT_INITS = ("both", "zero", "spread", "fallback")
POLISH_STEPS = 50
SPREAD_TRIES = 4


def proximal_iht(problem: SparseApproxProblem, *, max_iter: int = 100, tol: float = 1e-4,
                 patience: int | None = 10, prox: str = "exact",
                 max_halvings: int = 20, init: str = "fallback", _pool=None) -> SolverResult:
    """Algorithm 2 of the paper, proximal IHT with momentum, made monotone.

    Each iteration: ``u = grad f1(z)``; ``s = z - mu u``; ``w = prox(s)`` (keeps ``b``
    indices); de-bias on those indices; clip negatives; ``tau = LineSearch(w - w', w)``;
    ``z = w - tau (w - w')``. One pass over the pool per iteration (``Phi^T r``); the prox is a
    ``topk``, O(n log b). Where this differs from the paper's text (the documentation's
    "Where we differ from the paper" page gives the reasons):

    * **Step size.** ``mu`` is the exact line search along the gradient *restricted to the
      support of* ``z``, the step of normalised IHT (Blumensath & Davies, 2010); along the
      whole gradient only at the start (``z = 0``) and when ``z`` is already optimal on its
      support. The restricted step needs no second pass over the pool.
    * **Monotone acceptance.** A candidate whose batch objective is higher than the current
      iterate's is rejected: a momentum step is retried from ``w`` without momentum (an
      adaptive restart), a plain step with ``mu`` halved, up to ``max_halvings`` times.
      ``history`` is therefore non-increasing and the last iterate is the best.
    * **Stopping.** Stop (``converged=True``) when the chosen set is unchanged and
      ``max|w - w'| <= tol * max(1, max|w|)``, when it has not changed for ``patience``
      consecutive iterations, or when no step lowers the objective; in each case only after
      one *escape* try: the full-gradient step at ``2**k`` times its line-search length,
      ``|k| <= max_halvings``, taken if it yields a different batch with a strictly lower
      objective.
    * **Ties.** The prox sends coordinates tied on its score to the largest ``s_j`` (then
      the lower index), so the batch does not depend on the order of the pool.
    * **A second start.** From ``w = 0`` (the paper's start) the first step keeps the ``b``
      points most correlated with ``v``, and later steps rarely change that batch: dropping a
      chosen point costs ``1/2 w_j^2`` in the prox, more than any outside point's gradient
      step offers. The second run starts from the best (after one de-bias step) of 4 batches
      drawn by a hash of the rows' content (random-like, seedless, the same for any order of
      the pool). ``init="fallback"`` runs it only when the zero start's batch is not below
      that hashed batch, ``"both"`` always (about twice the cost); the lower objective is
      returned. Operators that cannot describe their rows (a dense Dask one) have the zero
      start only.
    * **Polish.** The returned batch's weights get further de-bias steps while they lower
      the objective (at most 50, O(b m) each, no pass over the pool).

    Parameters
    ----------
    problem : SparseApproxProblem
        The problem to solve (``b`` indices out of ``n``).
    max_iter : int, default=100
        Iterations at most (per start).
    tol : float, default=1e-4
        Stop when the batch is unchanged and the weights move by less than this, relative to
        ``max(1, max|w|)``.
    patience : int or None, default=10
        Stop once the batch is unchanged for this many iterations; ``None`` never does.
    prox : {"exact", "paper"}, default="exact"
        ``"exact"`` is the true minimiser of the proximal step; ``"paper"``
        is appendix E's rule, kept only to reproduce the paper.
    max_halvings : int, default=20
        How often a rejected step is halved before the iterate counts as a fixed point, and
        the range of the escape's step lengths. Each try costs a ``topk`` over the pool and
        O(b m), no pass over the embedding.
    init : {"fallback", "both", "zero", "spread"}, default="fallback"
        ``"zero"``: the paper's start ``w = 0``; ``"spread"``: the hashed batch; ``"both"``:
        both runs, the lower objective wins (about twice the work of one run);
        ``"fallback"``: the zero start, and the spread start too (the lower objective wins)
        only when the zero start's batch is not below the best hashed batch.

    Returns
    -------
    SolverResult
        ``indices`` sorted ascending; ``history`` holds the (non-increasing) batch objective
        of every accepted iterate of the returned run (the spread start is its first
        iterate) and ``n_iter`` counts that run's iterations.
    """
    if not isinstance(problem, SparseApproxProblem):
        raise TypeError(f"problem must be a SparseApproxProblem; got {type(problem).__name__}.")
    max_iter = check_int(max_iter, "max_iter", min_val=1)
    tol = check_float(tol, "tol", min_val=0.0)
    if patience is not None:
        patience = check_int(patience, "patience", min_val=1)
    check_option(prox, "prox", PROX_RULES)
    max_halvings = check_int(max_halvings, "max_halvings", min_val=0)
    check_option(init, "init", IHT_INITS)
    if problem.n < problem.b:
        return _every_group(problem)
    pool = _pool if _pool is not None else PoolVectors(problem)
    ctx = _Iht(problem, pool, prox, max_halvings)
    runs = []
    if init in ("zero", "both", "fallback"):
        runs.append(_iht_run(ctx, None, max_iter, tol, patience))
    spread, spread_obj = _best_spread(ctx) if init != "zero" else (None, math.inf)
    if init == "fallback" and runs[0][1] and runs[0][1][-1] < spread_obj:
        spread = None  # the zero start already beat the best hashed batch: keep its batch
    if spread is not None:
        runs.append(_iht_run(ctx, spread, max_iter, tol, patience))
    elif init == "spread":
        raise ValueError(
            f"init='spread' needs an operator that describes its rows (row_blocks); "
            f"{type(problem.op).__name__} does not. Use init='zero'."
        )
    # the lower objective wins; a tie goes to the first run (the paper's start)
    w, history, n_iter, converged = min(runs, key=lambda r: r[1][-1])
    return SolverResult(
        indices=problem.pool_indices(w[0]).detach().cpu().numpy().astype(np.int64),
        weights=w[1].detach().cpu().double().numpy(),
        objective=ctx.objective(w[0], w[1], ctx.phi(*w)),
        n_iter=int(n_iter),
        converged=bool(converged),
        history=history,
    )


def _best_spread(ctx, tries=SPREAD_TRIES):
    """``(rows, objective)`` of the best (after one de-bias step) of ``tries`` batches drawn
    by content hash, or ``(None, inf)``.

    Each try costs O(b m); they cover the pool in disjoint windows of the hash order while
    ``tries * b <= n``."""
    p = ctx.p
    best, best_obj = None, math.inf
    step = max(p.b, p.n // tries)
    for k in range(tries):
        rows = p.spread_rows(p.b, offset=k * step)
        if rows is None:
            return None, math.inf
        val = torch.ones(rows.numel(), dtype=p.dtype, device=p.device)
        val = p.debias_rows(rows, val, ctx.phi(rows, val)).clamp(min=0.0)
        obj = ctx.objective(rows, val, ctx.phi(rows, val))
        if obj < best_obj:
            best, best_obj = rows, obj
    return best, best_obj


def _iht_run(ctx, start, max_iter, tol, patience):
    """One monotone proximal-IHT run from ``w = 0`` (``start=None``) or from weights 1 on the
    rows ``start``, de-biased: ``(w, history, n_iter, converged)``."""
    problem = ctx.p
    empty = torch.zeros(0, dtype=torch.long, device=problem.device)
    w = (empty, torch.zeros(0, dtype=problem.dtype, device=problem.device))
    phi_w = torch.zeros_like(problem.v)
    sel, obj = None, math.inf
    history = []
    if start is not None:
        val = torch.ones(start.numel(), dtype=problem.dtype, device=problem.device)
        val = problem.debias_rows(start, val, ctx.phi(start, val)).clamp(min=0.0)
        w = (start, val)
        phi_w = ctx.phi(*w)
        sel, obj = start, ctx.objective(start, val, phi_w)
        history.append(obj)  # the start is the run's first iterate
    z, phi_z, momentum = w, phi_w, False
    converged = False
    n_iter = len(history)
    stable = 0
    for t in range(n_iter + 1, max_iter + 1):
        n_iter = t
        step = ctx.step(z, phi_z, obj, sel, momentum)
        if step is None and momentum:  # the momentum step failed: restart from w
            step = ctx.step(w, phi_w, obj, sel, False)
        settled = step is None
        if step is not None and sel is not None and torch.equal(step[0], sel):
            change = float(_axpy(step[0], step[1], w[0], w[1], -1.0)[1].abs().max())
            small = change <= tol * max(1.0, float(step[1].abs().max()))
            settled = small or bool(patience and stable + 1 >= patience)
        if settled:
            escape = ctx.escape(w, phi_w, obj, sel)
            if escape is None:
                if step is None:  # w is a fixed point: no step lowers the objective
                    n_iter = t - 1
                else:  # the settled step is taken: polish from its objective, not the last
                    w, obj = (step[0], step[1]), step[3]
                    history.append(obj)
                converged = True
                break
            step = escape
        new_sel, w_val, phi_new, obj = step
        history.append(obj)
        d = _axpy(new_sel, w_val, w[0], w[1], -1.0)  # w_new - w_old, on the union of supports
        phi_d = phi_new - phi_w
        w, phi_w = (new_sel, w_val), phi_new
        tau = ctx.line_search(d, w, phi_d, phi_w)
        momentum = tau != 0.0
        z, phi_z = (_axpy(*w, *d, -tau), phi_w - tau * phi_d) if momentum else (w, phi_w)
        stable = stable + 1 if sel is not None and torch.equal(new_sel, sel) else 0
        sel = new_sel
    if w[0].numel():
        w, obj = _polish(ctx, w, obj)
        if obj < history[-1]:
            history[-1] = obj  # the last iterate's weights, polished on its batch
    return w, history, n_iter, converged


def _polish(ctx, w, obj, max_steps=POLISH_STEPS, rtol=1e-7):
    """Repeat the de-bias step (exact line search along the in-support gradient, clipped) on
    the final batch while it lowers the objective: the batch is fixed, only its weights
    move, at O(b m) per step and no pass over the pool."""
    idx, val = w
    phi = ctx.phi(idx, val)
    for _ in range(max_steps):
        new = ctx.p.debias_rows(idx, val, phi).clamp(min=0.0)
        phi_new = ctx.phi(idx, new)
        new_obj = ctx.objective(idx, new, phi_new)
        if not new_obj < obj - rtol * abs(obj):
            break
        val, phi, obj = new, phi_new, new_obj
    return (idx, val), obj


def _axpy(a_idx, a_val, b_idx, b_val, coef):
    """The sparse vector ``a + coef * b`` on the union of the (sorted) supports."""
    idx, inv = torch.unique(torch.cat([a_idx, b_idx]), return_inverse=True)
    val = torch.zeros(idx.numel(), dtype=a_val.dtype, device=a_val.device)
    val.index_add_(0, inv[: a_idx.numel()], a_val)
    val.index_add_(0, inv[a_idx.numel():], coef * b_val)
    return idx, val


def _values_at(idx, val, where):
    """Entries ``where`` (sorted) of the sparse vector ``(idx, val)``; 0 off its support."""
    out = torch.zeros(where.numel(), dtype=val.dtype, device=val.device)
    if idx.numel() == 0 or where.numel() == 0:
        return out
    pos = torch.searchsorted(idx, where).clamp(max=idx.numel() - 1)
    hit = idx[pos] == where
    out[hit] = val[pos[hit]]
    return out


class _Iht:
    """The pieces of one proximal-IHT run on sparse iterates ``(indices, values)``."""

    def __init__(self, problem, pool, prox, max_halvings):
        self.p, self.pool, self.prox, self.max_halvings = problem, pool, prox, max_halvings
        # (z, u, full-gradient mu or None) of the last step: the escape at w is z, when the
        # step started from w without momentum, reuses its gradient (one pass over the pool)
        # and its full-gradient line search (another pass)
        self._last = None

    def phi(self, idx, val):
        if idx.numel() == 0:
            return torch.zeros_like(self.p.v)
        return self.p.op.combine_rows(idx, val) / self.p.b

    def objective(self, idx, val, phi):
        """The batch objective ``f1(w) - alpha sum_{idx} sigma^2`` (float64 accumulation)."""
        p = self.p
        r = (phi - p.v).double()
        dw = val.double() - 1.0
        stab = float((dw * dw).sum()) + (p.n - idx.numel()) + p.stab_const
        sig2 = float(self.pool.sigma2(idx).double().sum())
        return float((r * r).sum()) + p.beta * stab - p.alpha * sig2

    def line_search(self, u, w, phi_u, phi_w):
        """The minimiser ``mu`` of ``f1(w - mu u)`` for sparse ``u`` and ``w``."""
        return self.p.line_search_rows(u[0], u[1], _values_at(*w, u[0]), phi_u=phi_u,
                                       phi_w=phi_w)

    def dense_line_search(self, u, z, phi_z):
        """The minimiser ``mu`` of ``f1(z - mu u)`` along the whole gradient (one pass)."""
        p = self.p
        phi_u, u_sum, u_sq = self.pool.dense_terms(u)
        u_z = self.pool.take(u, z[0])
        zu = float((z[1] * u_z).sum()) - u_sum  # sum_j (z_j - 1) u_j over the pool
        num = float(p.op.inner(phi_z - p.v, phi_u)) + p.beta * zu
        den = float(p.op.inner(phi_u, phi_u)) + p.beta * u_sq
        return p.step_length(num, den)

    def trial(self, u, z, mu):
        """Prox, de-bias and clip at ``s = z - mu u``: ``(indices, w, Phi w, objective)``."""
        sel, s_sel = self.pool.prox(u, z[0], z[1], mu, self.prox)
        val = s_sel.clamp(min=0.0)
        val = self.p.debias_rows(sel, val, self.phi(sel, val)).clamp(min=0.0)
        phi = self.phi(sel, val)
        return sel, val, phi, self.objective(sel, val, phi)

    def step(self, z, phi_z, obj, sel, momentum):
        """The proximal step from ``z`` whose batch objective does not exceed ``obj``, or None.

        ``mu`` is the exact line search along the gradient restricted to the support of ``z``;
        along the whole gradient at the start and when ``z`` is optimal on its support (the
        restricted gradient vanishes and its step would be round-off). A rejected step is
        halved, up to ``max_halvings`` times; with ``momentum`` a rejection returns None at
        once so that the caller restarts from ``w``. The first iterate (``sel is None``) is
        always taken.
        """
        u = self.pool.gradient(z[0], z[1], phi_z - self.p.v)
        self._last = (z, u, None)
        support = z[0][z[1] != 0]
        mu = 0.0
        if support.numel() > 0:
            u_s = self.pool.take(u, support)
            eps = torch.finfo(u_s.dtype).eps
            if float(u_s.double().norm()) > math.sqrt(eps) * math.sqrt(self.pool.norm2(u)):
                mu = self.line_search((support, u_s), z, self.phi(support, u_s), phi_z)
        if not mu > 0.0:
            mu = self.dense_line_search(u, z, phi_z)
            self._last = (z, u, mu)
        for _ in range(self.max_halvings + 1):
            cand = self.trial(u, z, mu)
            if sel is None or cand[3] <= obj:
                return cand
            if momentum or not mu > 0.0:
                return None
            mu *= 0.5
        return None

    def escape(self, w, phi_w, obj, sel):
        """A stalled batch's last chance: the line search along the whole gradient at ``w``,
        tried at ``mu * 2**k`` for ``|k| <= max_halvings`` (smallest change first). Returns
        the first candidate with a different batch and a strictly lower objective, or None."""
        last, self._last = self._last, None
        if last is not None and last[0] is w:  # the last step's gradient is the one at w
            u, mu = last[1], last[2]
        else:
            u, mu = self.pool.gradient(w[0], w[1], phi_w - self.p.v), None
        if mu is None:
            mu = self.dense_line_search(u, w, phi_w)
        if not mu > 0.0:
            return None
        for k in sorted(range(-self.max_halvings, self.max_halvings + 1), key=abs):
            cand = self.trial(u, w, mu * 2.0**k)
            if cand[3] < obj and not torch.equal(cand[0], sel):
                return cand
        return None
