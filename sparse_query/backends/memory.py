"""The in-memory backend: a pool the adapters read directly (dense, ``scipy.sparse``, dicts).

The model runs over the pool in chunks of ``batch_size`` rows on the client
(:func:`sparse_query.adapters.last_layer_outputs`, :func:`~sparse_query.adapters.posterior_probas`);
the embedding's own ``operator()`` decides the operator's form: factors with an implicit bias
column for dense features, a CSR feature factor for sparse ones
(:mod:`sparse_query.problem_sparse`), a dense matrix for posterior loss samples. The solver
then moves it to its device.
"""
from __future__ import annotations

from .. import adapters
from ..embeddings import gradient_embedding, posterior_embedding
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

    def rows(self, kind):
        return self.X
