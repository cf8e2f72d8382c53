"""BADGE and k-center greedy on sparse features (TF-IDF, one-hot), never densified.

Both kernels are the dense ones of :mod:`.badge` and :mod:`.kcenter` with the feature products
taken in sparse form: each selected centre costs one ``O(nnz + n K)`` pass (``H h_c`` is a
CSR times sparse-column product), memory stays ``O(n)`` plus the input. The arithmetic is the
dense kernels' (same distances, same rounding tolerance, same draws from the generator), so a
sparse pool gives the batch its densified copy gives.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..operators.sparse import ROW_BLOCK, as_csr, row_sqnorms, sparse_dots
from ._common import SelectionResult, kmeanspp_d2

_NP = {torch.float32: np.float32, torch.float64: np.float64}


def _dots(H: sp.csr_matrix, H_c: sp.csr_matrix) -> np.ndarray:
    """``H @ H_c.T`` as a dense ``(n, rows of H_c)`` array (the output's size, not ``d``)."""
    return sparse_dots(H, H_c, np.arange(H_c.shape[0]))


def _badge_kmeanspp_sparse(a: torch.Tensor, h, n_instances: int, gen) -> SelectionResult:
    """:func:`.badge._badge_kmeanspp` with a CSR ``h``: distances in factored sparse form."""
    dt = a.dtype
    H = as_csr(h, _NP[dt], name="h")
    hsq = torch.from_numpy(row_sqnorms(H)).to(dt).to(a.device)
    sq = (a * a).sum(1) * hsq

    def dist(i):
        hh = torch.from_numpy(sparse_dots(H, H, [i])[:, 0]).to(a.device)
        # badge._factored_sqdist with h @ h_c replaced by the sparse product
        return _factored_sqdist_from_dots(a, sq, a[i], sq[i], hh)

    return kmeanspp_d2(sq, dist, n_instances, gen)


def _factored_sqdist_from_dots(a, sq, a_c, sq_c, hh):
    d = sq + sq_c - 2 * (a @ a_c) * hh
    tol = 64 * torch.finfo(a.dtype).eps * (sq + sq_c)
    return torch.where(d <= tol, torch.zeros_like(d), d)


def _sqdist_col(x_sq, c_sq, dots, eps):
    d = x_sq + c_sq - 2 * dots
    tol = 64 * eps * (x_sq + c_sq)
    return torch.where(d <= tol, torch.zeros_like(d), d)


def _kcenter_greedy_sparse(x, n_instances: int, labeled, first, dtype, device) -> SelectionResult:
    """:func:`.kcenter._kcenter_greedy` on CSR features ``x`` (labeled: CSR, dense or None)."""
    X = as_csr(x, _NP[dtype], name="features")
    n = X.shape[0]
    eps = torch.finfo(dtype).eps
    x_sq = torch.from_numpy(row_sqnorms(X)).to(dtype).to(device)

    def to_t(arr):
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=_NP[dtype])).to(device)

    available = torch.ones(n, dtype=torch.bool, device=device)
    chosen, scores = [], []
    if labeled is not None and labeled.shape[0] > 0:
        L = as_csr(labeled, _NP[dtype], name="labeled_features") if sp.issparse(labeled) \
            else sp.csr_matrix(np.asarray(labeled, dtype=_NP[dtype]))
        l_sq = torch.from_numpy(row_sqnorms(L)).to(dtype).to(device)
        min_d = torch.full((n,), torch.inf, dtype=dtype, device=device)
        step = max(1, min(ROW_BLOCK, (1 << 22) // max(1, n)))
        for s in range(0, L.shape[0], step):
            dots = to_t(_dots(X, L[s:s + step]))                     # (n, chunk)
            d = _sqdist_col(x_sq[:, None], l_sq[None, s:s + step], dots, eps)
            min_d = torch.minimum(min_d, d.amin(1))
    else:
        if first is None:  # the point nearest the pool mean, as the dense kernel
            mean = np.asarray(X.mean(axis=0), dtype=_NP[dtype]).reshape(-1)
            m_sq = torch.tensor(float(mean @ mean), dtype=dtype, device=device)
            dots = to_t(np.asarray(X @ mean).reshape(-1))
            first = int(torch.argmin(_sqdist_col(x_sq, m_sq, dots, eps)))
        chosen.append(first)
        scores.append(torch.inf)
        available[first] = False
        min_d = _sqdist_col(x_sq, x_sq[first], to_t(sparse_dots(X, X, [first])[:, 0]), eps)
    while len(chosen) < n_instances:
        i = int(torch.argmax(min_d.masked_fill(~available, -torch.inf)))
        chosen.append(i)
        scores.append(float(min_d[i].sqrt()))
        available[i] = False
        d = _sqdist_col(x_sq, x_sq[i], to_t(sparse_dots(X, X, [i])[:, 0]), eps)
        min_d = torch.minimum(min_d, d)
    return SelectionResult(torch.tensor(chosen, dtype=torch.long, device=device),
                           torch.tensor(scores, dtype=dtype, device=device))
