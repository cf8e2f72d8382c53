"""Copies in the pool: group rows whose embeddings are identical, so a batch never holds two.

Why: the variance term ``-alpha sum_{j in S} sigma_j^2`` counts the
uncertainty of every selected point as removed independently, but labelling one copy of a
point fixes the label of all of its copies. Left alone, both solvers spend labels on copies
(IHT's separable prox ranks every copy of the best point first). The library's
problem therefore works on *groups*: each group of identical rows is one candidate (its
lowest pool index represents it), its ``sigma^2`` counts once, while the pool mean ``v`` keeps
every copy -- the representative of a group of ``c`` copies has weight ``c / n`` in ``v``,
so its chosen weight ``w`` is free to grow to stand for all of them.

What counts as identical. Two rows are grouped when every one of their factors (``A`` and
``H`` of a factored embedding, the row of a dense one) and their ``sigma`` agree on a grid of
``2**-bits`` times the row's largest magnitude (per factor; ``bits=16`` by default, about
five significant digits). Copies of one input row through one model are bit-identical in
the models we tested (scikit-learn's logistic regression and MLP, a torch CNN within one
batch size); a torch model run with different batch sizes or thread counts can move a copy
by a few float32 units in the last place (2**-23 relative), which the grid absorbs except
where a value lies within that distance of a grid boundary (then the copy stays its own
group: the paper's behaviour for that copy, never a wrong merge). Points that agree to five
significant digits in every coordinate of their gradient embedding are, for the objective,
the same point. Grouping compares factors, not the product ``a_j (outer) h_j``: distinct inputs
whose embeddings both vanish (``a_j = 0``, e.g. every point at ``T = 1``) are not merged,
since their labels are not tied.

Cost. One hash of the cheap parts of every row (``A`` and ``sigma``: ``n (K + 1)`` numbers)
finds the rows that *could* be copies; only those have their wide part ``H`` hashed and are
then compared entry by entry with their group's representative (a hash collision can
therefore never merge distinct rows). All in chunks, O(n) memory beyond the inputs, no
``n x n`` distances. A pool with no copies costs one pass over ``A``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DuplicateGroups", "group_duplicates", "DEFAULT_BITS"]

#: Grid resolution relative to a row's largest magnitude: 2**-16 ~ 1.5e-5.
DEFAULT_BITS = 16
_CHUNK = 65536
# exact integer hashing in float64: |q| <= 2**bits, coefficients < 2**20, so every partial sum
# of up to 2**(52 - 20 - bits) columns is an exact integer and the sum is order-independent
_COEF_BITS = 20
_MAX_ENTRIES = 2**22


@dataclass
class DuplicateGroups:
    """Groups of identical pool rows.

    Attributes
    ----------
    reps : Tensor of shape (n_groups,), int64
        The lowest pool index of every group, ascending (the group's candidate row).
    counts : Tensor of shape (n_groups,), int64
        How many pool rows each group holds.
    inverse : Tensor of shape (n_pool,), int64
        The group of every pool row (``reps[inverse[j]]`` represents row ``j``).
    keys : Tensor of shape (n_pool,), int64
        A hash of every row's content: equal for rows of one group, otherwise as good as
        random, and independent of the order of the pool (used by IHT's "spread" start).
    """

    reps: torch.Tensor
    counts: torch.Tensor
    inverse: torch.Tensor
    keys: torch.Tensor | None = None

    @property
    def n_groups(self) -> int:
        return int(self.reps.numel())

    @property
    def n_pool(self) -> int:
        return int(self.inverse.numel())

    @property
    def has_copies(self) -> bool:
        return self.n_groups < self.n_pool

    def fill(self, chosen_groups: torch.Tensor, b: int) -> torch.Tensor:
        """Pool indices of a batch of ``b`` when there are fewer than ``b`` groups.

        ``chosen_groups`` are group ids (every group, when called by the solvers); their
        representatives come first, then further copies round-robin over the groups
        (largest group first, then the lower representative), each group's copies in
        index order -- so the labels are spread over as many distinct points as exist.
        """
        dev = self.inverse.device
        order = torch.argsort(self.inverse, stable=True)            # rows grouped, index order
        starts = torch.zeros(self.n_groups, dtype=torch.long, device=dev)
        starts[1:] = torch.cumsum(self.counts, 0)[:-1]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(self.n_pool, device=dev) - starts[self.inverse[order]]
        # round r of the round-robin takes the r-th copy of every group still holding one;
        # within a round larger groups (then lower representatives) go first
        size_rank = torch.empty(self.n_groups, dtype=torch.long, device=dev)
        by_size = torch.argsort(-self.counts, stable=True)
        size_rank[by_size] = torch.arange(self.n_groups, device=dev)
        key = rank * self.n_groups + size_rank[self.inverse]
        first = self.reps[chosen_groups]
        rest = torch.argsort(key, stable=True)
        rest = rest[rank[rest] > 0][: b - first.numel()]
        return torch.cat([first, rest])


def _quantise(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Round every row of ``x`` to the grid ``2**(e - bits)`` where ``2**e > max|row|``; float64
    integers in ``[-2**bits, 2**bits]``. ``-0`` and ``+0`` agree."""
    x = x.double()
    scale = x.abs().amax(dim=1, keepdim=True)
    _, e = torch.frexp(scale)                    # scale = m * 2**e with 0.5 <= m < 1
    step = torch.ldexp(torch.ones_like(scale), e - bits)
    return torch.round(x / step) + 0.0


def _coefficients(k: int, device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 2**_COEF_BITS, (k, 2), generator=g, dtype=torch.int64).double().to(device)


def _hash_block(x: torch.Tensor, bits: int, seed: int) -> torch.Tensor:
    """Two exact integer hashes (float64) of the quantised rows of ``x``: shape (rows, 2)."""
    q = _quantise(x, bits)
    k = q.shape[1]
    width = 2 ** max(1, 52 - _COEF_BITS - bits - 1)
    out = torch.zeros((q.shape[0], 2), dtype=torch.float64, device=q.device)
    for s in range(0, k, width):  # fold wide rows in column blocks, each sum exact
        part = q[:, s:s + width] @ _coefficients(min(width, k - s), q.device, seed + s)
        out = torch.remainder(out * 1_000_003.0 + torch.remainder(part, 2.0**31), 2.0**31)
    return out


def _combine(keys: torch.Tensor) -> torch.Tensor:
    """Two 31-bit hashes -> one int64 key."""
    k = torch.remainder(keys, 2.0**31).to(torch.int64)
    return k[:, 0] * (2**31) + k[:, 1]


def _rows_per_chunk(block, chunk_size: int) -> int:
    """Rows of ``block`` gathered at once: at most ``chunk_size`` and about 2**22 entries, so
    a wide block (a TF-IDF ``H`` gathered dense, see ``operators.sparse``) stays bounded."""
    return max(1, min(chunk_size, _MAX_ENTRIES // max(1, int(block.shape[1]))))


def group_duplicates(blocks, sigma: torch.Tensor, *, bits: int = DEFAULT_BITS,
                     chunk_size: int = _CHUNK) -> DuplicateGroups:
    """Group the rows that agree, on the ``2**-bits`` grid, in every block and in ``sigma``.

    Parameters
    ----------
    blocks : sequence of Tensor, each of shape (n, k_i)
        What determines a row's embedding, cheapest first (``[A, H]`` for a factored
        embedding, ``[E]`` for a dense one). Only rows that agree on the first block (and
        ``sigma``) have the later blocks hashed.
    sigma : Tensor of shape (n,)
    bits : int, default=16
        Grid resolution relative to the row's largest magnitude in the block.
    chunk_size : int, default=65536
        Rows hashed at once.

    Returns
    -------
    DuplicateGroups
    """
    n = int(sigma.shape[0])
    dev = sigma.device
    blocks = list(blocks)
    # stage 1: the first block and sigma, for every row
    keys = torch.empty(n, dtype=torch.int64, device=dev)
    first = blocks[0]
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        x = torch.cat([first[s:e].double(), sigma[s:e, None].double()], dim=1)
        keys[s:e] = _combine(_hash_block(x, bits, 0))
    # stage 2: later blocks only for rows whose key is shared
    for level, blk in enumerate(blocks[1:], start=1):
        _, inv, cnt = torch.unique(keys, return_inverse=True, return_counts=True)
        cand = (cnt[inv] > 1).nonzero().reshape(-1)
        step = _rows_per_chunk(blk, chunk_size)
        for s in range(0, cand.numel(), step):
            rows = cand[s:s + step]
            h = _hash_block(blk[rows], bits, 1000 * level)
            old = torch.remainder(keys[rows], 2**31).double()
            mixed = torch.remainder(h + old[:, None] * 7919.0, 2.0**31)
            keys[rows] = _combine(mixed)
    uniq, inv = torch.unique(keys, return_inverse=True)
    # representative = lowest index of each key
    n_keys = uniq.numel()
    reps = torch.full((n_keys,), n, dtype=torch.long, device=dev)
    reps.scatter_reduce_(0, inv, torch.arange(n, device=dev), reduce="amin")
    # verify: every member of a multi-row key equals its representative on the grid
    cnt = torch.bincount(inv, minlength=n_keys)
    members = (cnt[inv] > 1).nonzero().reshape(-1)
    bad = torch.zeros(n, dtype=torch.bool, device=dev)
    step = min(_rows_per_chunk(blk, chunk_size) for blk in blocks)
    for s in range(0, members.numel(), step):
        rows = members[s:s + step]
        rep = reps[inv[rows]]
        same = _quantise(sigma[rows, None], bits).eq(_quantise(sigma[rep, None], bits)).all(1)
        for blk in blocks:
            same &= _quantise(blk[rows], bits).eq(_quantise(blk[rep], bits)).all(1)
        bad[rows[~same]] = True
    if bool(bad.any()):  # a hash collision: the rows that differ stay on their own
        inv = inv.clone()
        idx = bad.nonzero().reshape(-1)
        inv[idx] = n_keys + torch.arange(idx.numel(), device=dev)
    # renumber groups by their representative (ascending pool index)
    n_all = int(inv.max()) + 1
    reps = torch.full((n_all,), n, dtype=torch.long, device=dev)
    reps.scatter_reduce_(0, inv, torch.arange(n, device=dev), reduce="amin")
    used = reps < n
    order = torch.argsort(reps[used])
    new_id = torch.full((n_all,), -1, dtype=torch.long, device=dev)
    new_id[used.nonzero().reshape(-1)[order]] = torch.arange(int(used.sum()), device=dev)
    inverse = new_id[inv]
    reps = reps[used][order]
    counts = torch.bincount(inverse, minlength=reps.numel())
    return DuplicateGroups(reps=reps, counts=counts, inverse=inverse, keys=keys)
