"""The variance term of the leaf-gradient embedding at the default temperature (issue 14).

The quality matrix's explanation of the tree rows (BENCHMARKS.md, "Quality matrix";
``benchmarks/diag_leaf_ties.py``) rests on one property: at ``temperature=0.01`` a forest's
``sigma_j`` is non-zero exactly on the pool points whose ``predict_proba`` has a tied maximum
(vote fractions tie; the label distribution splits between the tied classes), and ``alpha=0``
never prefers them.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from sparse_query import SparseApproxSampler
from sparse_query.adapters._trees import leaf_last_layer
from sparse_query.embeddings import gradient_embedding


def _forest_and_pool():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    lab = rng.choice(len(y), 60, replace=False)
    pool = np.setdiff1d(np.arange(len(y)), lab)[:600]
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X[lab], y[lab])
    return rf, X[pool]


def test_sigma_at_default_temperature_is_nonzero_exactly_on_tied_vote_fractions():
    rf, X = _forest_and_pool()
    p = rf.predict_proba(X)
    tied = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert 0 < tied.sum() < len(tied)  # the property is tested on both kinds of point
    ll = leaf_last_layer(rf, X)
    sigma = gradient_embedding(ll.logits, ll.features, temperature=0.01, bias=False).sigma
    sigma = sigma.double().numpy()
    # with 10 trees the closest untied pair of top classes is 0.5 / 0.4: P_2 ~ 0.8**100 ~ 2e-10
    assert np.all(sigma[tied] > 0.5 * sigma.max())
    assert np.all(sigma[~tied] < 1e-6 * sigma.max())
    # a tie between two classes puts half of P on each: sum_y P(y) ||P - e_y|| = 1/sqrt(2)
    two = tied & ((p == p.max(axis=1, keepdims=True)).sum(axis=1) == 2)
    hnorm = np.sqrt(ll.n_trees)
    np.testing.assert_allclose(sigma[two], hnorm / np.sqrt(2) / len(X), rtol=1e-5)


def test_alpha_changes_how_many_tied_points_the_default_batch_takes():
    rf, X = _forest_and_pool()
    p = rf.predict_proba(X)
    tied = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    b = 10
    assert tied.sum() >= b
    picks = {a: SparseApproxSampler(alpha=a, device="cpu", random_state=0).fit_query(X, rf, b)
             for a in (0.0, 0.1)}
    # alpha = 0: the variance term is off, so ties get no bonus; the default spends the batch
    # on them (the mechanism behind the tree rows of the quality matrix)
    assert tied[picks[0.1]].sum() > tied[picks[0.0]].sum()
    assert tied[picks[0.1]].sum() == b
