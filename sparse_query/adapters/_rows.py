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


def _pool_as_tensor(X):
    """A float32 / float64 numpy pool (an array or an ``np.memmap``) as a tensor on the same
    memory, so that its chunks are views of one storage and reach the model without a copy;
    any other pool is returned as it is.

    The tensor aliases the pool, which is read, never written (a read-only memmap included).
    """
    if type(X) not in (np.ndarray, np.memmap) or X.dtype not in (np.float32, np.float64):
        return X
    if not X.dtype.isnative or X.ndim < 2:
        return X
    with warnings.catch_warnings():  # a read-only memmap: we only read it
        warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
        try:
            return torch.from_numpy(X)
        except (TypeError, ValueError):  # negative strides and other layouts torch refuses
            return X


def _join_rows(parts, pool=None):
    """The per-chunk rows ``parts`` (tensors or numpy arrays, in pool order) as one tensor.

    A view instead of ``torch.cat`` when the parts already lie back to back in one block of
    memory: the features of a linear head on the pool itself are the pool's own rows, and
    copying them would double the memory of a large pool. That block is either one torch
    storage the parts share, or ``pool`` (a C-contiguous numpy array or tensor) whose rows
    the parts are, from its first row to its last. The view aliases the pool, which is read,
    never written.
    """
    view = _contiguous_view(parts, pool)
    if view is not None:
        return view
    return torch.cat([p if isinstance(p, torch.Tensor)
                      else torch.from_numpy(np.ascontiguousarray(p)) for p in parts])


class _Staging:
    """``_to_tensor`` for a net's chunks, writing float chunks of another float dtype (a
    float64 pool into a float32 net) into one buffer reused from chunk to chunk.

    A fresh conversion per chunk costs no more memory in principle, but the allocator keeps
    the freed chunks apart from each other (the logits kept in between pin them), which
    doubled the peak memory of a float64 pool's pass. The returned tensor is overwritten by
    the next call: whoever keeps its values copies them first (:class:`_RowStack` does).
    """

    def __init__(self, dtype, device):
        self.dtype = dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._buf = None

    def __call__(self, chunk):
        if not (isinstance(chunk, torch.Tensor) and chunk.is_floating_point()
                and chunk.dtype != self.dtype and chunk.device.type == "cpu"
                and self.device.type == "cpu"):
            return _to_tensor(chunk, self.dtype, self.device)
        rows = chunk.shape[0]
        if self._buf is None or self._buf.shape[1:] != chunk.shape[1:] or self._buf.shape[0] < rows:
            self._buf = torch.empty(tuple(chunk.shape), dtype=self.dtype)
        out = self._buf[:rows]
        out.copy_(chunk)
        return out


class _RowStack:
    """Per-chunk rows (tensors, in pool order) gathered into one ``(n, ...)`` CPU tensor.

    Rows that are the pool's own memory (a linear head's features on a float pool) are kept
    as views and joined by :func:`_join_rows` without a copy; any other rows are written into
    one ``(n, ...)`` tensor as they come, so the chunks and their concatenation are never held
    at the same time.

    Parameters
    ----------
    n : int
        Rows of the pool.
    pool : tensor or numpy array, optional
        The pool the chunks were read from.
    """

    def __init__(self, n, pool=None):
        self.n = n
        self._pool = pool if isinstance(pool, torch.Tensor) else _pool_as_tensor(pool)
        self._parts = None
        self._out = None
        self._stop = 0

    def _in_pool(self, part) -> bool:
        pool = self._pool
        if not isinstance(pool, torch.Tensor) or pool.device.type != "cpu":
            return False
        a, b = _address(part), _address(pool)
        return a is not None and b is not None and b[0] <= a[0] and a[0] + a[1] <= b[0] + b[1]

    def append(self, part):
        if self._parts is None and self._out is None:
            if self._in_pool(part):
                self._parts = []
            else:
                self._out = torch.empty((self.n,) + tuple(part.shape[1:]), dtype=part.dtype)
        if self._parts is not None:
            self._parts.append(part.to("cpu"))
        else:
            self._out[self._stop:self._stop + part.shape[0]].copy_(part)
        self._stop += int(part.shape[0])

    def result(self):
        if self._stop != self.n:
            raise RuntimeError(f"{self._stop} rows were gathered for a pool of {self.n}.")
        if self._parts is not None:
            return _join_rows(self._parts, self._pool)
        return self._out


def _address(p):
    """``(data pointer, bytes, dtype name, row shape, C-contiguous)`` of a tensor or array."""
    if isinstance(p, torch.Tensor):
        if p.device.type != "cpu":
            return None
        return (p.data_ptr(), p.numel() * p.element_size(), str(p.dtype).replace("torch.", ""),
                tuple(p.shape[1:]), p.is_contiguous())
    if isinstance(p, np.ndarray):
        return (p.ctypes.data, p.nbytes, p.dtype.name, p.shape[1:], p.flags.c_contiguous)
    return None


def _back_to_back(parts):
    """The common ``(start pointer, total bytes, dtype, row shape)`` of parts that follow each
    other in memory, else None."""
    first = _address(parts[0])
    if first is None:
        return None
    ptr, total = first[0], 0
    for p in parts:
        a = _address(p)
        if a is None or not a[4] or a[0] != ptr or a[2:4] != first[2:4]:
            return None
        ptr += a[1]
        total += a[1]
    return first[0], total, first[2], first[3]


def _contiguous_view(parts, pool):
    run = _back_to_back(parts)
    if run is None:
        return None
    rows = sum(int(p.shape[0]) for p in parts)
    if pool is not None and not isinstance(pool, torch.Tensor):
        pool = _pool_as_tensor(pool)
    if isinstance(pool, torch.Tensor) and pool.device.type == "cpu" and pool.is_contiguous():
        a = _address(pool)
        if a is not None and (a[0], a[1], a[2], a[3]) == run and pool.shape[0] == rows:
            return pool.detach()
    first = parts[0]
    if not isinstance(first, torch.Tensor):
        return None
    try:
        storage = first.untyped_storage()
        if not all(p.untyped_storage().data_ptr() == storage.data_ptr() for p in parts):
            return None
    except RuntimeError:  # tensors without a plain storage
        return None
    return first.new_empty(0).set_(storage, first.storage_offset(),
                                   (rows,) + tuple(first.shape[1:]))


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
