"""Sparse-approximation queries over a pool that lives on a Dask cluster: the public names.

The work is done by the sampler's one pipeline with the Dask backend
(:mod:`sparse_query.backends`): the model runs on the workers block by block
(:mod:`~sparse_query.backends.dask_blocks`), the pool's embedding -- the factors ``A (n, K)``
and ``H (n, d)`` of the gradient embedding, or its ``(n, m')`` sketch -- stays there as row
chunks behind a :class:`DaskOperator` (:mod:`~sparse_query.backends.dask_operator`), proximal
IHT keeps its length-``n`` vectors there (:class:`DaskPoolVectors`,
:mod:`~sparse_query.backends.dask_vectors`), and the solvers of :mod:`sparse_query.solvers`
run on the client. Copies are grouped and IHT has both of its starts, as in memory, so the
same inputs, seed and sketch give the same batch as the single-machine path (tests check this
on a pool split over several worker processes). The client holds the ``b``-sparse iterates,
the support rows and a few numbers per pool row (``sigma`` and ``sigma^2``, a hash key and a
group id, the row cache's index: a few ``int64`` a row, not measured); greedy also gathers its
gradient (``n`` values) at each step.

The entry point is :class:`~sparse_query.SparseApproxSampler` itself: give it a
``dask.array`` pool. This module holds the pieces underneath: :func:`proximal_iht_dask` and
:func:`greedy_dask` (the solvers on factors given as dask arrays), :func:`dask_last_layer`,
:func:`dask_gradient_embedding`, :class:`DaskOperator`, :class:`DaskPoolVectors` and
:class:`DaskQueryError`; :func:`query_dask` is a deprecated wrapper around the sampler.

Pointing it at your own cluster
-------------------------------
Start a scheduler and workers (``dask scheduler`` on one machine, ``dask worker
tcp://scheduler:8786`` on the others, or any Dask deployment: Kubernetes, SLURM via
dask-jobqueue, ...), make ``sparse_query`` and your model's code importable on every worker, and
connect from the client before querying::

    from distributed import Client
    from sparse_query import SparseApproxSampler
    client = Client("tcp://scheduler:8786")
    X_pool = dask.array.from_zarr("pool.zarr")            # rows chunked, e.g. 32768 per chunk
    idx = SparseApproxSampler(sketch_dim=128, random_state=0).fit_query(X_pool, model, 1000)

The sampler uses the current default client (the last one created; ``with
client.as_current():`` chooses another). Every round trip waits at most 600 seconds, or the
value of Dask's configuration key ``"sparse_query.dask.timeout"`` (``with
dask.config.set({"sparse_query.dask.timeout": 60}):``); a worker that dies while running one of
our tasks (after Dask's own retries, ``distributed.scheduler.allowed-failures``), a scheduler
that goes away or a step that exceeds the timeout raise :class:`DaskQueryError` instead of
hanging.

Dask and distributed are an optional extra (``pip install '.[dask]'`` in a clone), imported only
inside the functions that need them.
"""
from __future__ import annotations

import time

import numpy as np

from ._utils import check_float, check_int, check_option, torch_generator
from .backends.dask_blocks import dask_gradient_embedding, dask_last_layer
from .backends.dask_cluster import (
    DEFAULT_TIMEOUT,
    DaskQueryError,
    gather,
    import_dask,
    resolve_client,
)
from .backends.dask_operator import DaskOperator
from .backends.dask_vectors import DaskPoolVectors
from .problem import SparseApproxProblem

__all__ = [
    "DaskQueryError",
    "DaskOperator",
    "DaskPoolVectors",
    "dask_last_layer",
    "dask_gradient_embedding",
    "proximal_iht_dask",
    "greedy_dask",
    "query_dask",
]

_SOLVERS = ("iht", "greedy")


def _solve_dask(solver, A, H, sigma, b, *, alpha, beta, sketch_dim, random_state, client,
                dtype, timeout, solver_kwargs):
    """The sampler's solve step on factors given as dask arrays: the operator on the
    workers, the problem (copies grouped) on the client, the sketch of its rows, the solver."""
    from .solvers import greedy, proximal_iht

    _, da, _ = import_dask()
    client = resolve_client(client)
    if sketch_dim is not None:
        sketch_dim = check_int(sketch_dim, "sketch_dim", min_val=1)
    arrays = (A,) if H is None else (A, H)
    if isinstance(sigma, da.Array):
        if sigma.ndim != 1:
            raise ValueError(f"sigma must be 1-D (n,); got shape {sigma.shape}.")
        op = DaskOperator._build(client, dtype, timeout, *arrays, extra=[sigma])
        sig = gather(client, op._extra, timeout)[0]
    else:
        op = DaskOperator._build(client, dtype, timeout, *arrays)
        sig = sigma
    pool = None
    try:
        t0 = time.perf_counter()
        problem = SparseApproxProblem(op, np.asarray(sig), b, alpha=alpha, beta=beta,
                                      device="cpu", dtype=op.dtype)
        if sketch_dim is not None:
            problem = problem.sketched(sketch_dim, generator=torch_generator(random_state))
        if solver == "iht":
            pool = DaskPoolVectors(problem)
            res = proximal_iht(problem, _pool=pool, **solver_kwargs)
        else:
            res = greedy(problem, **solver_kwargs)
        res.info = {"n_chunks": len(op.chunks), "solve_s": time.perf_counter() - t0,
                    "n_workers": len(client.scheduler_info().get("workers", {}))}
        return res
    finally:
        if pool is not None:
            pool.close()
        op.close()  # with the operators derived from it (copies removed, sketch)


