"""BatchBALD (Kirsch, van Amersfoort and Gal, 2019): greedy joint mutual information.

The batch ``A`` is grown one point at a time, each time adding the pool point ``i`` that
maximises ``I[y_A, y_i; theta] = H[y_A, y_i] - sum_{j in A + i} E_theta H[y_j | theta]``.
The conditional entropies are exact. The joint entropy is over the ``K^|A|`` label
configurations of the chosen points:

* **exact** while ``K^|A| <= n_configurations``: keep ``P_m(c) = prod_{j in A} p_mj(c_j)``
  for every draw ``m`` and configuration ``c`` (an ``M x K^|A|`` matrix) and evaluate
  ``H[y_A, y_i] = -sum_{c, y} P(c, y) log P(c, y)`` with ``P(c, y) = mean_m P_m(c) p_mi(y)``;
* **sampled** beyond: draw ``S = n_configurations`` configurations ``c_s ~ P(y_A)`` and
  estimate ``H[y_A, y_i] = E_{c~P(y_A)} [-sum_y P(y | c) log P(c, y)]`` by importance
  weighting an ``M x S`` matrix of ``P_m(c_s)``. Each later addition extends every sampled
  configuration by a label drawn from ``P(y_i | c_s)``, so the samples keep following the
  joint. Columns are rescaled each step (their log-scale is tracked) so long batches do not
  underflow.

Cost per added point: ``O(n * M * C * K)`` with ``C = min(K^|A|, n_configurations)``, i.e.
``O(n * M * n_configurations * K * b)`` for the batch -- by far the slowest baseline for large
``b`` (measured: about 5 s per selected point for n = 20,000, M = 20, K = 10 and the default
``n_configurations`` on 2 CPU cores). Memory is bounded by chunking the pool (about 4 M
elements per temporary). Computation is in float64.
"""
from __future__ import annotations

import math

import torch

from .._base import check_n_instances
from .._utils import check_int, resolve_device, torch_generator
from ._common import (
    _CHUNK_ELEMENTS,
    SelectionResult,
    _BaselineStrategy,
    _check_probs,
    _generator_for,
)

__all__ = ["batchbald", "joint_entropy", "BatchBALD"]


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return 0.0 - torch.special.xlogy(p, p).sum(-1)  # 0.0 - x: no negative zeros


def _renormalise(pm: torch.Tensor, log_scale: torch.Tensor):
    """Rescale each column of ``pm`` (M, S) to max 1, moving the factor into ``log_scale``."""
    z = pm.amax(0).clamp_min(torch.finfo(pm.dtype).tiny)
    return pm / z, log_scale + torch.log(z)


def _candidate_joint_entropy(pm, log_scale, probs_chunk, exact: bool) -> torch.Tensor:
    """``H[y_A, y_i]`` for every candidate ``i`` in a chunk.

    pm : (M, C) -- ``P_m(c)`` over all configurations (exact) or rescaled ``P_m(c_s)`` at
    ``C = S`` sampled configurations; log_scale : (S,) log of the rescaling (sampled only);
    probs_chunk : (M, n_chunk, K).
    """
    M, n_chunk, K = probs_chunk.shape
    joint = (pm.T @ probs_chunk.reshape(M, n_chunk * K)).reshape(-1, n_chunk, K) / M
    if exact:
        return -torch.special.xlogy(joint, joint).sum((0, 2))
    marg = pm.mean(0)  # (S,) rescaled P(c_s)
    inner = torch.special.xlogy(joint, joint).sum(2) / marg[:, None]  # (S, n_chunk)
    return -(log_scale[:, None] + inner).mean(0)


