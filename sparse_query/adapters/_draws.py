"""Committee last layers (issue 14): the members of a modAL ``Committee`` as last layers, for the
committee gradient embedding.

Each member of a modAL ``Committee`` that has a last layer (a linear
model, an MLP, a skorch net) or leaves (a tree ensemble) contributes its features and logits,
columns aligned on the committee's classes.
"""
from __future__ import annotations

import numpy as np

from ._api import has_last_layer, last_layer_outputs
from ._common import EmbeddingNotSupportedError, _is_committee, _members, classes_of
from ._trees import has_leaf_layer, leaf_last_layer


def committee_last_layers(committee, X, *, batch_size=1024):
    """Per-member ``(logits, features, bias)`` of a modAL ``Committee`` on the pool.

    Members with a last linear layer use :func:`~sparse_query.adapters.last_layer_outputs`;
    tree ensembles use their one-hot leaves (densified here: the committee embedding is dense
    per block). Logit columns are aligned on the committee's classes.

    Raises
    ------
    EmbeddingNotSupportedError
        When a member has neither a last layer nor leaves, or its classes differ from the
        committee's (use ``embedding="posterior"`` then).
    """
    if not _is_committee(committee):
        raise EmbeddingNotSupportedError("committee_last_layers needs a modAL Committee.")
    classes = classes_of(committee)
    out = []
    for i, m in enumerate(_members(committee)):
        if has_leaf_layer(m):
            ll = leaf_last_layer(m, X, batch_size=batch_size)
            feats = ll.dense_features()
        elif has_last_layer(m):
            ll = last_layer_outputs(m, X, batch_size=batch_size)
            feats = ll.features
        else:
            raise EmbeddingNotSupportedError(
                f"Committee member {i} ({type(m).__name__}) has neither a last linear layer nor "
                "leaves, so embedding='committee-gradient' cannot be used; use "
                "embedding='posterior'.")
        mc = classes_of(m)
        if classes is not None and (mc is None or len(mc) != len(classes)
                                    or not np.array_equal(np.asarray(mc), classes)):
            raise EmbeddingNotSupportedError(
                f"Committee member {i} knows classes {mc!r} but the committee {classes!r}; "
                "embedding='committee-gradient' needs members trained on every class. Use "
                "embedding='posterior'.")
        if classes is not None and ll.logits.shape[1] != len(classes):
            raise EmbeddingNotSupportedError(
                f"Committee member {i} gives {ll.logits.shape[1]} logit columns for the "
                f"committee's {len(classes)} classes (a net with more outputs than the classes "
                "it saw); set the net's classes= to every class, or use embedding='posterior'.")
        out.append((ll.logits, feats, bool(ll.bias)))
    return out


def committee_has_last_layers(committee) -> bool:
    """True when every member of the committee has a last layer or leaves."""
    if not _is_committee(committee) or not committee.learner_list:
        return False
    classes = classes_of(committee)
    for m in _members(committee):
        if not (has_leaf_layer(m) or has_last_layer(m)):
            return False
        mc = classes_of(m)
        if classes is not None and (mc is None or not np.array_equal(np.asarray(mc), classes)):
            return False
    return True