def proximal_iht_dask(A, H, sigma, b: int, *, alpha: float = 1.0, beta: float = 1e-3,
                      max_iter: int = 100, tol: float = 1e-6, prox: str = "exact",
                      patience: int | None = 10, init: str = "zero",
                      sketch_dim: int | None = None,
                      random_state=None, client=None, dtype="float32",
                      timeout: float = DEFAULT_TIMEOUT):
    """Proximal IHT (:func:`sparse_query.solvers.proximal_iht`) on a pool held by a Dask cluster.

    Parameters
    ----------
    A : dask.array.Array of shape (n, K)
        Class factors ``a_j`` of a factored embedding, or the dense embedding ``(n, m)`` when
        ``H`` is None. Rows chunked; each chunk becomes one task result on a worker.
    H : dask.array.Array of shape (n, d) or None
        Feature factors ``h_j`` (rechunked to ``A``'s rows).
    sigma : dask.array.Array or array-like of shape (n,)
    b : int
        Batch size.
    alpha, beta, max_iter, tol, prox, patience
        As in :class:`~sparse_query.problem.SparseApproxProblem` and ``proximal_iht``.
    init : {"zero", "fallback", "both", "spread"}, default="zero"
        IHT's start (:func:`~sparse_query.solvers.proximal_iht`): ``"zero"`` is the paper's
        zero start; ``"fallback"`` also runs the best of 4 hashed batches when the zero
        start's batch is not below it (the lower objective wins; what
        :class:`~sparse_query.SparseApproxSampler` uses); ``"both"`` always runs the second
        start.
    sketch_dim : int or None, default=None
        Sketch the embedding to this dimension on the workers (``None``: exact); the sketch is
        drawn from ``torch_generator(random_state)``, exactly like the single-machine path.
    random_state : None, int or numpy Generator
    client : distributed.Client or None
        ``None``: the default client.
    dtype : {"float32", "float64"}, default="float32"
    timeout : float, default=600
        Seconds any single round trip to the cluster may take before :class:`DaskQueryError`.

    Returns
    -------
    SolverResult
        As ``proximal_iht``, with an extra ``info`` dict (``n_chunks``, ``n_workers``,
        ``solve_s``).
    """
    check_option(prox, "prox", ("exact", "paper"))
    return _solve_dask("iht", A, H, sigma, b, alpha=alpha, beta=beta, sketch_dim=sketch_dim,
                       random_state=random_state, client=client, dtype=dtype, timeout=timeout,
                       solver_kwargs=dict(max_iter=max_iter, tol=tol, prox=prox,
                                          patience=patience, init=init))


def greedy_dask(A, H, sigma, b: int, *, alpha: float = 1.0, beta: float = 1e-3,
                sketch_dim: int | None = None, random_state=None, client=None,
                dtype="float32", timeout: float = DEFAULT_TIMEOUT):
    """Greedy (:func:`sparse_query.solvers.greedy`) on a pool held by a Dask cluster.

    One round trip per selected point; parameters as in :func:`proximal_iht_dask`.
    """
    return _solve_dask("greedy", A, H, sigma, b, alpha=alpha, beta=beta, sketch_dim=sketch_dim,
                       random_state=random_state, client=client, dtype=dtype, timeout=timeout,
                       solver_kwargs={})


