"""Committee gradient embedding: every member's last layer, one label distribution (issue 14).

A committee (modAL ``Committee``) predicts ``P_j = (1/M) sum_m p_j^m``. Its members' losses are
summed over members; the gradient of the committee's cross-entropy *sum* with respect to all
members' last layers at once, for a label ``y``, is the concatenation over members of
``(p_j^m - onehot(y)) (outer) h~_j^m`` (scaled by ``1/M``). Taking the expectation over the
committee's label distribution ``Q_j = softmax(log P_j / T)``::

    e_j     = (1/M) [ (p_j^m - Q_j) (outer) h~_j^m ]_{m=1..M}
    sigma_j = (1/n) (1/M) sqrt(sum_m ||h~_j^m||^2) sum_y Q_j(y) ||Q_j - onehot(y)||

With ``M = 1`` this is :func:`~sparse_query.embeddings.gradient_embedding` exactly (``log p_j`` and
``z_j`` differ by a constant per row, so ``softmax(log p_j / T) = softmax(z_j / T)``). Each block
stays factored; :class:`ConcatOperator` presents the blocks to the solvers as one operator whose
space vectors are flat concatenations.
"""
from __future__ import annotations

import numpy as np
import torch

from ..operators import ConcatOperator, FactoredOperator
from ._gradient_core import _expected_onehot_distance, _label_distribution

__all__ = ["committee_gradient_embedding", "class_block_gradient_embedding"]


def committee_gradient_embedding(member_logits, member_features, *, temperature: float,
                                 biases, dtype=None):
    """The committee gradient embedding (module docstring) as a :class:`ConcatOperator`.

    Parameters
    ----------
    member_logits : list of torch.Tensor, each (n_samples, n_classes)
        Member logits on the pool, columns aligned on the committee's classes.
    member_features : list of torch.Tensor, each (n_samples, d_m)
        Member last-layer inputs.
    temperature : float
        ``T >= 0`` of the label distribution ``Q_j = softmax(log P_j / T)`` (0: one-hot).
    biases : list of bool
        Whether member ``m``'s last layer has a bias (appends a column of ones to ``h^m``).
    dtype : torch.dtype, optional
        dtype of the returned operator and sigma (computed in float64 when any input is).

    Returns
    -------
    operator : ConcatOperator
    sigma : torch.Tensor of shape (n_samples,)
    probs : torch.Tensor of shape (n_samples, n_classes)
        The committee's mean probabilities ``P_j``.
    """
    M = len(member_logits)
    if M == 0 or len(member_features) != M or len(biases) != M:
        raise ValueError("member_logits, member_features and biases must have one entry per "
                         f"member; got {len(member_logits)}, {len(member_features)}, "
                         f"{len(biases)}.")
    dtype_in = torch.float64 if any(t.dtype == torch.float64 for t in
                                    list(member_logits) + list(member_features)) else torch.float32
    out = dtype if dtype is not None else dtype_in
    dtype = torch.float64
    n, K = member_logits[0].shape
    for i, (z, h) in enumerate(zip(member_logits, member_features)):
        if z.shape != (n, K) or h.shape[0] != n:
            raise ValueError(f"member {i} has logits {tuple(z.shape)} and features "
                             f"{tuple(h.shape)}; member 0 has logits {(n, K)}.")
    ps = [torch.softmax(z.to(dtype), dim=1) for z in member_logits]
    P = torch.stack(ps).mean(dim=0)
    logP = torch.log(P.clamp_min(1e-30))
    Q = _label_distribution(logP, P, float(temperature))
    blocks, sq = [], torch.zeros(n, dtype=dtype)
    for p, h, bias in zip(ps, member_features, biases):
        h = h.to(dtype)
        if bias:
            h = torch.cat([h, torch.ones((n, 1), dtype=dtype)], dim=1)
        sq += (h * h).sum(dim=1)
        blocks.append(((p - Q) / M, h))
    sigma = sq.sqrt() / M * _expected_onehot_distance(Q) / n
    blocks = [FactoredOperator(a.to(out).contiguous(), h.to(out).contiguous()) for a, h in blocks]
    return ConcatOperator(blocks), sigma.to(out), P


def class_block_gradient_embedding(logits, features, column_class, *, temperature: float,
                                   bias: bool, dtype=None):
    """Exact last-layer gradient embedding of a model whose logit ``k`` reads only its own features.

    Gradient boosting adds, for class ``k``, the values of the leaves of class ``k``'s trees:
    ``z_jk = c_k + sum_{l in L_k} v_l H_jl``. The cross-entropy gradient with respect to the
    leaf values is then block-wise, ``g_j(y) = [(p_jk - onehot_k(y)) H_j[L_k]]_k``, not the full
    outer product ``(p_j - onehot(y)) (outer) H_j``. With ``P_j = softmax(z_j / T)``::

        e_j     = [(p_jk - P_jk) h~_j^k]_k          (h~^k = [H_j[L_k], 1] with a bias)
        sigma_j = (1/n) sum_y P_j(y) sqrt(sum_k (P_jk - onehot_k(y))^2 ||h~_j^k||^2)

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, K)
    features : torch.Tensor of shape (n_samples, n_leaves)
    column_class : ndarray of shape (n_leaves,)
        The logit column each feature feeds. Logit columns fed by no feature (the fixed 0 of a
        binary model) have no block.
    temperature : float
    bias : bool
        Whether each fed logit has a learned constant (a column of ones in its block).
    dtype : torch.dtype, optional

    Returns
    -------
    operator : ConcatOperator
    sigma : torch.Tensor of shape (n_samples,)
    """
    z = logits.to(torch.float64)
    H = features.to(torch.float64)
    n, K = z.shape
    column_class = np.asarray(column_class)
    if column_class.shape != (H.shape[1],):
        raise ValueError(f"column_class has shape {column_class.shape} but features has "
                         f"{H.shape[1]} columns.")
    out = dtype if dtype is not None else (torch.float64 if logits.dtype == torch.float64
                                           else torch.float32)
    p = torch.softmax(z, dim=1)
    P = _label_distribution(z, p, float(temperature))
    blocks, hsq = [], torch.zeros((n, K), dtype=torch.float64)
    for k in np.unique(column_class).tolist():
        hk = H[:, torch.from_numpy(np.flatnonzero(column_class == k))]
        if bias:
            hk = torch.cat([hk, torch.ones((n, 1), dtype=torch.float64)], dim=1)
        hsq[:, k] = (hk * hk).sum(dim=1)
        blocks.append(FactoredOperator((p - P)[:, k:k + 1].to(out).contiguous(),
                                       hk.to(out).contiguous()))
    eye = torch.eye(K, dtype=torch.float64)
    diff2 = (P[:, None, :] - eye[None, :, :]) ** 2             # (n, y, k)
    norms = (diff2 * hsq[:, None, :]).sum(dim=2).sqrt()          # (n, y)
    sigma = (P * norms).sum(dim=1) / n
    return ConcatOperator(blocks), sigma.to(out)
