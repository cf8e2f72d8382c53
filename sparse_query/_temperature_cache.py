"""What the sampler fits on the labeled set, once per fitted model, labeled set and seed.

``temperature="auto"``'s calibration (:func:`auto_temperature`) and ``alpha_reliability``'s
held-out accuracy (``sparse_query._reliability``) each fit clones of the user's model; both
are cached here. Used by :class:`~sparse_query.SparseApproxSampler`; see the comment below
for what is cached and when it is computed again.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

__all__ = []


# -- temperature="auto": one calibration per fitted model -------------------------------------
# Without validation_data, "auto" fits a clone of the model on 70% of the labeled set. That
# is done once per (fitted model, labeled set, validation data, integer seed): the result is
# cached on the model object (weakly: the cache dies with the model), keyed by a hash of the
# model's fitted state and of the data, so querying the same fitted model again -- from fit
# and fit_query, from several learners or threads -- never re-trains. A model that is refit
# (modAL's teach) hashes differently and is calibrated again, once.
# alpha_reliability's kappa is cached the same way in _RELIABILITIES.
_TEMPERATURES = weakref.WeakKeyDictionary()
_RELIABILITIES = weakref.WeakKeyDictionary()
_TEMPERATURES_LOCK = threading.Lock()


def _fit_key(est, X_labeled, y_labeled, validation, random_state):
    import joblib

    seed = random_state if isinstance(random_state, (int, np.integer)) else None
    try:
        data = joblib.hash((X_labeled, y_labeled, validation, seed))
    except Exception:  # noqa: BLE001 - unhashable data: no cache
        return None
    try:
        return joblib.hash((est, data))
    except Exception:  # noqa: BLE001 - e.g. a lambda in a skorch net: hash its weights instead
        pass
    module = getattr(est, "module_", est)
    if isinstance(module, torch.nn.Module):
        import hashlib

        digest = hashlib.sha1(data.encode())
        for name, t in module.state_dict().items():
            digest.update(name.encode())
            digest.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()
    return None


def _cached_fit(est, key, cache=_TEMPERATURES):
    if key is None:
        return None
    with _TEMPERATURES_LOCK:
        try:
            hit = cache.get(est)
        except TypeError:
            return None
    return hit[1] if hit is not None and hit[0] == key else None


def _store_fit(est, key, value, cache=_TEMPERATURES):
    if key is None:
        return
    with _TEMPERATURES_LOCK:
        try:
            cache[est] = (key, value)
        except TypeError:  # not weak-referenceable: no cache
            pass


def auto_temperature(temperature, est, classifier, X_labeled, y_labeled, validation_data,
                     random_state, kind=None):
    """``(T, source, refit)`` for the sampler's ``temperature``: a number as given
    (``"fixed"``), or ``"auto"`` calibrated on ``validation_data`` or a clone fitted on the
    labeled set (given, or the modAL ``classifier``'s), cached per fitted model; ``refit``:
    whether this call fitted a clone. ``kind``: the embedding (leaf kinds calibrate the leaf
    logits, ``"input-gradient"`` the log of ``predict_proba``; the committee's embedding has no
    ``"auto"``)."""
    from . import adapters
    from ._kinds import leaf_logits, proba_logits
    from .embeddings import DEFAULT_FALLBACK_TEMPERATURE, estimate_temperature

    if not isinstance(temperature, str):
        return float(temperature), "fixed", False
    if kind == "committee-gradient":
        raise ValueError("temperature='auto' is not supported with "
                         "embedding='committee-gradient'; pass a number (default 0.01).")
    leaves = kind is not None and kind.startswith("leaf")
    if X_labeled is None or y_labeled is None:
        X_labeled, y_labeled = adapters.get_labeled_data(classifier)
    if validation_data is None and (X_labeled is None or y_labeled is None):
        return DEFAULT_FALLBACK_TEMPERATURE, "fallback: no labeled data was given", False
    key = _fit_key(est, X_labeled, y_labeled, validation_data, random_state)
    hit = _cached_fit(est, key)
    if hit is not None:
        return (*hit, False)
    logits_fn = (leaf_logits if leaves else proba_logits if kind == "input-gradient"
                 else adapters.logits_fn)
    T, source = estimate_temperature(
        est, X_labeled, y_labeled, logits_fn=logits_fn,
        validation=validation_data, random_state=random_state,
    )
    _store_fit(est, key, (T, source))
    return T, source, source == "held-out"