def _joint_entropies(pm, log_scale, probs, exact: bool) -> torch.Tensor:
    M, n, K = probs.shape
    chunk = max(1, _CHUNK_ELEMENTS // max(1, pm.shape[1] * K))
    out = torch.empty(n, dtype=probs.dtype, device=probs.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _candidate_joint_entropy(pm, log_scale, probs[:, start:stop], exact)
    return out


def _sample_from_exact(pm: torch.Tensor, n_samples: int, gen) -> torch.Tensor:
    """Columns of the exact ``P_m(c)`` (M, C) at ``n_samples`` configurations drawn from P(c)."""
    marg = pm.mean(0)
    idx = torch.multinomial(marg / marg.sum(), n_samples, replacement=True, generator=gen)
    return pm[:, idx]


def _extend(pm, log_scale, p_i, exact: bool, n_configurations: int, gen):
    """Add a chosen point with per-draw probabilities ``p_i`` (M, K) to the joint."""
    M, K = p_i.shape
    if exact:
        C = pm.shape[1]
        new = (pm[:, :, None] * p_i[:, None, :]).reshape(M, C * K)
        if C * K <= n_configurations:
            return new, log_scale, True
        pm = _sample_from_exact(new, n_configurations, gen)
        return (*_renormalise(pm, torch.zeros(pm.shape[1], dtype=pm.dtype, device=pm.device)),
                False)
    cond = pm.T @ p_i  # (S, K), proportional to P(y_i | c_s)
    labels = torch.multinomial(cond, 1, generator=gen).squeeze(1)
    pm = pm * p_i[:, labels]
    return (*_renormalise(pm, log_scale), False)


def _batchbald(probs, n_instances: int, n_configurations: int, gen) -> SelectionResult:
    """Unchecked kernel: probs (M, n, K) float64 on the target device."""
    M, n, K = probs.shape
    dev = probs.device
    cond_ent = _entropy(probs).mean(0)  # E_theta H[y_j | theta], (n,)
    pm = torch.ones(M, 1, dtype=probs.dtype, device=dev)
    log_scale = torch.zeros(1, dtype=probs.dtype, device=dev)
    exact = True
    available = torch.ones(n, dtype=torch.bool, device=dev)
    chosen, gains = [], []
    prev_mi, sum_cond = 0.0, torch.zeros((), dtype=probs.dtype, device=dev)
    for step in range(n_instances):
        mi = _joint_entropies(pm, log_scale, probs, exact) - (sum_cond + cond_ent)
        mi = mi.masked_fill(~available, -math.inf)
        i = int(torch.argmax(mi))  # first maximum: ties go to the lower index
        value = float(mi[i])
        chosen.append(i)
        gains.append(value - prev_mi)
        prev_mi = value
        available[i] = False
        sum_cond = sum_cond + cond_ent[i]
        if step + 1 < n_instances:
            pm, log_scale, exact = _extend(pm, log_scale, probs[:, i], exact, n_configurations, gen)
    return SelectionResult(
        torch.tensor(chosen, dtype=torch.long, device=dev),
        torch.tensor(gains, dtype=probs.dtype, device=dev),
    )


def batchbald(probs, n_instances: int, *, n_configurations: int = 1000, generator=None,
              device=None) -> SelectionResult:
    """Greedy BatchBALD batch from posterior-draw probabilities.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_draws, n_samples, n_classes)
        Class probabilities of each pool point under each posterior draw.
    n_instances : int
        Batch size ``b``, ``1 <= b <= n_samples``.
    n_configurations : int, default=1000
        The joint entropy is exact while the chosen points have at most this many label
        configurations (``K^|A|``); beyond it, this many configurations are sampled.
    generator : torch.Generator, optional
        Source of the configuration samples (on ``device``); fresh and unseeded when omitted.
    device : str or torch.device, optional
        Where to compute; defaults to the device of ``probs`` (CPU for numpy input).

    Returns
    -------
    SelectionResult
        ``indices`` (b,) in selection order and ``scores`` (b,): the gain in joint mutual
        information (nats) each point brought; they sum to the batch's ``I[y_A; theta]``.

    Notes
    -----
    Cost ``O(b * n * M * min(K^b, n_configurations) * K)``; see the module docstring.

    Examples
    --------
    >>> import torch
    >>> probs = torch.softmax(torch.randn(8, 30, 3, generator=torch.Generator().manual_seed(0)), -1)
    >>> batchbald(probs, 4).indices.shape
    torch.Size([4])
    """
    p = _check_probs(probs, ndim=3)
    dev = p.device if device is None else resolve_device(device)
    n_instances = check_n_instances(n_instances, p.shape[1])
    n_configurations = check_int(n_configurations, "n_configurations", min_val=1)
    gen = _generator_for(generator, dev)
    with torch.no_grad():
        return _batchbald(p.to(dev, torch.float64), n_instances, n_configurations, gen)


def joint_entropy(probs, *, n_samples=None, generator=None) -> torch.Tensor:
    """Joint entropy ``H[y_1, ..., y_k]`` (nats) of a few points under the posterior mixture.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_draws, k, n_classes)
        Per-draw class probabilities of the ``k`` points; the joint is
        ``P(c) = mean_m prod_j p_mj(c_j)``.
    n_samples : int, optional
        ``None`` enumerates all ``K^k`` configurations (exact); an integer uses BatchBALD's
        estimator: that many configurations of the first ``k - 1`` points sampled from their
        joint, the last point summed exactly.
    generator : torch.Generator, optional
        Source of the samples (on the device of ``probs``).

    Returns
    -------
    torch.Tensor
        A float64 scalar.
    """
    p = _check_probs(probs, ndim=3).to(torch.float64)
    M, k, K = p.shape
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", min_val=1)
    with torch.no_grad():
        pm = torch.ones(M, 1, dtype=p.dtype, device=p.device)
        for j in range(k - 1):
            pm = (pm[:, :, None] * p[:, j, None, :]).reshape(M, -1)
        if n_samples is None or k == 1:
            return _candidate_joint_entropy(pm, None, p[:, k - 1 :], exact=True)[0]
        gen = _generator_for(generator, p.device)
        pm = _sample_from_exact(pm, n_samples, gen)
        pm, log_scale = _renormalise(pm, torch.zeros(n_samples, dtype=p.dtype, device=p.device))
        return _candidate_joint_entropy(pm, log_scale, p[:, k - 1 :], exact=False)[0]


class BatchBALD(_BaselineStrategy):
    """Greedy BatchBALD (Kirsch et al. 2019) behind the common strategy signature.

    Needs a model with posterior draws (MC-dropout net, ensemble, random forest, modAL
    ``Committee``). See :func:`batchbald` for the algorithm and its cost: it is the slowest
    baseline, ``O(b * n * M * min(K^b, n_configurations) * K)``.

    Parameters
    ----------
    n_configurations : int, default=1000
        Exact joint entropy up to this many label configurations of the chosen points; this
        many sampled configurations beyond.
    n_posterior_samples : int, default=20
        Posterior draws ``M`` (MC-dropout passes; ensembles use their members).
    batch_size : int, default=1024
        Inference batch size.
    device : str or torch.device, default="auto"
    random_state : None, int or numpy Generator, default=None
        Seeds the dropout masks and the sampled configurations.

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_``.

    probs_ : torch.Tensor of shape (n_draws, n_pool, n_classes)
        The posterior-draw probabilities of the last :meth:`fit`.
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)
        Gain in joint mutual information brought by each selected point.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> rf = RandomForestClassifier(10, random_state=0).fit(X[::10], y[::10])
    >>> BatchBALD(device="cpu", random_state=0).fit_query(X, rf, n_instances=3).shape
    (3,)
    """

    def __init__(self, *, n_configurations=1000, n_posterior_samples=20, batch_size=1024,
                 device="auto", random_state=None):
        self.n_configurations = n_configurations
        self.n_posterior_samples = n_posterior_samples
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _validate_params(self):
        self._check_common()
        check_int(self.n_configurations, "n_configurations", min_val=1)
        check_int(self.n_posterior_samples, "n_posterior_samples", min_val=1)

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        model, _, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        self.probs_ = self._posterior_draws(model, X_pool)

    def _query(self, n_instances):
        gen = torch_generator(self.random_state, self.device_)
        res = batchbald(self.probs_, n_instances, n_configurations=self.n_configurations,
                        generator=gen, device=self.device_)
        return res.indices.cpu().numpy(), res.scores.cpu().numpy()
