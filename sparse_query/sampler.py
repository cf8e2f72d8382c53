"""``SparseApproxSampler``: the paper's query strategy as a scikit-learn estimator and modAL strategy.

The sampler wires the three layers together: an adapter turns the fitted model and the pool
into features, logits or posterior draws; an embedding turns those into ``e_j`` and
``sigma_j``; a solver picks the batch.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from . import adapters
from ._base import QueryStrategy
from ._utils import (
    check_float,
    check_int,
    check_n_jobs,
    check_option,
    numpy_rng,
    resolve_device,
    resolve_dtype,
    thread_limit,
    torch_generator,
)
from ._plan import AUTO_SKETCH_DIM, AUTO_SKETCH_MIN_DIM, AUTO_SKETCH_MIN_POOL, plan  # noqa: F401
from ._temperature_cache import (  # noqa: F401 - tests clear the caches here
    _RELIABILITIES,
    _TEMPERATURES,
    auto_temperature,
)
from .backends import SINGLE_CLASS, pool_backend
from .problem import SparseApproxProblem
from .solvers import IHT_INITS, PROX_RULES, greedy, proximal_iht
from ._kinds import choose_embedding
from ._reliability import (TREE_INPUT_WEIGHT, check_alpha_reliability, labeled_reliability,
                           reliability_factor, tree_embedding)

__all__ = ["SparseApproxSampler", "sparse_greedy", "sparse_iht"]

SOLVERS = ("auto", "greedy", "iht")
EMBEDDINGS = ("auto", "gradient", "leaf-gradient", "leaf-input-gradient", "committee-gradient",
              "posterior", "input-gradient")
ALPHA_SCALES = ("pool", "none")


class SparseApproxSampler(QueryStrategy):
    """Batch active learning by sparse approximation (greedy or proximal IHT).

    Chooses a batch whose weighted loss approximates the loss of the whole pool (bias) while
    removing as much label uncertainty as possible (variance): Problem 2 of the paper, solved
    by Algorithm 1 (``solver="greedy"``) or Algorithm 2 (``solver="iht"``). The formulas are in
    :mod:`sparse_query.problem`, :mod:`sparse_query.solvers` and :mod:`sparse_query.embeddings`;
    the user guide lists where this implementation differs from the paper.

    Use it as a modAL query strategy (``ActiveLearner(..., query_strategy=sampler)``) or on its
    own: ``sampler.fit(X_pool, estimator).query(n_instances)``.

    Parameters
    ----------
    solver : {"auto", "greedy", "iht"}, default="auto"
        Greedy adds one point per step; proximal IHT updates the whole batch per pass over the
        pool. ``"auto"`` takes whichever costs fewer multiply-adds per pool row (greedy for
        small batches, IHT for large ones and on a Dask pool); the choice is in ``solver_``.
    alpha : float, default=0.1
        Weight of the variance (uncertainty) term; ``0`` is representation only. How it enters
        the objective depends on ``alpha_scale``.
    alpha_scale : {"pool", "none"}, default="pool"
        ``"none"`` passes ``alpha`` to Problem 2 as written in the paper, where the variance
        term shrinks like ``1/n^2``; ``"pool"`` uses ``alpha * n^2 / b``, the same trade-off
        at every pool and batch size.
    alpha_reliability : {"auto", None, "held-out", "held-out-squared"}, default="auto"
        Multiplies ``alpha`` by ``kappa`` (``"held-out"``) or ``kappa^2``, the model's
        chance-corrected accuracy on labeled points it did not see. The explicit rules measure
        it by 3-fold cross-validation (three fits of untrained copies per :meth:`fit`).
        ``"auto"`` never refits: it reads a bootstrap forest's or bagging ensemble's
        out-of-bag predictions (labeled set = the one it was fitted on) or a skorch net's last
        ``valid_acc``, and otherwise keeps ``alpha`` as given; ``reliability_source_`` says
        which. ``None``: ``alpha`` as given.
    beta : float, default=1e-3
        Weight of the stabiliser ``beta ||w - 1||^2``.
    tau : float, default=1.0
        Greedy's step size in its first-order score.
    max_iter : int, default=100
        IHT iterations at most.
    tol : float, default=1e-4
        IHT stops when the batch is unchanged and the weights move by less than this
        (relative to ``max(1, max|w|)``).
    patience : int or None, default=10
        IHT also stops once the batch has not changed for this many iterations.
    prox : {"exact", "paper"}, default="exact"
        IHT's proximal step; ``"paper"`` reproduces the paper's (suboptimal) rule.
    iht_init : {"fallback", "zero", "both", "spread"}, default="fallback"
        IHT's start (:func:`~sparse_query.proximal_iht`'s ``init``): ``"zero"`` is the paper's
        single start; ``"fallback"`` adds the second start only when the first batch is not
        below a random-like one; ``"both"`` always runs both (about twice the solve time).
    embedding : {"auto", "gradient", "leaf-gradient", "leaf-input-gradient", \
"committee-gradient", "posterior", "input-gradient"}, default="auto"
        ``"gradient"``: expected last-layer gradients (eq. 14); ``"leaf-gradient"``: the same
        on a tree ensemble's one-hot leaves; ``"leaf-input-gradient"``: leaves and standardized
        inputs; ``"committee-gradient"``: every committee member's gradients under the
        committee's label distribution; ``"posterior"``: loss samples over posterior draws
        (eq. 13); ``"input-gradient"``: a softmax head on the final step's inputs, from the
        model's own ``predict_proba``. ``"auto"`` picks per model family (the user guide's
        models page): tree ensembles get leaves (and inputs when a measured ``kappa`` is below
        0.2 on 60 labels or more), committees the committee gradient, models with a last
        layer the gradient, other posteriors the posterior, any other classifier with
        ``predict_proba`` the input gradient.
    temperature : "auto" or float, default=0.01
        ``T`` of the label distribution ``P_j = softmax(z_j / T)``: ``1`` is pure uncertainty,
        ``0`` BADGE's hallucinated labels. ``"auto"`` fits ``T`` by temperature scaling on
        ``validation_data``, else on a copy of the model fitted on 70% of the labeled set
        (cached per fitted model and labeled set; ``temperature_refit_``).
    validation_data : (X_val, y_val), optional
        Labeled data for ``temperature="auto"``; otherwise a split of the labeled set is used.
    n_posterior_samples : int, default=20
        Posterior draws for MC dropout and variational layers (ensembles use their members).
    sketch_dim : "auto", int or None, default="auto"
        Solve on a random sketch of the embedding of this dimension
        (:func:`~sparse_query.problem.sketch`); ``None`` is exact. ``"auto"`` sketches to 256
        on pools over 10,000 points with embeddings over 1,024 dimensions when an operation
        count finds it cheaper (on a Dask pool whenever those sizes hold).
    batch_size : int, default=1024
        Pool rows per inference chunk.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where the solver runs; ``"auto"`` picks CUDA when available.
    dtype : {"float32", "float64"}, default="float32"
    n_jobs : None, -1 or int, default=None
        Threads for torch and the BLAS / OpenMP libraries while :meth:`fit` and :meth:`query`
        run, the model's forward passes included (restored afterwards). ``None`` is one
        thread, ``-1`` every core.
    random_state : None, int or numpy Generator, default=None
        Seeds posterior draws, the temperature split, the sketch and ``alpha_reliability``'s
        folds (0 when None: one batch per deterministic model). Never touches global seeds.
    verbose : int, default=0
        ``> 0`` prints timings; ``> 1`` also shows progress bars over the pool.

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool's embedding (private; pool-sized) so that
    :meth:`query` can be called, possibly several times. The embedding may read the pool's own
    memory (a tensor or numpy pool is borrowed, not copied): :meth:`query` refuses a pool
    edited in place since :meth:`fit` (a tensor's version counter, a checksum of a numpy,
    DataFrame or sparse pool). :meth:`fit_query` and the modAL call
    run on a private copy and keep only the attributes listed here (all small), never the
    embedding, so a ready-made object such as ``sparse_greedy`` may be shared by several
    learners and threads and pickles small.

    n_pool_ : int
        Pool size seen by :meth:`fit`.
    embedding_kind_ : str
        What was used: ``"gradient"``, ``"leaf-gradient"``, ``"leaf-input-gradient"``,
        ``"committee-gradient"``, ``"posterior"`` or ``"input-gradient"``.
    temperature_ : float or None
        The temperature used (None for the posterior embedding).
    temperature_source_ : str or None
        ``"fixed"``, ``"validation"``, ``"held-out"`` or ``"fallback: ..."``.
    alpha_reliability_ : str or None
        The rule the last :meth:`fit` applied: ``"held-out"``, ``"held-out-squared"`` or None
        (``alpha`` as given: ``alpha_reliability=None``, or ``"auto"`` fell back).
    reliability_, heldout_accuracy_ : float or None
        ``kappa`` and the held-out accuracy it comes from (None without a rule).
    reliability_source_ : str or None
        ``"out-of-bag"``, ``"validation history"``, ``"held-out"``, ``"fallback: <reason>"``
        (``"auto"`` kept ``alpha`` as given) or None (``alpha_reliability=None``).
    temperature_refit_ : bool
        Whether the last fit trained a clone of the model for ``temperature="auto"`` (False
        when the calibration of the same fitted model was reused).
    indices_ : ndarray of shape (n_instances,), int64
        The last batch.
    sketch_dim_ : int or None
        The sketch dimension used by the last :meth:`query` (``sketch_dim="auto"`` resolved).
    solver_ : str
        The solver used by the last :meth:`query` (``solver="auto"`` resolved).
    alpha_effective_ : float
        The ``alpha`` given to Problem 2 by the last :meth:`query` (see ``alpha_scale``).
    weights_ : ndarray of shape (n_instances,)
        Solver weights of the batch.
    objective_ : float
        Objective of the batch (see :class:`~sparse_query.problem.SolverResult`).
    n_iter_ : int
    converged_ : bool
    history_ : list of float
        Objective per solver step.
    result_ : SolverResult
        The solver's whole answer (:class:`~sparse_query.problem.SolverResult`).
    query_scores_ : ndarray of shape (n_instances,)
        The batch's solver weights (NaN for a random batch), as the modAL 0.4.2.1 call returns.
    embedding_time_ : float
        Seconds spent in :meth:`fit` on inference and the embedding (refits excluded).
    refit_time_ : float
        Seconds :meth:`fit` spent on ``temperature="auto"`` and ``alpha_reliability``: fitting
        copies of the model, or reading a bootstrap ensemble's out-of-bag predictions (near 0
        when neither applies or a cached result was reused).
    solve_time_ : float
        Seconds spent in the solver by the last :meth:`query`.

    Notes
    -----
    Bad input raises before any work: ``n_instances`` outside ``[1, pool size]``, an empty pool,
    NaN/inf in the pool, a pool whose feature count differs from the fitted estimator's, an
    unfitted estimator (``NotFittedError``), and a model offering no last linear layer, no
    posterior draws and no ``predict_proba`` (:class:`~sparse_query.adapters.EmbeddingNotSupportedError`,
    naming the model, a pipeline's final step included).

    Copies in the pool (rows whose factors and ``sigma`` agree to about five significant
    digits, :mod:`sparse_query.duplicates`) are one candidate: a batch never holds two of
    them while at least ``n_instances`` distinct rows exist, a departure from the paper's
    objective, which credits every copy's uncertainty separately. With fewer distinct rows the
    batch takes all of them plus copies and warns. The same holds on a Dask pool.

    A model that knows a single class, or whose probabilities are one-hot on the whole pool
    (a 1-nearest-neighbour classifier), has all-zero embeddings: the sampler warns
    (``UserWarning``) and returns a uniformly random batch seeded by ``random_state``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sparse_query import SparseApproxSampler
    >>> X, y = load_digits(return_X_y=True)
    >>> model = LogisticRegression(max_iter=500).fit(X[:100], y[:100])
    >>> sampler = SparseApproxSampler(solver="iht", device="cpu", random_state=0)
    >>> idx = sampler.fit(X[100:], model).query(10)
    >>> idx.shape, idx.dtype
    ((10,), dtype('int64'))
    """

    _kept_attributes = QueryStrategy._kept_attributes + (
        "embedding_kind_", "temperature_", "temperature_source_", "temperature_refit_",
        "alpha_reliability_", "reliability_", "heldout_accuracy_", "reliability_source_",
        "solver_", "sketch_dim_",
        "alpha_effective_", "weights_", "objective_", "n_iter_", "converged_", "history_",
        "result_", "embedding_time_", "refit_time_", "solve_time_",
    )

    def __init__(self, solver: str = "auto", *, alpha: float = 0.1, alpha_scale: str = "pool",
                 alpha_reliability="auto", beta: float = 1e-3,
                 tau: float = 1.0, max_iter: int = 100, tol: float = 1e-4, patience=10, prox: str = "exact",
                 iht_init: str = "fallback",
                 embedding: str = "auto", temperature=0.01,
                 validation_data=None, n_posterior_samples: int = 20, sketch_dim="auto",
                 batch_size: int = 1024, device="auto", dtype="float32", random_state=None,
                 n_jobs=None, verbose: int = 0):
        self.solver = solver
        self.alpha = alpha
        self.alpha_scale = alpha_scale
        self.alpha_reliability = alpha_reliability
        self.beta = beta
        self.tau = tau
        self.max_iter = max_iter
        self.tol = tol
        self.patience = patience
        self.prox = prox
        self.iht_init = iht_init
        self.embedding = embedding
        self.temperature = temperature
        self.validation_data = validation_data
        self.n_posterior_samples = n_posterior_samples
        self.sketch_dim = sketch_dim
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- validation ------------------------------------------------------------------------
    def _validate_params(self):
        check_option(self.solver, "solver", SOLVERS)
        check_float(self.alpha, "alpha", min_val=0.0)
        check_option(self.alpha_scale, "alpha_scale", ALPHA_SCALES)
        check_alpha_reliability(self.alpha_reliability)
        check_float(self.beta, "beta", min_val=0.0)
        check_float(self.tau, "tau", min_val=0.0, min_inclusive=False)
        check_int(self.max_iter, "max_iter", min_val=1)
        check_float(self.tol, "tol", min_val=0.0)
        if self.patience is not None:
            check_int(self.patience, "patience", min_val=1)
        check_option(self.prox, "prox", PROX_RULES)
        check_option(self.iht_init, "iht_init", IHT_INITS)
        check_option(self.embedding, "embedding", EMBEDDINGS)
        if isinstance(self.temperature, str):
            if self.temperature != "auto":
                raise ValueError(
                    f"temperature={self.temperature!r} must be 'auto' or a number >= 0 "
                    "(0 is the hallucinated-label limit)."
                )
        else:
            check_float(self.temperature, "temperature", min_val=0.0)
        if self.validation_data is not None:
            if not isinstance(self.validation_data, (tuple, list)) or len(self.validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val) or None.")
        check_int(self.n_posterior_samples, "n_posterior_samples", min_val=2)
        if self.sketch_dim is not None and not (
            isinstance(self.sketch_dim, str) and self.sketch_dim == "auto"
        ):
            if isinstance(self.sketch_dim, str):
                raise ValueError(
                    f"sketch_dim={self.sketch_dim!r} must be 'auto', None or a positive integer."
                )
            check_int(self.sketch_dim, "sketch_dim", min_val=1)
        check_int(self.batch_size, "batch_size", min_val=1)
        self._device = resolve_device(self.device)
        self._dtype = resolve_dtype(self.dtype)
        self._n_jobs = check_n_jobs(self.n_jobs)
        numpy_rng(self.random_state)  # type and range check
        if isinstance(self.verbose, bool):
            self._verbose = int(self.verbose)
        else:
            self._verbose = check_int(self.verbose, "verbose", min_val=0)

    # -- embedding ---------------------------------------------------------------------------
    def _fit(self, X_pool, classifier, X_labeled, y_labeled):
        with thread_limit(self._n_jobs):
            self._fit_embedding(X_pool, classifier, X_labeled, y_labeled)

    def _fit_embedding(self, X_pool, classifier, X_labeled, y_labeled):
        # one path for every pool: adapt the model, let the pool's backend run it over the
        # rows and hold the embedding as an operator, solve on that operator (_query).
        # Where the rows live (memory, scipy.sparse, a Dask cluster) is the backend's concern
        t0 = time.perf_counter()
        refit = [0.0]  # seconds in the refits of temperature="auto" and alpha_reliability

        def timed(f, *args, **kwargs):
            t = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                refit[0] += time.perf_counter() - t

        adapters.check_fitted(classifier)
        est = adapters.unwrap_estimator(classifier)
        kind = choose_embedding(est, self.embedding)
        rel = None
        if (kind == "leaf-gradient" and self.embedding == "auto"  # near chance: inputs too
                and len(getattr(est, "classes_", ())) > 1):
            rel = timed(labeled_reliability, self.alpha_reliability, est, classifier,
                        X_labeled, y_labeled, self.random_state)
            kind = tree_embedding(rel)
        self._backend = pool_backend(X_pool, batch_size=self.batch_size, dtype=self._dtype,
                                     progress=self._verbose > 1,
                                     **self.__dict__.get("_backend_options", {}))
        self.temperature_ = self.temperature_source_ = None
        self.temperature_refit_, self._uninformative = False, None

        def temperature():  # resolved only for a model that knows two classes or more
            T, self.temperature_source_, self.temperature_refit_ = timed(
                auto_temperature, self.temperature, est, classifier, X_labeled, y_labeled,
                self.validation_data, self.random_state, kind=kind)
            self.temperature_ = float(T)
            return T

        if kind == "gradient":
            emb = self._backend.gradient(est, temperature)
        elif kind == "posterior":
            emb = self._backend.posterior(est, n_samples=self.n_posterior_samples,
                                          random_state=self.random_state)
        elif kind == "committee-gradient":
            emb = self._backend.committee_gradient(est, temperature)
        elif kind == "input-gradient":
            emb = self._backend.input_gradient(est, temperature)
        else:
            emb = self._backend.leaf_gradient(
                est, temperature, class_blocks=True,
                input_weight=TREE_INPUT_WEIGHT if kind == "leaf-input-gradient" else None)
        self._uninformative = SINGLE_CLASS if emb is None else emb.uninformative
        if not self._uninformative:
            rel = rel or timed(labeled_reliability, self.alpha_reliability, est, classifier,
                               X_labeled, y_labeled, self.random_state)
            self._operator, self._sigma, self._embedding_dim = emb.operator, emb.sigma, emb.dim
        (self.alpha_reliability_, self.reliability_, self.heldout_accuracy_,
         self.reliability_source_) = (rel if not self._uninformative else (None,) * 4)[:4]
        self.embedding_kind_ = kind
        self.refit_time_ = refit[0]
        self.embedding_time_ = time.perf_counter() - t0 - self.refit_time_
        if self._verbose:
            print(f"[SparseApproxSampler] {kind} embedding of {self.n_pool_} points in "
                  f"{self.embedding_time_:.2f}s")

    # -- selection -----------------------------------------------------------------------------
    def _query(self, n_instances):
        with thread_limit(self._n_jobs):
            return self._select(n_instances)

    def _select(self, n_instances):
        t0 = time.perf_counter()
        if self._uninformative:
            warnings.warn(self._uninformative, UserWarning, stacklevel=3)
            idx = numpy_rng(self.random_state).choice(self.n_pool_, n_instances, replace=False)
            self.weights_ = np.ones(n_instances)
            self.objective_, self.n_iter_, self.converged_, self.history_ = np.nan, 0, True, []
            self.solve_time_ = time.perf_counter() - t0
            return idx, None
        self.solver_, self.sketch_dim_ = self._plan(n_instances)
        alpha = float(self.alpha)
        if self.alpha_scale == "pool":
            alpha *= float(self.n_pool_) ** 2 / n_instances
        alpha *= reliability_factor(self.alpha_reliability_, self.reliability_)
        self.alpha_effective_ = alpha
        # copies of one point are grouped on the exact embedding (before any sketch), so a
        # batch never spends two labels on one point (SparseApproxProblem, duplicates="group")
        backend = self._backend
        problem = SparseApproxProblem(
            self._operator, self._sigma, n_instances, alpha=alpha, beta=self.beta,
            device=backend.solve_device(self._device), dtype=self._dtype,
        )
        pool = None
        try:
            if self.sketch_dim_ is not None:
                gen = torch_generator(self.random_state, "cpu")
                problem = problem.sketched(self.sketch_dim_, generator=gen)
            if self.solver_ == "greedy":
                res = greedy(problem, tau=self.tau)
            else:
                pool = backend.pool_vectors(problem)
                res = proximal_iht(problem, max_iter=self.max_iter, tol=self.tol,
                                   patience=self.patience, prox=self.prox,
                                   init=self.iht_init, _pool=pool)
        finally:
            if pool is not None:
                pool.close()
            backend.release(self._operator)  # what this query derived (copies removed, sketch)
        self.result_ = res
        self.weights_ = res.weights
        self.objective_ = res.objective
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.history_ = res.history
        self.solve_time_ = time.perf_counter() - t0
        if self._verbose:
            print(f"[SparseApproxSampler] {self.solver_} picked {n_instances} of {self.n_pool_} in "
                  f"{self.solve_time_:.2f}s ({res.n_iter} iterations)")
        return res.indices, res.weights


    def _plan(self, n_instances):
        """``(solver, sketch_dim)`` for this query: ``"auto"`` values resolved (``_plan``)."""
        return plan(self.solver, self.sketch_dim, self._operator, n_instances,
                    n_pool=self.n_pool_, embedding_dim=self._embedding_dim,
                    backend=self._backend)


#: Ready-made greedy sampler: ``ActiveLearner(estimator, query_strategy=sparse_greedy)``.
sparse_greedy = SparseApproxSampler(solver="greedy")
#: Ready-made proximal-IHT sampler.
sparse_iht = SparseApproxSampler(solver="iht")
