"""Helpers shared by the baseline strategies: input checks, top-k, the strategy base class.

Nothing in the kernels' hot loops lives here; these run once at the edge.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._base import QueryStrategy
from .._utils import all_finite, check_int, numpy_rng, resolve_device, torch_generator

__all__: list[str] = []

# Elements (not bytes) a chunked kernel may hold in one temporary; bounds memory by the chunk.
_CHUNK_ELEMENTS = 1 << 22


def _to_tensor(x, name: str, *, ndim: int, device=None, dtype=None) -> torch.Tensor:
    """``x`` (numpy array, tensor or nested list) as a finite floating tensor with ``ndim`` dims."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a numeric array or tensor; got {type(x).__name__}."
            ) from None
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {tuple(t.shape)}.")
    if not t.is_floating_point():
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must be real-valued; got dtype {t.dtype}.")
        t = t.to(torch.float64)
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    if t.numel() and not all_finite(t):
        raise ValueError(f"{name} contains NaN or infinity; pass finite values.")
    return t


def _check_probs(probs, name: str = "probs", *, ndim: int, device=None) -> torch.Tensor:
    """Class probabilities: non-negative, rows summing to 1 (last axis), at least one row."""
    p = _to_tensor(probs, name, ndim=ndim, device=device)
    if p.shape[-1] < 1 or p.numel() == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(p.shape)}); pass at least one row and class."
        )
    if bool((p < 0).any()):
        raise ValueError(f"{name} has negative entries; pass probabilities (e.g. softmax outputs).")
    sums = p.sum(-1)
    tol = 1e-3 if p.dtype != torch.float64 else 1e-6
    if bool(((sums - 1).abs() > tol * max(1, p.shape[-1])).any()):
        raise ValueError(
            f"{name} rows must sum to 1 over the last axis (classes); got sums in "
            f"[{float(sums.min()):.4g}, {float(sums.max()):.4g}]. Pass predict_proba outputs, "
            "not logits."
        )
    return p


def _top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest ``scores``, highest first, ties broken by lower index."""
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:k]


class _BaselineStrategy(QueryStrategy):
    """Shared parameter checks and model-input plumbing for the baselines.

    Subclasses store ``random_state``, ``device`` and (where inference is involved)
    ``batch_size`` in ``__init__`` and call these helpers from their hooks.
    """

    def _check_common(self):
        numpy_rng(self.random_state)  # raises for bad seeds, e.g. random_state=-1
        self.device_ = resolve_device(self.device)
        if hasattr(self, "batch_size"):
            check_int(self.batch_size, "batch_size", min_val=1)

    @staticmethod
    def _model_and_labeled(estimator, X_labeled, y_labeled):
        """The fitted model behind ``estimator`` plus labeled data (given, or the learner's)."""
        from .. import adapters

        if X_labeled is None:
            X_labeled, y_labeled = adapters.get_labeled_data(estimator)
        model = adapters.unwrap_estimator(estimator)
        adapters.check_fitted(model)
        return model, X_labeled, y_labeled

    def _predictive_probs(self, model, X_pool) -> torch.Tensor:
        """``(n, K)`` predictive probabilities: the mean over posterior draws when the model
        has them (MC dropout, ensembles, committees), else its ``predict_proba``."""
        from .. import adapters

        if adapters.has_posterior(model):
            draws = adapters.posterior_probas(
                model, X_pool, n_samples=self.n_posterior_samples,
                random_state=self.random_state, batch_size=self.batch_size, device=self.device_,
            )
            return torch.as_tensor(draws).to(self.device_).mean(0)
        probs = adapters.predict_proba(model, X_pool, batch_size=self.batch_size)
        return torch.as_tensor(np.asarray(probs)).to(self.device_)

    def _posterior_draws(self, model, X_pool) -> torch.Tensor:
        """``(M, n, K)`` class probabilities under ``M`` posterior draws."""
        from .. import adapters

        draws = adapters.posterior_probas(
            model, X_pool, n_samples=self.n_posterior_samples, random_state=self.random_state,
            batch_size=self.batch_size, device=self.device_,
        )
        return torch.as_tensor(draws).to(self.device_)


class SelectionResult(NamedTuple):
    """What a selection kernel returns.

    Attributes
    ----------
    indices : torch.LongTensor of shape (n_instances,)
        Distinct pool indices in the order they were selected.
    scores : torch.Tensor of shape (n_instances,)
        The per-selection score the kernel documents (a gain, a distance, ...).
    """

    indices: torch.Tensor
    scores: torch.Tensor


def _generator_for(generator, device: torch.device) -> torch.Generator:
    """``generator`` if given (it must live on ``device``), else a fresh unseeded one there."""
    if generator is None:
        return torch_generator(None, device)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (see sparse_query._utils.torch_generator); "
            f"got {type(generator).__name__}."
        )
    if generator.device.type != device.type:
        raise ValueError(
            f"generator lives on {generator.device} but the computation runs on {device}; "
            f"create it with torch.Generator(device={str(device)!r})."
        )
    return generator


def kmeanspp_d2(sq: torch.Tensor, dist, n_instances: int, gen) -> SelectionResult:
    """k-means++ seeding by D^2 sampling without repeats, given the squared norms ``sq`` (n,)
    and ``dist(i)``, the squared distances of every point to point ``i`` (n,). The first
    centre is the largest norm (ties to the lower index); shared by the dense and sparse
    BADGE kernels."""
    n = sq.shape[0]
    available = torch.ones(n, dtype=torch.bool, device=sq.device)
    i = int(torch.argmax(sq))  # first maximum: ties go to the lower index
    chosen, scores = [i], [float(sq[i])]
    available[i] = False
    d2 = dist(i)
    for _ in range(n_instances - 1):
        w = d2.masked_fill(~available, 0)
        if float(w.sum()) > 0:
            i = int(torch.multinomial(w, 1, generator=gen))
        else:  # every remaining point coincides with a centre: uniform over the rest
            i = int(torch.multinomial(available.to(sq.dtype), 1, generator=gen))
        if not bool(available[i]):  # pragma: no cover - zero weights are never drawn
            i = int(torch.argmax(w))
        chosen.append(i)
        scores.append(float(d2[i]))
        available[i] = False
        d2 = torch.minimum(d2, dist(i))
    return SelectionResult(
        torch.tensor(chosen, dtype=torch.long, device=sq.device),
        torch.tensor(scores, dtype=sq.dtype, device=sq.device),
    )
