"""Reading the pool in rows: multi-input pools, row counts, chunks of ``batch_size`` rows with
an optional progress bar, and the conversions of a chunk to numpy or torch."""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import torch

from .._utils import check_int


def _is_multi_input(X) -> bool:
    """skorch's multi-input pools: a dict of arrays (``module(**x)``) or a tuple of arrays."""
    from collections.abc import Mapping

    if isinstance(X, Mapping):
        return True
    # a tuple of 2-D (or higher) arrays; a tuple of 1-D rows stays a plain array-like of rows
    return isinstance(X, tuple) and len(X) > 0 and all(
        hasattr(v, "shape") and len(getattr(v, "shape", ())) > 1 for v in X)


def _multi_len(X) -> int:
    """Rows of a dict / tuple pool: skorch's own ``get_len`` (every entry must agree)."""
    try:
        from skorch.dataset import get_len
    except ImportError:  # pragma: no cover - without skorch: the same rule by hand
        values = list(X.values()) if hasattr(X, "values") else list(X)
        lens = {int(v.shape[0]) for v in values}
        if len(lens) != 1:
            raise ValueError(f"the pool's entries have different lengths {sorted(lens)}.")
        return lens.pop()
    try:
        return int(get_len(X))
    except ValueError as err:
        raise ValueError(f"the pool's entries have different numbers of rows ({err}); every "
                         "entry of a dict / tuple pool must hold one row per sample.") from None


def _num_rows(X) -> int:
    if _is_multi_input(X):
        return _multi_len(X)
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X)


def _prepare_X(X, name="X"):
    if X is None:
        raise ValueError(f"{name} is None; pass the pool as an array-like.")
    if isinstance(X, (list, tuple)) and not _is_multi_input(X):
        X = np.asarray(X)
    if hasattr(X, "tocsr") and not hasattr(X, "indptr"):  # coo & co: make it row-sliceable
        X = X.tocsr()
    n = _num_rows(X)
    if n == 0:
        raise ValueError(f"{name} is empty (0 rows); pass at least one sample.")
    return X, n


def _take(X, start, stop):
    if _is_multi_input(X):
        try:
            from skorch.utils import multi_indexing
        except ImportError:  # pragma: no cover
            if hasattr(X, "items"):
                return {k: v[start:stop] for k, v in X.items()}
            return tuple(v[start:stop] for v in X)
        return multi_indexing(X, slice(start, stop))
    if hasattr(X, "iloc"):
        return X.iloc[start:stop]
    return X[start:stop]


def _check_batch_size(batch_size, n):
    if batch_size is None:
        return max(n, 1)
    return check_int(batch_size, "batch_size", min_val=1)


@contextmanager
def _progress(total, enabled, desc, depth=1):
    """A tqdm bar, or None; ``depth`` is how many calls lie between the user and the caller."""
    bar = None
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("progress=True needs tqdm (pip install tqdm); continuing without a bar.",
                          UserWarning, stacklevel=3 + depth)
        else:
            bar = tqdm(total=total, desc=desc, leave=False)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _chunks(X, n, batch_size, bar):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield start, stop, _take(X, start, stop)
        if bar is not None:
            bar.update(stop - start)


def _to_numpy(chunk, dtype=None):
    if isinstance(chunk, torch.Tensor):
        chunk = chunk.detach().cpu().numpy()
    elif hasattr(chunk, "toarray"):
        chunk = chunk.toarray()
    elif hasattr(chunk, "to_numpy"):
        try:
            return np.asarray(chunk.to_numpy(), dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise _non_numeric_column(chunk, exc) from None
    return np.asarray(chunk, dtype=dtype)


def _non_numeric_column(frame, exc=None):
    """The error for a DataFrame whose values cannot be read as numbers: it names the first
    column and value that cannot (None when every object column reads as numbers)."""
    import pandas as pd

    for name in getattr(frame, "columns", ()):
        col = frame[name]
        if not (col.dtype == object or str(col.dtype).startswith("string")):
            continue
        bad = pd.to_numeric(col, errors="coerce").isna().to_numpy() & ~col.isna().to_numpy()
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            return ValueError(
                f"X_pool column {name!r} holds the non-numeric value {col.iloc[k]!r} (row "
                f"{frame.index[k]!r}), which the model's inputs cannot take; convert the column "
                f"(e.g. pd.to_numeric(X_pool[{name!r}], errors='coerce')) and impute its "
                "missing values, or query with a Pipeline whose first step encodes it.")
    if exc is None:
        return None
    return ValueError(f"X_pool cannot be read as numbers ({exc}); convert its columns to "
                      "numeric types first.")


def _to_tensor(chunk, dtype, device):
    if _is_multi_input(chunk):  # skorch's dict / tuple inputs: convert entry by entry
        if hasattr(chunk, "items"):
            return {k: _to_tensor(v, dtype, device) for k, v in chunk.items()}
        return tuple(_to_tensor(v, dtype, device) for v in chunk)
    if not isinstance(chunk, torch.Tensor):
        chunk = torch.as_tensor(_to_numpy(chunk))
    if chunk.is_floating_point() and chunk.dtype != dtype:
        chunk = chunk.to(dtype)
    return chunk.to(device)


def _two_columns(z):
    """A single logit column (binary) becomes ``[0, z]``, so softmax gives ``[1 - s(z), s(z)]``."""
    if z.shape[-1] != 1:
        return z
    if isinstance(z, torch.Tensor):
        return torch.cat([torch.zeros_like(z), z], -1)
    return np.concatenate([np.zeros_like(z), z], axis=-1)


def _normalise(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    s[s <= 0] = 1.0
    return p / s
