"""Proximal IHT's length-``n`` vectors kept on the Dask workers, one piece per pool chunk.

:class:`DaskPoolVectors` is the Dask form of :class:`sparse_query.solvers.PoolVectors`: the
gradient ``u = grad f1(z)`` is computed per chunk and stays there, the top-``b`` prox is a
per-chunk top-``b`` merged on the client (at most ``b`` candidates per chunk), and the client
holds only the ``b``-sparse iterates plus ``sigma`` (which the workers get in chunks).
"""
from __future__ import annotations

import numpy as np
import torch

from ..problem import SparseApproxProblem
from ..solvers import PoolVectors, prox_score, topk_lowest_index
from .dask_cluster import gather
from .dask_operator import DaskOperator, _chunk_combine, _chunk_project

__all__ = ["DaskPoolVectors"]


def _chunk_grad(chunk, r, local, vals, b, beta):
    """This chunk's piece of ``grad f1(z) = 2 Phi^T r / b + 2 beta (z - 1)`` (kept on the worker)."""
    u = 2.0 * _chunk_project(chunk, r) / b - 2.0 * beta
    u[local] += 2.0 * beta * vals
    return u


def _vec_take(u, local):
    return u[local]


def _vec_norm2(u):
    return float((u.double() ** 2).sum())


def _vec_dense_terms(chunk, u):
    return _chunk_combine(chunk, u), float(u.double().sum()), float((u.double() ** 2).sum())


def _vec_prox(u, sigma, local, vals, mu, alpha, b, rule, offset):
    """The chunk's own top-``b`` of the prox at ``s = z - mu u``: (global indices, score, s)."""
    s = -mu * u
    s[local] += vals
    score, largest = prox_score(s, sigma, alpha, rule)
    keep = topk_lowest_index(score, b, largest=largest, tiebreak=s)
    return keep + offset, score[keep], s[keep]



class DaskPoolVectors(PoolVectors):
    """Proximal IHT's length-``n`` vectors kept on the workers, one piece per pool chunk.

    The gradient ``u = grad f1(z)`` is computed per chunk (``Phi^T r`` as a map) and never
    leaves its worker; the solver fetches it only at a few ``b`` indices. ``Phi u`` (when the
    solver needs the full-gradient step) is a map plus a reduction in chunk order. The prox is
    a per-chunk top-``b`` with the same order and tie-break as
    :func:`~sparse_query.solvers.hard_threshold_prox`, merged on the client over at most
    ``b x n_chunks`` candidates, so it keeps exactly the indices the single-machine prox keeps.
    ``sigma`` is split into the same chunks.
    """

    def __init__(self, problem: SparseApproxProblem):
        super().__init__(problem)
        op = problem.op
        if not isinstance(op, DaskOperator):
            raise TypeError(f"problem.op must be a DaskOperator; got {type(op).__name__}.")
        self.op = op
        bounds = list(zip(op.offsets[:-1].tolist(), op.offsets[1:].tolist()))
        self._bounds = bounds
        self._sigma = op.client.scatter([problem.sigma[s:e].clone() for s, e in bounds])

    def _split(self, idx, vals=None):
        """Per chunk: (chunk number, local indices, values) of sorted global ``idx``."""
        idx_np = idx.cpu().numpy()
        which = np.searchsorted(self.op.offsets, idx_np, side="right") - 1
        out = {}
        for c in np.unique(which):
            mask = torch.from_numpy(which == c)
            out[int(c)] = (idx[mask] - int(self.op.offsets[c]),
                           None if vals is None else vals[mask])
        return out

    def _run(self, futs):
        return gather(self.op.client, futs, self.op.timeout)

    def gradient(self, z_idx, z_val, r):
        p, op = self.problem, self.op
        parts = self._split(z_idx, z_val)
        none = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=op.dtype))
        r = r.to(op.dtype)
        return [op.client.submit(_chunk_grad, chunk, r, *parts.get(c, none), p.b, p.beta,
                                 pure=False)
                for c, chunk in enumerate(op.chunks)]

    def norm2(self, u):
        return float(sum(self._run([self.op.client.submit(_vec_norm2, x, pure=False)
                                    for x in u])))

    def take(self, u, idx):
        parts = self._split(idx)
        if not parts:
            return torch.zeros(0, dtype=self.op.dtype)
        futs = [self.op.client.submit(_vec_take, u[c], local, pure=False)
                for c, (local, _) in sorted(parts.items())]
        return torch.cat(self._run(futs))

    def dense_terms(self, u):
        op = self.op
        parts = self._run([op.client.submit(_vec_dense_terms, chunk, x, pure=False)
                           for chunk, x in zip(op.chunks, u)])
        phi = torch.zeros(op.space_shape, dtype=op.dtype)
        for piece, _, _ in parts:  # in chunk order, like DaskOperator.combine
            phi += piece
        return (phi / self.problem.b, float(sum(t for _, t, _ in parts)),
                float(sum(q for _, _, q in parts)))

    def prox(self, u, z_idx, z_val, mu, rule):
        p, op = self.problem, self.op
        parts = self._split(z_idx, z_val)
        none = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=op.dtype))
        futs = [op.client.submit(_vec_prox, u[c], self._sigma[c], *parts.get(c, none), mu,
                                 p.alpha, p.b, rule, int(op.offsets[c]), pure=False)
                for c in range(len(op.chunks))]
        got = self._run(futs)  # chunk order: candidates sorted by global index
        idx = torch.cat([g[0] for g in got])
        score = torch.cat([g[1] for g in got])
        s = torch.cat([g[2] for g in got])
        keep = topk_lowest_index(score, p.b, largest=rule == "exact", tiebreak=s)
        return idx[keep], s[keep]

    def sigma2(self, idx):
        parts = self._split(idx)
        if not parts:
            return torch.zeros(0, dtype=self.op.dtype)
        futs = [self.op.client.submit(_vec_take, self._sigma[c], local, pure=False)
                for c, (local, _) in sorted(parts.items())]
        sig = torch.cat(self._run(futs))
        return sig * sig

    def close(self):
        try:
            self.op.client.cancel(self._sigma)
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass
