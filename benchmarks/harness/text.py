"""A text-like pool built offline: documents drawn from a small topic model, as raw strings.

Nothing is downloaded. Each class owns a topic (a Dirichlet distribution over a few hundred
words of the vocabulary); a document of class ``c`` mixes words of its topic, of one other
class's topic (the confusion that makes the task non-trivial) and of a Zipf background over
the whole vocabulary. Words are the tokens ``"w0" ... "w{V-1}"``, so
``sklearn.feature_extraction.text.TfidfVectorizer()`` vectorises the documents as it would a
real corpus (a CSR matrix with ~ ``doc_len`` non-zeros a row).
"""
from __future__ import annotations

import numpy as np

from sparse_query._utils import check_int, numpy_rng

__all__ = ["make_topic_corpus"]


def make_topic_corpus(n_docs: int, *, vocab_size: int = 50_000, n_classes: int = 10,
                      topic_words: int = 400, doc_len: int = 60, own_share: float = 0.2,
                      other_share: float = 0.1, random_state=None):
    """Documents (strings) and labels from a topic model over ``vocab_size`` words.

    Parameters
    ----------
    n_docs : int
        Number of documents.
    vocab_size : int, default=50000
        Words in the vocabulary (Zipf background over all of them).
    n_classes : int, default=10
        One topic per class.
    topic_words : int, default=400
        Words each topic puts its mass on.
    doc_len : int, default=60
        Mean document length (Poisson, at least 5 words).
    own_share, other_share : float, default=0.2, 0.1
        Mean fraction of a document's words drawn from its own class's topic and from one
        other (random) class's topic; the rest is background.
    random_state : None, int or numpy Generator

    Returns
    -------
    docs : list of str of length n_docs
    y : ndarray of shape (n_docs,), int64

    Examples
    --------
    >>> docs, y = make_topic_corpus(5, vocab_size=1000, random_state=0)
    >>> len(docs), y.shape
    (5, (5,))
    """
    n_docs = check_int(n_docs, "n_docs", min_val=1)
    V = check_int(vocab_size, "vocab_size", min_val=10)
    K = check_int(n_classes, "n_classes", min_val=2)
    T = min(check_int(topic_words, "topic_words", min_val=1), V)
    rng = numpy_rng(random_state)
    background = 1.0 / np.arange(1, V + 1) ** 1.05
    background /= background.sum()
    bg_words = rng.permutation(V)                 # Zipf rank -> word id
    topic_ids = np.stack([rng.choice(V, T, replace=False) for _ in range(K)])
    topic_p = rng.dirichlet(np.full(T, 0.3), size=K)
    y = rng.integers(0, K, n_docs)
    other = (y + rng.integers(1, K, n_docs)) % K
    lengths = np.maximum(5, rng.poisson(doc_len, n_docs))
    total = int(lengths.sum())
    doc_of = np.repeat(np.arange(n_docs), lengths)
    u = rng.random(total)
    own = rng.beta(2.0, 2.0 * (1 - own_share) / own_share, n_docs)[doc_of]
    oth = other_share * np.ones(total)
    src = np.where(u < own, 0, np.where(u < own + oth, 1, 2))
    words = bg_words[rng.choice(V, total, p=background)]
    for k in range(K):
        for s, cls in ((0, y), (1, other)):
            m = (src == s) & (cls[doc_of] == k)
            cnt = int(m.sum())
            if cnt:
                words[m] = topic_ids[k, rng.choice(T, cnt, p=topic_p[k])]
    tokens = np.char.add("w", words.astype(str))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    docs = [" ".join(tokens[bounds[i]:bounds[i + 1]]) for i in range(n_docs)]
    return docs, y.astype(np.int64)
