"""The paper's baselines behind the common query-strategy signature.

Every strategy is a :class:`~sparse_query._base.QueryStrategy` (a scikit-learn estimator with
``fit``/``query``/``fit_query`` and a modAL query strategy for modAL 0.4.1 and 0.4.2.1) and
returns exactly ``n_instances`` distinct pool indices. The selection maths lives in checked
public kernels (tensors in, indices out) that the strategies call.

========================  ============================================  ==========================
strategy                  kernel                                        model needs
========================  ============================================  ==========================
RandomSampling            --                                            nothing
EntropySampling           :func:`entropy_scores`                        ``predict_proba``
MarginSampling            :func:`margin_scores`                         ``predict_proba``
LeastConfidenceSampling   :func:`least_confidence_scores`               ``predict_proba``
BALD                      :func:`bald_scores`                           posterior draws
BatchBALD                 :func:`batchbald`                             posterior draws
KCenterGreedy             :func:`kcenter_greedy`                        penultimate features
BADGE                     :func:`badge_kmeanspp`                        last layer (features, logits)
BayesianCoreset           :func:`bayesian_coreset`                      posterior draws
========================  ============================================  ==========================
"""
from ._common import SelectionResult
from .badge import BADGE, badge_kmeanspp
from .batch_bald import BatchBALD, batchbald, joint_entropy
from .coreset import BayesianCoreset, CoresetResult, bayesian_coreset, coreset_projections
from .kcenter import KCenterGreedy, kcenter_greedy
from .uncertainty import (
    BALD,
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
    bald_scores,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
)

__all__ = [
    "RandomSampling",
    "EntropySampling",
    "MarginSampling",
    "LeastConfidenceSampling",
    "BALD",
    "BatchBALD",
    "KCenterGreedy",
    "BADGE",
    "BayesianCoreset",
    "entropy_scores",
    "margin_scores",
    "least_confidence_scores",
    "bald_scores",
    "batchbald",
    "joint_entropy",
    "kcenter_greedy",
    "badge_kmeanspp",
    "bayesian_coreset",
    "coreset_projections",
    "SelectionResult",
    "CoresetResult",
]
