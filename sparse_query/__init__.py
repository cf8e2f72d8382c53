"""sparse_query: batch active learning from the perspective of sparse approximation.

The public names:

- :class:`SparseApproxSampler`, :data:`sparse_greedy`, :data:`sparse_iht` -- the query strategy
  (scikit-learn estimator and modAL query strategy);
- the paper's baselines behind the same signature: :class:`RandomSampling`,
  :class:`EntropySampling`, :class:`MarginSampling`, :class:`LeastConfidenceSampling`,
  :class:`BALD`, :class:`BatchBALD`, :class:`KCenterGreedy`, :class:`BADGE`,
  :class:`BayesianCoreset`;
- the maths, for direct use: :class:`SparseApproxProblem`, :func:`greedy`,
  :func:`proximal_iht`.

Submodules: ``problem``, ``operators``, ``solvers``, ``embeddings``, ``adapters``, ``nn``,
``baselines``, ``benchmark``.
"""
from .baselines import (
    BADGE,
    BALD,
    BatchBALD,
    BayesianCoreset,
    EntropySampling,
    KCenterGreedy,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
)
from .problem import SolverResult, SparseApproxProblem
from .sampler import SparseApproxSampler, sparse_greedy, sparse_iht
from .solvers import greedy, proximal_iht

__version__ = "0.1.0"

__all__ = [
    "SparseApproxSampler",
    "sparse_greedy",
    "sparse_iht",
    "RandomSampling",
    "EntropySampling",
    "MarginSampling",
    "LeastConfidenceSampling",
    "BALD",
    "BatchBALD",
    "KCenterGreedy",
    "BADGE",
    "BayesianCoreset",
    "SparseApproxProblem",
    "SolverResult",
    "greedy",
    "proximal_iht",
    "__version__",
]
