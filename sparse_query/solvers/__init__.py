"""Greedy (Algorithm 1) and proximal IHT (Algorithm 2) for :class:`~sparse_query.problem.SparseApproxProblem`.

Both return exactly ``b`` distinct indices for every legal problem, break ties
deterministically (greedy: the lower index; IHT's prox: the larger ``s_j``, then the lower
index) and are deterministic on the CPU. All work is vectorised over the pool (no Python loop
over ``n``); greedy loops over the ``b`` steps, IHT over its iterations.

The IHT's proximal step uses the *exact* prox by default (keep the ``b`` largest
``1/2 [s_j]_+^2 + alpha sigma_j^2``); the rule printed in the paper's appendix E, which ignores
the cost of the coordinates left out, is available as ``prox="paper"`` for reproduction only.

Where each lives: :mod:`~sparse_query.solvers.greedy_solver` (:func:`greedy`),
:mod:`~sparse_query.solvers.iht_solver` (:func:`proximal_iht`),
:mod:`~sparse_query.solvers.prox` (:func:`hard_threshold_prox`, :class:`PoolVectors`) and
:mod:`~sparse_query.solvers._common` (the result and the every-group batch they share).
"""
from .greedy_solver import greedy
from .iht_solver import IHT_INITS, proximal_iht  # noqa: F401
from .prox import PROX_RULES, PoolVectors, hard_threshold_prox, prox_score, topk_lowest_index  # noqa: F401

__all__ = ["greedy", "proximal_iht", "hard_threshold_prox", "topk_lowest_index", "PoolVectors"]