def query_dask(estimator, X_pool, n_instances: int, *, solver: str = "auto",
               alpha: float = 0.1, beta: float = 1e-3, max_iter: int = 100, tol: float = 1e-4,
               patience: int | None = 10, init: str | None = None, temperature=0.01,
               sketch_dim="auto", random_state=None, client=None, dtype="float32",
               batch_size: int = 1024, timeout: float = DEFAULT_TIMEOUT):
    """Choose a batch from a pool held as a dask array (deprecated: use the sampler).

    .. deprecated:: 0.1.0
        ``query_dask`` is deprecated and will be removed in 0.3.0.
        :class:`~sparse_query.SparseApproxSampler` takes a ``dask.array`` pool directly::

            with client.as_current(), dask.config.set({"sparse_query.dask.timeout": 600}):
                idx = SparseApproxSampler(random_state=0).fit_query(X_pool, model, 100)

    Runs ``SparseApproxSampler(solver=solver, alpha=alpha, ..., embedding="gradient")
    .fit_query(X_pool, estimator, n_instances)`` with ``client`` as the current Dask client
    and ``timeout`` as ``"sparse_query.dask.timeout"``: the same batch as the sampler for the
    same parameters, with the sampler's defaults. The model runs on each row block of
    ``X_pool`` on the workers, the gradient embedding stays there as chunks, and the solver
    runs on the client.

    Parameters
    ----------
    estimator : object
        Fitted model with a last linear layer (see :func:`sparse_query.adapters.last_layer_outputs`).
    X_pool : dask.array.Array of shape (n_samples, ...)
        The pool, chunked along rows.
    n_instances : int
        Batch size ``b``.
    solver, alpha, beta, max_iter, tol, patience, temperature, sketch_dim, random_state, \
dtype, batch_size
        As in :class:`~sparse_query.SparseApproxSampler`, with its defaults (``alpha`` is
        scaled by ``n^2 / b``, the sampler's ``alpha_scale="pool"``).
    init : None or "fallback", default=None
        Deprecated. IHT's start is the sampler's (``"fallback"``); any other value raises.
    client : distributed.Client or None, default=None
        ``None``: the current default client.
    timeout : float, default=600
        Seconds any single round trip may take.

    Returns
    -------
    indices : ndarray of shape (n_instances,), int64
    info : dict
        ``weights``, ``objective``, ``n_iter``, ``converged``, ``history`` (the sampler's
        ``weights_``, ``objective_``, ...), ``n_chunks`` (row blocks of ``X_pool``),
        ``n_workers``, ``time_s``.

    Raises
    ------
    DaskQueryError
        When a worker dies, the scheduler goes away or a step exceeds ``timeout``.

    Examples
    --------
    >>> from distributed import Client, LocalCluster              # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, processes=True))  # doctest: +SKIP
    >>> X = dask.array.from_array(X_pool, chunks=(10_000, -1))     # doctest: +SKIP
    >>> idx = SparseApproxSampler(random_state=0).fit_query(X, model, 100)  # doctest: +SKIP
    """
    import warnings

    from .backends.dask_backend import TIMEOUT_CONFIG
    from .sampler import SparseApproxSampler

    warnings.warn(
        "query_dask is deprecated and will be removed in sparse_query 0.3.0; use "
        "SparseApproxSampler(...).fit_query(X_pool, estimator, n_instances), which takes a "
        "dask.array pool directly (inside `with client.as_current():` to choose the client, "
        "and `dask.config.set({'sparse_query.dask.timeout': seconds})` for the timeout).",
        FutureWarning, stacklevel=2,
    )
    dask, da, _ = import_dask()
    if init not in (None, "fallback"):
        raise ValueError(
            f"init={init!r} is no longer supported: query_dask runs SparseApproxSampler, whose "
            "IHT start is 'fallback'. Leave init unset, or run proximal_iht_dask(A, H, sigma, "
            f"b, init={init!r}) on the factors of dask_gradient_embedding(*dask_last_layer("
            "estimator, X_pool)) for that start."
        )
    if not isinstance(X_pool, da.Array):
        raise TypeError(f"X_pool must be a dask.array.Array; got {type(X_pool).__name__}. For "
                        "an in-memory pool use SparseApproxSampler directly.")
    timeout = check_float(timeout, "timeout", min_val=0.0, min_inclusive=False)
    client = resolve_client(client)
    sampler = SparseApproxSampler(
        solver=solver, alpha=alpha, beta=beta, max_iter=max_iter, tol=tol, patience=patience,
        embedding="gradient", temperature=temperature, sketch_dim=sketch_dim,
        batch_size=batch_size, dtype=dtype, random_state=random_state,
    )
    t0 = time.perf_counter()
    with client.as_current(), dask.config.set({TIMEOUT_CONFIG: timeout}):
        idx = sampler.fit_query(X_pool, estimator, n_instances)
    info = dict(weights=sampler.weights_, objective=sampler.objective_, n_iter=sampler.n_iter_,
                converged=sampler.converged_, history=sampler.history_,
                n_chunks=len(X_pool.chunks[0]),
                n_workers=len(client.scheduler_info().get("workers", {})),
                time_s=time.perf_counter() - t0)
    return np.asarray(idx, dtype=np.int64), info
