"""The sampler's greedy batch recomputed by hand, for the adapter tests (issue 12)."""
import torch

from sparse_query.embeddings import gradient_embedding
from sparse_query.problem import FactoredOperator, SparseApproxProblem
from sparse_query.solvers import greedy


def hand_batch(features, probs, b, *, T=0.01, alpha=0.1, beta=1e-3, tau=1.0):
    """Greedy on the gradient embedding built from ``log predict_proba`` and the head's inputs,
    with the sampler's defaults (``alpha_scale="pool"``)."""
    z = torch.log(torch.as_tensor(probs, dtype=torch.float64))
    emb = gradient_embedding(z, torch.as_tensor(features, dtype=torch.float64), temperature=T)
    n = z.shape[0]
    prob = SparseApproxProblem(FactoredOperator(emb.a, emb.h), emb.sigma, b,
                               alpha=alpha * n ** 2 / b, beta=beta, device="cpu",
                               dtype="float64")
    return greedy(prob, tau=tau).indices
