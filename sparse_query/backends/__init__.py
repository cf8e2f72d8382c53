"""Where the pool lives: one backend per pool, chosen once, hands the sampler an operator.

The sampler's pipeline is the same for every pool -- adapt the model, build the embedding,
build the operator, solve -- and this package is the one place that knows where the pool's
rows are. :func:`pool_backend` picks the backend from the pool's type:

* :class:`~sparse_query.backends.memory.InMemoryBackend`: numpy / torch arrays, ``scipy.sparse``
  matrices, skorch's dict pools, anything the adapters read directly. The model runs in
  chunks on the client; the embedding becomes a ``DenseOperator``, ``FactoredOperator`` or
  (sparse features) ``SparseFactoredOperator`` on the solver's device.
* :class:`~sparse_query.backends.dask_backend.DaskBackend`: a ``dask.array`` pool. The model
  runs on the workers, block by block (:mod:`~sparse_query.backends.dask_blocks`), the
  embedding stays there as row chunks behind a
  :class:`~sparse_query.backends.dask_operator.DaskOperator`, and IHT's length-``n`` vectors
  stay there too (:mod:`~sparse_query.backends.dask_vectors`); the client talks to the cluster
  through :mod:`~sparse_query.backends.dask_cluster`.

The interface (:class:`PoolBackend`) is small: ``gradient`` and ``posterior`` run the model
over the pool and return a :class:`PoolEmbedding` (operator, ``sigma``, dimension) or None
when the model knows a single class; ``leaf_gradient``, ``committee_gradient`` and
``input_gradient`` do the same for tree ensembles, committees and other classifiers with
``predict_proba`` (or raise, saying why a backend cannot); ``solve_device``, ``plan_by_cost`` and
``auto_solver`` are the backend's say in where and how the solver runs; ``pool_vectors`` gives IHT its vectors.
The solvers, the sketch and the baselines see only operators. A new kind of pool is a new
backend here and one line in :func:`pool_backend`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._base import is_dask_array
from ..problem import PoolOperator

__all__ = ["PoolBackend", "PoolEmbedding", "SINGLE_CLASS", "pool_backend"]


@dataclass
class PoolEmbedding:
    """What a backend hands the sampler: the pool's embedding as an operator.

    Attributes
    ----------
    operator : PoolOperator
        The ``e_j`` of every pool row, wherever they are held.
    sigma : torch.Tensor of shape (n,)
        The spreads ``sigma_j`` (on the client: the problem needs them there).
    dim : int
        Dimension of the exact embedding (for ``sketch_dim="auto"``).
    uninformative : str or None
        Why the embedding carries no information (then ``operator`` and ``sigma`` are None
        and the sampler returns a uniformly random batch with this as its warning).
    """

    operator: PoolOperator | None
    sigma: torch.Tensor | None
    dim: int
    uninformative: str | None = None


#: the warning of a model that knows a single class (a backend's ``None`` embedding)
SINGLE_CLASS = ("The estimator knows a single class, so every embedding is zero and carries no "
                "information; returning a uniformly random batch. Label points of another class "
                "(or seed the labeled set with every class) to use the sparse approximation.")


class PoolBackend:
    """Runs the model over the pool's rows and holds the embedding they give.

    Parameters
    ----------
    X : object
        The pool, as the user passed it.
    batch_size : int
        Pool rows per forward pass.
    dtype : torch.dtype
        The solver's dtype (a backend that converts as it stores uses it).
    progress : bool
        Show progress bars where the backend can.
    """

    #: whether ``solver="auto"`` and ``sketch_dim="auto"`` are chosen by the operation count
    #: of :func:`sparse_query._plan._cost` (True), or by :attr:`auto_solver` and the size
    #: rule alone (False: a backend whose every pass is a round trip)
    plan_by_cost: bool = True
    #: the solver ``solver="auto"`` becomes when ``plan_by_cost`` is False
    auto_solver: str = "iht"

    def __init__(self, X, *, batch_size: int, dtype: torch.dtype, progress: bool = False):
        self.X = X
        self.batch_size = batch_size
        self.dtype = dtype
        self.progress = progress

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def gradient(self, est, temperature) -> PoolEmbedding | None:
        """The last-layer gradient embedding (paper eq. 14); ``temperature()`` gives ``T`` and
        is called only when the model knows at least two classes (None otherwise)."""
        raise NotImplementedError

    def posterior(self, est, *, n_samples: int, random_state) -> PoolEmbedding | None:
        """The posterior loss-sample embedding (eq. 13); None for a single-class model."""
        raise NotImplementedError

    def leaf_gradient(self, est, temperature, *, class_blocks: bool,
                      input_weight: float | None = None) -> PoolEmbedding | None:
        """The gradient embedding on a tree ensemble's one-hot leaf indicators
        (:mod:`sparse_query.adapters._trees`); ``temperature`` as in :meth:`gradient`;
        ``class_blocks``: boosting's class-block gradients instead of the full outer product;
        ``input_weight`` (not None): the trees' inputs join the leaves at that weight
        (:mod:`sparse_query.embeddings.leaf_inputs`)."""
        raise NotImplementedError

    def committee_gradient(self, est, temperature) -> PoolEmbedding | None:
        """Every committee member's last-layer gradients under the committee's labels;
        ``temperature`` as in :meth:`gradient`."""
        raise NotImplementedError

    def input_gradient(self, est, temperature) -> PoolEmbedding | None:
        """The input-space gradient embedding of a classifier with ``predict_proba``
        (:mod:`sparse_query.embeddings.input_gradient`); ``temperature`` as in :meth:`gradient`."""
        raise NotImplementedError

    def solve_device(self, device: torch.device) -> torch.device:
        """Where the problem and the solver live, given the sampler's ``device``."""
        return device

    def pool_vectors(self, problem):
        """IHT's length-``n`` vectors for ``problem`` (None: the solver's own tensors)."""
        return None

    def release(self, operator) -> None:
        """Free what a query derived from ``operator`` (e.g. chunks held on a cluster)."""


def pool_backend(X, **kw) -> PoolBackend:
    """The backend for the pool ``X`` (see the module docstring); ``kw`` as :class:`PoolBackend`."""
    if is_dask_array(X):
        from .dask_backend import DaskBackend

        return DaskBackend(X, **kw)
    from .memory import InMemoryBackend

    return InMemoryBackend(X, **kw)
