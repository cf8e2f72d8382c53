"""Embeddings: the inputs ``e_j`` and ``sigma_j`` of the sparse-approximation problem (SPEC section 2).

Two kinds, both pure tensor maths (no estimators, except :func:`estimate_temperature`, which
only calls what it is handed):

* :func:`gradient_embedding` -- the non-Bayesian last-layer gradient embedding (paper eq. 14),
  returned in factored form ``e_j = a_j (outer) h_j``;
* :func:`posterior_embedding` -- the Bayesian embedding from loss samples over posterior
  draws (paper eq. 13).

Both use ``e_j = E_{y~P_j} g_j(y)`` and ``sigma_j = (1/n) E_{y~P_j} ||g_j(y) - e_j||`` with
exact sums over the ``K`` classes. :func:`fit_temperature` and :func:`estimate_temperature`
calibrate the label distribution ``P_j`` of the gradient embedding (Guo et al. 2017).

Where each lives:

- :mod:`~sparse_query.embeddings.gradient` -- :func:`gradient_embedding` (checked entry);
  :mod:`~sparse_query.embeddings._gradient_core` -- :class:`GradientEmbedding` and the
  unchecked core; :mod:`~sparse_query.embeddings.gradient_sparse` --
  :class:`SparseGradientEmbedding` (CSR features kept sparse);
- :mod:`~sparse_query.embeddings.committee` -- a committee's gradient embedding over every
  member's last layer, and the class-block embedding of one-vs-rest boosting;
- :mod:`~sparse_query.embeddings.leaf_inputs` -- a tree ensemble's leaves and its standardized
  inputs as one last layer (``embedding="leaf-input-gradient"``);
- :mod:`~sparse_query.embeddings.posterior` -- :class:`PosteriorEmbedding`,
  :func:`posterior_embedding`;
- :mod:`~sparse_query.embeddings.temperature` -- :func:`fit_temperature`,
  :func:`estimate_temperature`;
- :mod:`~sparse_query.embeddings.reliability` -- :func:`heldout_reliability`, the
  chance-corrected cross-validated accuracy behind ``alpha_reliability="held-out"``;
- :mod:`~sparse_query.embeddings._inputs` -- the input checks they share.
"""
from ._gradient_core import GradientEmbedding
from ._gradient_core import _expected_onehot_distance  # noqa: F401  (distributed.py imports it here)
from .committee import class_block_gradient_embedding, committee_gradient_embedding  # noqa: F401
from .gradient import gradient_embedding
from .gradient_sparse import SparseGradientEmbedding  # noqa: F401
from .posterior import PosteriorEmbedding, posterior_embedding
from .temperature import (  # noqa: F401  (sampler.py imports DEFAULT_FALLBACK_TEMPERATURE here)
    DEFAULT_FALLBACK_TEMPERATURE, DEFAULT_MIN_SAMPLES, estimate_temperature, fit_temperature,
)

__all__ = [
    "GradientEmbedding",
    "PosteriorEmbedding",
    "gradient_embedding",
    "posterior_embedding",
    "fit_temperature",
    "estimate_temperature",
]
