"""``temperature="auto"``'s cache: one calibration per fitted model, labeled set and seed.

Used by :class:`~sparse_query.SparseApproxSampler`; see the comment below for what is cached
and when it is computed again.
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
_TEMPERATURES = weakref.WeakKeyDictionary()
_TEMPERATURES_LOCK = threading.Lock()


def _temperature_key(est, X_labeled, y_labeled, validation, random_state):
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


def _cached_temperature(est, key):
    if key is None:
        return None
    with _TEMPERATURES_LOCK:
        try:
            hit = _TEMPERATURES.get(est)
        except TypeError:
            return None
    return hit[1] if hit is not None and hit[0] == key else None


def _store_temperature(est, key, value):
    if key is None:
        return
    with _TEMPERATURES_LOCK:
        try:
            _TEMPERATURES[est] = (key, value)
        except TypeError:  # not weak-referenceable: no cache
            pass
