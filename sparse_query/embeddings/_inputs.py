"""Input checks shared by the embeddings: logits, features and probabilities as finite float
tensors, the sparse-features test and the chunk size."""
from __future__ import annotations

import numpy as np
import torch

from .._utils import all_finite, check_int


def _as_float_tensor(x, name: str, ndim: int) -> torch.Tensor:
    """``x`` as a floating torch tensor with ``ndim`` dims; float64 stays float64, else float32."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array or torch tensor; got "
                            f"{type(x).__name__}.") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                        or arr.dtype == np.bool_):
            raise TypeError(f"{name} must be a numeric array or torch tensor; got dtype "
                            f"{arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued; got dtype {t.dtype}.")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    if t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {tuple(t.shape)}.")
    if t.numel() and not all_finite(t):
        bad = (~torch.isfinite(t)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(bad)}); "
                         "remove or impute those rows before querying.")
    return t


def _is_sparse(x) -> bool:
    """A scipy.sparse matrix or a torch sparse tensor (see :mod:`sparse_query.operators.sparse`)."""
    if isinstance(x, torch.Tensor):
        return x.layout in (torch.sparse_coo, torch.sparse_csr)
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _check_chunk_size(chunk_size) -> int:
    return check_int(chunk_size, "chunk_size", min_val=1)
