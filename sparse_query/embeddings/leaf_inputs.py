"""Leaves and inputs as one last layer: ``embedding="leaf-input-gradient"`` (issue 14).

A tree ensemble fitted on few labels near chance has coarse, arbitrary leaves: points that
share them need not be alike, so the leaf gradient embedding says little about which points
represent the pool. This embedding widens the last layer with the trees' own inputs, as if a
linear head read both the leaf indicators ``l_j`` and the standardized inputs ``x~_j``::

    h_j     = [ l_j / r_l ,  w * x~_j / r_x ]
    e_j     = (p_j - P_j) (outer) h_j
    sigma_j = (1/n) ||h_j|| sum_y P_j(y) ||P_j - onehot(y)||

``p_j`` are the ensemble's own probabilities and ``P_j = softmax(log p_j / T)`` as in the leaf
embedding; ``r_l`` and ``r_x`` are the root-mean-square row norms of the two blocks over the
pool, so each block has unit mean squared norm before the weight ``w`` (``input_weight``).
``x~`` centres and scales every column to unit variance over the pool (dense inputs) or scales
it to unit root mean square without centring (sparse inputs, which stay sparse); a constant
column is zero. With ``w = 0`` this is the leaf embedding with its features divided by ``r_l``.

The two blocks share ``p_j - P_j``, so ``e_j`` is their concatenation and
``sigma_j^2 = sigma_j(l)^2 + sigma_j(x)^2``; each block stays factored (the leaves CSR) inside
a :class:`~sparse_query.operators.ConcatOperator`. The input block is the one of
``embedding="input-gradient"`` (:func:`~sparse_query.embeddings.input_gradient.input_block`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_float
from ..operators import ConcatOperator
from .gradient import gradient_embedding
from .input_gradient import input_block, standardized_inputs

__all__ = ["standardized_inputs", "leaf_input_gradient_embedding"]


def _rms_row_norm(H) -> float:
    """``sqrt(mean_j ||H_j||^2)`` of a sparse matrix."""
    return float(np.sqrt(np.asarray(H.multiply(H).sum(axis=1), dtype=np.float64).mean()))


def leaf_input_gradient_embedding(logits, leaves, inputs, *, temperature: float,
                                  input_weight: float, bias: bool = False):
    """The embedding of the module docstring: ``(operator, sigma)``.

    Parameters
    ----------
    logits : torch.Tensor of shape (n, K)
        The ensemble's logits (``log p_j`` for forests).
    leaves : scipy.sparse matrix of shape (n, n_leaves)
        The one-hot leaf indicators.
    inputs : ndarray or scipy.sparse matrix of shape (n, d)
        What the trees split on.
    temperature : float
        ``T`` of the label distribution ``P_j``.
    input_weight : float
        ``w >= 0``, the inputs' weight against the leaves (each block at unit mean squared norm).
    bias : bool, default=False
        Whether the leaf block carries a bias column (boosting's constant term).

    Returns
    -------
    operator : ConcatOperator
        Blocks ``(p - P) (outer) l / r_l`` and ``(p - P) (outer) w x~ / r_x`` (the second left
        out when ``w = 0`` or every input column is constant).
    sigma : torch.Tensor of shape (n,)
    """
    w = check_float(input_weight, "input_weight", min_val=0.0)
    if inputs.shape[0] != leaves.shape[0]:
        raise ValueError(f"inputs has {inputs.shape[0]} rows but leaves has {leaves.shape[0]}; "
                         "both must describe the same pool.")
    r_l = _rms_row_norm(leaves)
    emb = gradient_embedding(logits, sp.csr_matrix(leaves * (1.0 / r_l), dtype=np.float32),
                             temperature=temperature, bias=bias)
    blocks, sigma2 = [emb.operator()], emb.sigma.double() ** 2
    if w > 0:  # the input block, shared with embedding="input-gradient"
        z = torch.as_tensor(logits).to(emb.a.dtype)
        op_x, sigma_x = input_block(z, inputs, temperature=temperature, weight=w,
                                     per_column=True)
        if op_x is not None:
            blocks.append(op_x)
            sigma2 = sigma2 + sigma_x.double() ** 2
    return ConcatOperator(blocks), sigma2.sqrt().to(emb.sigma.dtype)
