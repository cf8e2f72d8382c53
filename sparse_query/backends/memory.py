"""The in-memory backend: a pool the adapters read directly (dense, ``scipy.sparse``, dicts).

The model runs over the pool in chunks of ``batch_size`` rows on the client
(:func:`sparse_query.adapters.last_layer_outputs`, :func:`~sparse_query.adapters.posterior_probas`);
the embedding's own ``operator()`` decides the operator's form: factors with an implicit bias
column for dense features, a CSR feature factor for sparse ones
(:mod:`sparse_query.operators.sparse`), a dense matrix for posterior loss samples. Tree ensembles
and committees get their leaf and member gradients here too, and any other classifier with
``predict_proba`` its input-space gradients (:mod:`sparse_query.embeddings.input_gradient`).
The solver then moves the operator to its device.
"""
from __future__ import annotations

import torch

from .. import adapters
from ..adapters._draws import committee_last_layers
from ..adapters._trees import leaf_last_layer
from ..embeddings import class_block_gradient_embedding, committee_gradient_embedding
from ..embeddings import gradient_embedding, posterior_embedding
from ..embeddings.input_gradient import SATURATED, input_gradient_embedding
from ..embeddings.leaf_inputs import leaf_input_gradient_embedding
from ..problem import DenseOperator
from . import PoolBackend, PoolEmbedding

__all__ = ["InMemoryBackend"]


class InMemoryBackend(PoolBackend):
    """Pools held by this process; see :class:`~sparse_query.backends.PoolBackend`."""

    def gradient(self, est, temperature):
        ll = adapters.last_layer_outputs(est, self.X, batch_size=self.batch_size, device=None,
                                         progress=self.progress)
        if ll.logits.shape[1] < 2:
            return None
        # the bias column of h~ = [h, 1] stays implicit for dense features: no n x (d + 1)
        # copy of H; sparse features stay sparse (problem_sparse)
        emb = gradient_embedding(ll.logits, ll.features, temperature=temperature(),
                                 bias=ll.bias, _implicit_bias=True)
        return PoolEmbedding(emb.operator(), emb.sigma, emb.dim)

    def posterior(self, est, *, n_samples, random_state):
        probs = adapters.posterior_probas(
            est, self.X, n_samples=n_samples, random_state=random_state,
            batch_size=self.batch_size, device=None, progress=self.progress,
        )
        if probs.shape[2] < 2:
            return None
        emb = posterior_embedding(probs)
        return PoolEmbedding(DenseOperator(emb.e), emb.sigma, emb.e.shape[1])

    def leaf_gradient(self, est, temperature, *, class_blocks, input_weight=None):
        ll = leaf_last_layer(est, self.X, batch_size=self.batch_size, progress=self.progress,
                             with_inputs=input_weight is not None)
        if ll.logits.shape[1] < 2:
            return None
        T = temperature()
        if input_weight is not None:  # leaves and the trees' inputs (leaf-input-gradient)
            if ll.column_class is not None:
                raise ValueError(
                    "embedding='leaf-input-gradient' serves forests, extra trees and bagging "
                    f"of trees; {type(est).__name__} is boosting: use "
                    "embedding='leaf-gradient'.")
            op, sigma = leaf_input_gradient_embedding(ll.logits, ll.features, ll.inputs,
                                                      temperature=T, input_weight=input_weight,
                                                      bias=ll.bias)
            return PoolEmbedding(op, sigma, op.space_shape[0])
        if ll.column_class is not None and class_blocks:  # boosting: logit k reads its trees
            op, sigma = class_block_gradient_embedding(
                ll.logits, ll.dense_features(), ll.column_class, temperature=T, bias=ll.bias,
                dtype=self.dtype)
            return PoolEmbedding(op, sigma, op.space_shape[0])
        # the indicators stay CSR (one non-zero per tree and row): the sparse operator
        emb = gradient_embedding(ll.logits, ll.features, temperature=T, bias=ll.bias)
        return PoolEmbedding(emb.operator(), emb.sigma, emb.dim)

    def input_gradient(self, est, temperature):
        pi = adapters.proba_inputs(est, self.X, batch_size=self.batch_size,
                                   progress=self.progress)
        if pi.logits.shape[1] < 2:
            return None
        gap = float((1.0 - torch.softmax(torch.as_tensor(pi.logits, dtype=torch.float64), 1)
                     .max(1).values).max())
        if gap < SATURATED:  # one-hot on every row: e_j = 0 and sigma_j = 0 at every T
            return PoolEmbedding(None, None, 0, uninformative=(
                f"The model's probabilities are within {SATURATED:g} of one-hot on every pool "
                f"point (largest 1 - max p: {gap:.2g}), so its input-gradient embedding is zero "
                "and carries no information; returning a uniformly random batch. A model with "
                "graded probabilities (CalibratedClassifierCV(model), more neighbours for "
                "k-NN) gives the sparse approximation something to use."))
        op, sigma = input_gradient_embedding(pi.logits, pi.inputs, temperature=temperature())
        return PoolEmbedding(op, sigma, op.space_shape[0] * op.space_shape[1])

    def committee_gradient(self, est, temperature):
        parts = committee_last_layers(est, self.X, batch_size=self.batch_size)
        if parts[0][0].shape[1] < 2:
            return None
        op, sigma, _ = committee_gradient_embedding(
            [z for z, _, _ in parts], [h for _, h, _ in parts], temperature=temperature(),
            biases=[b for _, _, b in parts], dtype=self.dtype)
        return PoolEmbedding(op, sigma, op.space_shape[0])
