"""What both solvers share: the :class:`~sparse_query.problem.SolverResult` of a batch, and the
batch of every group of identical rows when there are fewer groups than ``b``."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..problem import SolverResult


def _result(problem, w, selected, n_iter, converged, history):
    sel = problem.pool_indices(selected).detach().cpu().numpy().astype(np.int64)
    weights = w[selected].detach().cpu().double().numpy()
    return SolverResult(
        indices=sel,
        weights=weights,
        objective=problem.batch_objective(w, selected),
        n_iter=int(n_iter),
        converged=bool(converged),
        history=history,
    )


def _every_group(problem) -> SolverResult:
    """Fewer groups of identical rows than ``b``: every group's representative (weights 1,
    one de-bias step, clipped) and further copies, spread over the groups, with weight 0."""
    warnings.warn(
        f"The pool holds only {problem.n} distinct rows (groups of identical embeddings) for a "
        f"batch of {problem.b}: the batch takes every one of them and {problem.b - problem.n} "
        "further copies, whose labels add nothing new. Ask for at most "
        f"{problem.n} points to label distinct ones only.",
        UserWarning, stacklevel=3,
    )
    rows = torch.arange(problem.n, device=problem.device)
    w = torch.ones(problem.n, dtype=problem.dtype, device=problem.device)
    w = problem.debias(w, rows).clamp(min=0.0)
    idx = problem.groups.fill(rows, problem.b)
    weights = torch.zeros(problem.b, dtype=torch.float64)
    weights[: problem.n] = w.detach().cpu().double()
    obj = problem.batch_objective(w, rows)
    return SolverResult(indices=idx.detach().cpu().numpy().astype(np.int64),
                        weights=weights.numpy(), objective=obj, n_iter=0, converged=True,
                        history=[obj])
