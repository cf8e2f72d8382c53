"""Old import path of the committee gradient embeddings, kept for ``sampler.py`` only.

The code lives in :mod:`sparse_query.embeddings.committee`. Remove this module once
``sampler.py`` (issue 16 part B) imports from there.
"""
from .embeddings.committee import class_block_gradient_embedding, committee_gradient_embedding

__all__ = ["committee_gradient_embedding", "class_block_gradient_embedding"]
