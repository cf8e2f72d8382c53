"""The committee's operator: :class:`ConcatOperator`, several operators over the same pool
presented as one whose space vectors are flat concatenations of the blocks'.

The committee gradient embedding (:mod:`sparse_query.embeddings.committee`) returns one
factored block per member, the leaf-and-input embedding
(:mod:`sparse_query.embeddings.leaf_inputs`) one block for the leaves (sparse) and one for the
inputs; this operator lets the solvers see them as one embedding.
"""
from __future__ import annotations

import math

import torch

from .base import DEFAULT_CHUNK, PoolOperator
from .convert import as_operator, sketch
from .dense import DenseOperator

__all__ = ["ConcatOperator"]


class ConcatOperator(PoolOperator):
    """Embeddings ``e_j = [e_j^1, ..., e_j^M]``: the concatenation of several pool operators.

    Space vectors are flat tensors of length ``sum_m prod(space_shape_m)``; inner products and
    Gram entries are sums over the blocks. Every block must describe the same ``n`` rows.
    """

    def __init__(self, blocks, *, chunk_size: int = DEFAULT_CHUNK):
        blocks = list(blocks)
        if not blocks:
            raise ValueError("ConcatOperator needs at least one block.")
        n = blocks[0].n
        for i, b in enumerate(blocks):
            if b.n != n:
                raise ValueError(f"block {i} has {b.n} rows but block 0 has {n}; every block "
                                 "must describe the same pool.")
        self.blocks = blocks
        self.n = n
        self._sizes = [math.prod(b.space_shape) for b in blocks]
        self.space_shape = (sum(self._sizes),)
        self.chunk_size = chunk_size

    @property
    def device(self):
        return self.blocks[0].device

    @property
    def dtype(self):
        return self.blocks[0].dtype

    def _split(self, r):
        parts, s = [], 0
        for b, k in zip(self.blocks, self._sizes):
            parts.append(r[s:s + k].reshape(b.space_shape))
            s += k
        return parts

    def combine(self, u):
        return torch.cat([b.combine(u).reshape(-1) for b in self.blocks])

    def combine_rows(self, idx, vals):
        return torch.cat([b.combine_rows(idx, vals).reshape(-1) for b in self.blocks])

    def project(self, r):
        return sum(b.project(p) for b, p in zip(self.blocks, self._split(r)))

    def project_rows(self, r, idx):
        return sum(b.project_rows(p, idx) for b, p in zip(self.blocks, self._split(r)))

    def gram_columns(self, idx):
        return sum(b.gram_columns(idx) for b in self.blocks)

    def gram_block(self, idx_rows, idx_cols):
        return sum(b.gram_block(idx_rows, idx_cols) for b in self.blocks)

    def sqnorms(self):
        return sum(b.sqnorms() for b in self.blocks)

    def dense(self):
        return torch.cat([b.dense() for b in self.blocks], dim=1)

    def take(self, idx):
        return ConcatOperator([b.take(idx) for b in self.blocks], chunk_size=self.chunk_size)

    @property
    def project_cost(self):
        return sum(b.project_cost for b in self.blocks)

    @property
    def column_cost(self):
        return sum(b.column_cost for b in self.blocks)

    def to(self, device, dtype=None) -> "ConcatOperator":
        """A copy with every block on ``device`` (and in ``dtype``)."""
        dtype = dtype or self.dtype
        return ConcatOperator([as_operator(b, device=device, dtype=dtype,
                                           chunk_size=self.chunk_size)
                               for b in self.blocks], chunk_size=self.chunk_size)

    def row_blocks(self):
        """Every block's row description, concatenated (None if a block has none): rows
        equal in all of them are copies (:mod:`sparse_query.duplicates`)."""
        out = []
        for b in self.blocks:
            rb = b.row_blocks()
            if rb is None:
                return None
            out.extend(rb)
        return out

    def _as_operator(self, *, device, dtype, chunk_size, name="embedding"):
        """Hook of :func:`sparse_query.operators.as_operator`: every block moved."""
        out = self.to(device, dtype)
        out.chunk_size = chunk_size
        return out

    def _sketch(self, sketch_dim, generator, chunk):
        """Hook of :func:`sparse_query.operators.sketch`."""
        return self.sketched(sketch_dim, generator=generator)

    def sketched(self, sketch_dim, generator=None) -> DenseOperator:
        """Sum of independent sketches of the blocks: inner products preserved in expectation."""
        E = None
        for b in self.blocks:
            s = sketch(b, sketch_dim, generator=generator).E
            E = s if E is None else E + s
        return DenseOperator(E, chunk_size=self.chunk_size)
