"""Tree ensembles as last layers: one-hot leaf indicators and the ensemble's own logits.

A forest's ``predict_proba`` is the mean over its trees of the class distribution stored in the
leaf each point falls in, so it is *linear in the one-hot leaf indicators* returned by
``apply()``: ``p(x) = (1/T) sum_t V_t[leaf_t(x)] = H(x) @ V``. A gradient-boosted model's
decision function is linear in the same indicators too: ``z(x) = init + lr * sum_m
v_m[leaf_m(x)]``. Those indicators are the representation the gradient embedding needs
(``features``), and the ensemble's own probabilities give the logits:

- forests, extra trees and bagging of trees: ``logits = log(max(predict_proba, eps))``, so
  ``softmax(logits)`` is ``predict_proba`` up to ``K * eps``;
- ``GradientBoostingClassifier``: ``logits = decision_function`` (two columns ``[0, z]`` for a
  binary model), whose softmax *is* ``predict_proba``.

Both are checked on every call: the leaf-linear reconstruction ``H @ V`` (forests) or
``H @ W + init`` (boosting) must equal what the estimator itself predicts, else the call
raises instead of embedding numbers that are not the model's.

The indicators are kept as a ``scipy.sparse`` CSR matrix (``n_samples x n_leaves``, ``T``
non-zeros per row). :meth:`LeafLayer.dense_features` is the one place that densifies them for
the (dense) gradient embedding.

``HistGradientBoostingClassifier`` has no public ``apply()`` and is not covered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ._common import (
    EmbeddingNotSupportedError, _apply, _check_feature_names, _name, _resolve, check_fitted,
    classes_of,
)
from ._rows import _chunks, _prepare_X, _progress, _to_numpy

#: Probabilities are raised to this before the log that makes forest logits.
LEAF_EPS = 1e-12

_TREE_HELP = (
    "Leaf embeddings serve RandomForestClassifier, ExtraTreesClassifier, BaggingClassifier of "
    "decision trees and GradientBoostingClassifier (single-output classifiers)."
)


@dataclass
class LeafLayer:
    """One-hot leaf indicators and logits of a tree ensemble on a pool (a :class:`LastLayer`
    whose features are sparse).

    Attributes
    ----------
    features : scipy.sparse.csr_matrix of shape (n_samples, n_leaves), float32
        ``features[j, c] = 1`` when point ``j`` falls into leaf ``c`` (leaves of all trees
        numbered consecutively); one non-zero per tree and row.
    logits : torch.Tensor of shape (n_samples, n_classes), float64
        ``softmax(logits)`` equals the ensemble's ``predict_proba``.
    bias : bool
        Whether the ensemble's score has a constant term (boosting's ``init``); forests have none.
    classes : ndarray of shape (n_classes,) or None
    n_trees : int
        Trees behind the indicators (``n_stages * K`` for multiclass boosting).
    kind : str
        ``"forest"`` (probability averaging) or ``"boosting"`` (additive logits).
    column_class : ndarray of shape (n_leaves,) or None
        Boosting only: the logit column each leaf's value is added to (a multiclass model
        grows one tree per class and stage; a binary one adds to column 1 of ``[0, z]``).
    inputs : ndarray (n_samples, n_features), scipy.sparse.csr_matrix or None
        What the trees split on (the pool after a pipeline's transforms), when asked for
        with ``leaf_last_layer(..., with_inputs=True)``: a numeric numpy pool without
        transforms is returned itself (no copy), anything else as float32; sparse inputs stay
        CSR.
    """

    features: sp.csr_matrix
    logits: torch.Tensor
    bias: bool
    classes: np.ndarray | None
    n_trees: int
    kind: str
    column_class: np.ndarray | None = None
    inputs: np.ndarray | sp.csr_matrix | None = None

    def dense_features(self, dtype=torch.float32) -> torch.Tensor:
        """The indicators as a dense ``(n_samples, n_leaves)`` tensor.

        The only place the sparse indicators become dense (``n_samples * n_leaves`` values):
        used by boosting's class-block embedding and by tests. Forests and bagging go through
        :mod:`sparse_query.operators.sparse` and never densify.
        """
        return torch.from_numpy(self.features.toarray()).to(dtype)


# ---------------------------------------------------------------------------------------------
# recognising tree ensembles
# ---------------------------------------------------------------------------------------------
def _is_tree(m) -> bool:
    t = getattr(m, "tree_", None)
    return t is not None and hasattr(t, "children_left") and hasattr(m, "apply")


def _tree_kind(est):
    """``"forest"``, ``"bagging"``, ``"boosting"`` or None."""
    from sklearn.ensemble import (
        BaggingClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
        RandomForestClassifier,
    )

    if isinstance(est, (RandomForestClassifier, ExtraTreesClassifier)):
        return "forest"
    if isinstance(est, BaggingClassifier):
        members = getattr(est, "estimators_", None)
        if members and all(_is_tree(m) and hasattr(m, "predict_proba") for m in members):
            return "bagging"
        return None
    if isinstance(est, GradientBoostingClassifier):
        return "boosting"
    return None


def has_leaf_layer(estimator) -> bool:
    """Whether :func:`leaf_last_layer` can serve this (fitted) estimator.

    True for a fitted ``RandomForestClassifier``, ``ExtraTreesClassifier``,
    ``BaggingClassifier`` whose members are all decision trees, or
    ``GradientBoostingClassifier`` (single output), also behind a pipeline or a modAL learner.
    """
    if hasattr(estimator, "learner_list"):
        return False
    _, est = _resolve(estimator)
    kind = _tree_kind(est)
    if kind is None or not hasattr(est, "estimators_"):
        return False
    return getattr(est, "n_outputs_", 1) == 1


def is_boosting(estimator) -> bool:
    """True for a (fitted) ``GradientBoostingClassifier``, also behind a pipeline or learner."""
    if hasattr(estimator, "learner_list"):
        return False
    return _tree_kind(_resolve(estimator)[1]) == "boosting"


# ---------------------------------------------------------------------------------------------
# leaves and leaf values
# ---------------------------------------------------------------------------------------------
def _leaf_index(tree):
    """``(node -> leaf column or -1, n_leaves)`` for one fitted sklearn tree."""
    is_leaf = tree.tree_.children_left == -1
    col = np.full(is_leaf.shape[0], -1, dtype=np.int64)
    col[is_leaf] = np.arange(int(is_leaf.sum()))
    return col, int(is_leaf.sum())


def _trees_of(est, kind):
    """``[(tree, feature subset or None, class columns or None, class k or None)]``."""
    if kind == "forest":
        return [(t, None, None, None) for t in est.estimators_]
    if kind == "bagging":
        K = len(est.classes_)
        out = []
        for t, feats in zip(est.estimators_, est.estimators_features_):
            cols = None if len(t.classes_) == K else np.asarray(t.classes_, dtype=np.int64)
            out.append((t, np.asarray(feats), cols, None))
        return out
    grid = est.estimators_  # (n_stages, K') of regression trees
    return [(grid[s, k], None, None, k) for s in range(grid.shape[0]) for k in range(grid.shape[1])]


def _forest_values(tree, cols, K):
    """Leaf class distributions ``(n_leaves, K)`` of one classification tree."""
    leaf_col, n_leaves = _leaf_index(tree)
    v = np.asarray(tree.tree_.value[:, 0, :], dtype=np.float64)[leaf_col >= 0]
    v = v[:, : len(tree.classes_)] if cols is not None else v[:, :K]
    s = v.sum(axis=1, keepdims=True)
    s[s <= 0] = 1.0
    v = v / s
    if cols is None:
        return v
    full = np.zeros((n_leaves, K))
    full[:, cols] = v
    return full


def leaf_last_layer(estimator, X, *, batch_size: int = 1024, progress: bool = False,
                    eps: float = LEAF_EPS, rtol: float = 1e-6,
                    with_inputs: bool = False) -> LeafLayer:
    """One-hot leaf indicators and logits of a fitted tree ensemble on a pool.

    Parameters
    ----------
    estimator : object
        A fitted ``RandomForestClassifier``, ``ExtraTreesClassifier``, ``BaggingClassifier`` of
        decision trees or ``GradientBoostingClassifier`` (or a pipeline / modAL learner around
        one).
    X : array-like of shape (n_samples, n_features)
        The pool.
    batch_size : int, default=1024
        Rows per call to ``apply()``.
    progress : bool, default=False
        Show a tqdm progress bar.
    eps : float, default=1e-12
        Forest probabilities are raised to ``eps`` before the log (a leaf that saw one class
        gives the others probability 0).
    rtol : float, default=1e-6
        Tolerance of the check that the leaf-linear reconstruction equals the estimator's own
        ``predict_proba`` (forests) or ``decision_function`` (boosting).
    with_inputs : bool, default=False
        Also return the trees' inputs (``LeafLayer.inputs``), for
        ``embedding="leaf-input-gradient"``.

    Returns
    -------
    LeafLayer
        ``features`` (CSR, ``n_samples x n_leaves``), ``logits`` (``n_samples x K``), ``bias``,
        ``classes``, ``n_trees``, ``kind``.

    Raises
    ------
    EmbeddingNotSupportedError
        When the estimator is not a supported tree ensemble.
    RuntimeError
        When the leaf reconstruction differs from the estimator's own predictions (the trees are
        not what this adapter assumes; use ``embedding="posterior"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.arange(8.).reshape(-1, 1); y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    >>> out = leaf_last_layer(rf, X)
    >>> out.features.shape[0], tuple(out.logits.shape), out.n_trees
    (8, (8, 2), 3)
    """
    check_fitted(estimator)
    if hasattr(estimator, "learner_list"):
        raise EmbeddingNotSupportedError(
            "A modAL Committee has no single set of leaves; pass one of its members. " + _TREE_HELP
        )
    transforms, est = _resolve(estimator)
    kind = _tree_kind(est)
    if kind is None or getattr(est, "n_outputs_", 1) != 1:
        raise EmbeddingNotSupportedError(
            f"{_name(est)} is not a supported tree ensemble, so embedding='leaf-gradient' cannot "
            "be used. " + _TREE_HELP
        )
    X, n = _prepare_X(X)
    classes = classes_of(est)
    K = len(est.classes_)
    trees = _trees_of(est, kind)
    offsets, values, leaf_cols = [], [], []
    total = 0
    for t, _, cols, k in trees:
        col, n_leaves = _leaf_index(t)
        leaf_cols.append(col)
        offsets.append(total)
        total += n_leaves
        if kind == "boosting":
            values.append(np.asarray(t.tree_.value[:, 0, 0], dtype=np.float64)[col >= 0])
        else:
            values.append(_forest_values(t, cols, K))
    T = len(trees)
    column_class = None
    if kind == "boosting":
        binary = est.estimators_.shape[1] == 1
        column_class = np.concatenate([np.full(len(v), 1 if binary else k, dtype=np.int64)
                                       for v, (_, _, _, k) in zip(values, trees)])
    rows, zs, xs = [], [], []
    # a numeric numpy pool fed to the trees as is is its own inputs: no copy of it is kept
    own = with_inputs and not transforms and isinstance(X, np.ndarray) and X.dtype.kind in "fiub"
    with _progress(n, bool(progress), "leaves") as bar:
        for _, _, chunk in _chunks(X, n, batch_size, bar):
            x = _apply(transforms, chunk)
            _check_feature_names(est, x)  # we call each tree's apply on numpy: do sklearn's check
            if with_inputs and not own:
                xs.append(sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x)
                          else _to_numpy(x, np.float32))
            x = _to_numpy(x)
            c = x.shape[0]
            idx = np.empty((c, T), dtype=np.int64)
            for i, (t, feats, _, _) in enumerate(trees):
                xi = x if feats is None else x[:, feats]
                idx[:, i] = leaf_cols[i][t.apply(xi.astype(np.float32, copy=False))] + offsets[i]
            if np.any(idx < 0):  # pragma: no cover - apply() always returns leaves
                raise RuntimeError("apply() returned an internal node; cannot build leaf indicators.")
            rows.append(idx)
            zs.append(_check_and_logits(est, kind, x, idx, trees, values, offsets, K, eps, rtol))
    idx = np.concatenate(rows)
    data = np.ones(idx.size, dtype=np.float32)
    indptr = np.arange(0, idx.size + 1, T, dtype=np.int64)
    H = sp.csr_matrix((data, idx.ravel(), indptr), shape=(n, total))
    z = torch.from_numpy(np.concatenate(zs))
    if classes is not None and len(classes) != z.shape[1]:
        classes = None
    inputs = None
    if own:
        inputs = X
    elif with_inputs:
        inputs = sp.vstack(xs, format="csr") if sp.issparse(xs[0]) else np.concatenate(xs)
    return LeafLayer(features=H, logits=z, bias=(kind == "boosting"), classes=classes,
                     n_trees=T, kind="boosting" if kind == "boosting" else "forest",
                     column_class=column_class, inputs=inputs)


def _check_and_logits(est, kind, x, idx, trees, values, offsets, K, eps, rtol):
    """Reconstruct the ensemble's output from the leaves, compare with its own, return logits."""
    c = x.shape[0]
    if kind == "boosting":
        Kp = est.estimators_.shape[1]
        raw = np.zeros((c, Kp))
        for i, (_, _, _, k) in enumerate(trees):
            raw[:, k] += values[i][idx[:, i] - offsets[i]]
        raw *= est.learning_rate
        init = est._raw_predict_init(x.astype(np.float32, copy=False))  # (c, K') constant rows
        raw += init
        own = np.asarray(est.decision_function(x), dtype=np.float64).reshape(c, -1)
        _compare(raw, own, rtol, est, "decision_function")
        return own if own.shape[1] > 1 else np.concatenate([np.zeros_like(own), own], axis=1)
    p = np.zeros((c, K))
    for i in range(len(trees)):
        p += values[i][idx[:, i] - offsets[i]]
    p /= len(trees)
    own = np.asarray(est.predict_proba(x), dtype=np.float64)
    _compare(p, own, rtol, est, "predict_proba")
    q = np.maximum(own, eps)
    return np.log(q / q.sum(axis=1, keepdims=True))


def _compare(mine, own, rtol, est, what):
    if mine.shape != own.shape or not np.allclose(mine, own, rtol=rtol, atol=1e-9):
        worst = float(np.max(np.abs(mine - own))) if mine.shape == own.shape else float("nan")
        raise RuntimeError(
            f"The leaf reconstruction of {_name(est)} differs from its own {what} (largest "
            f"difference {worst:.3g}); its trees are not combined the way the leaf embedding "
            "assumes. Use embedding='posterior' for this model."
        )


# ---------------------------------------------------------------------------------------------
# out-of-bag predictions on the labeled set
# ---------------------------------------------------------------------------------------------
def out_of_bag_proba(estimator, X_labeled):
    """Out-of-bag class probabilities of a bootstrap tree ensemble on the set it was fitted on.

    Each labeled row is predicted by the mean of the trees whose bootstrap sample left it out:
    a held-out prediction that costs one pass of each tree over the labeled set and no refit.
    Served: ``RandomForestClassifier`` / ``ExtraTreesClassifier`` with ``bootstrap=True`` and a
    ``BaggingClassifier`` of decision trees (feature subsets included), also behind a pipeline
    or a modAL learner.

    The invariant that ties the answer to the model is checked on every tree: the labeled rows
    of its bootstrap sample, sent down the tree, must fill each leaf with exactly the number of
    training samples the leaf records. It fails (and None is returned) when ``X_labeled`` is
    not, row for row, the set the ensemble was fitted on.

    Returns
    -------
    (proba, covered) or None
        ``proba`` of shape (n_labeled, n_classes) in the columns of the ensemble's ``classes_``
        and ``covered``, the rows some tree left out (other rows are zero); None when the
        model is not served or the invariant fails.
    """
    transforms, est = _resolve(estimator)
    kind = _tree_kind(est)
    if (kind not in ("forest", "bagging") or not getattr(est, "bootstrap", False)
            or getattr(est, "n_outputs_", 1) != 1):
        return None
    try:
        samples = est.estimators_samples_
    except AttributeError:  # a scikit-learn without the forests' estimators_samples_
        return None
    features = getattr(est, "estimators_features_", None)
    X = np.ascontiguousarray(_to_numpy(_apply(transforms, X_labeled), np.float32))
    if X.ndim != 2 or X.shape[1] != getattr(est, "n_features_in_", X.shape[1]):
        return None
    n, k = X.shape[0], len(est.classes_)
    total, votes = np.zeros((n, k)), np.zeros(n)
    for t, (tree, drawn) in enumerate(zip(est.estimators_, samples)):
        cols = None if features is None else np.asarray(features[t])
        Xt = X if cols is None else np.ascontiguousarray(X[:, cols])
        inbag = np.zeros(n, dtype=bool)
        if len(drawn) and (np.max(drawn) >= n or np.min(drawn) < 0):
            return None
        inbag[drawn] = True
        # the fitted tree's own traversal (tree.apply less its per-call input checks, which
        # cost more than the traversal on a labeled set)
        leaves = tree.tree_.apply(Xt)
        is_leaf = tree.tree_.children_left == -1
        filled = np.bincount(leaves[inbag], minlength=tree.tree_.node_count)
        if not np.array_equal(filled[is_leaf], tree.tree_.n_node_samples[is_leaf]):
            return None
        out = ~inbag
        if not out.any():
            continue
        v = tree.tree_.value[leaves[out], 0, :]       # predict_proba: the leaf's class shares
        total[np.ix_(out, np.asarray(tree.classes_, dtype=np.int64))] += (
            v / np.maximum(v.sum(1, keepdims=True), np.finfo(float).tiny))
        votes[out] += 1
    covered = votes > 0
    total[covered] /= votes[covered, None]
    return total, covered
