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
