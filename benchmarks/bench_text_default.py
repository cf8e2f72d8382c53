"""After the merge of issues 12-15: ``SparseApproxSampler()`` at its defaults on a 100k TF-IDF pool.

One ``fit_query`` per process (peak RSS increase over the loaded pool, ``ru_maxrss``), the
offline topic-model corpus of ``bench_text.py`` (100,000 documents, 50,000-word vocabulary,
``LogisticRegression`` on 300 labels). Run ``python benchmarks/bench_text_default.py 0`` once to
build and cache the pool (``--cache`` path below), then ``python benchmarks/bench_text_default.py
100`` and ``... 1000``.
"""
import sys, time, resource, os, pickle
import numpy as np
os.environ.setdefault("OMP_NUM_THREADS", "1")
b = int(sys.argv[1])
path = os.environ.get("SPARSE_QUERY_TEXT_CACHE", "/tmp/sparse_query_text_pool.pkl")
if not os.path.exists(path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from benchmarks.harness.text import make_topic_corpus
    docs, y = make_topic_corpus(100_000, vocab_size=50_000, random_state=0)
    X = TfidfVectorizer().fit_transform(docs).astype(np.float32).tocsr()
    clf = LogisticRegression(max_iter=1000).fit(X[:300], y[:300])
    pickle.dump((X[300:], clf), open(path, "wb"))
    print("built", X.shape, X.nnz); sys.exit(0)
X, clf = pickle.load(open(path, "rb"))
from sparse_query import SparseApproxSampler
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = SparseApproxSampler(random_state=0)
t = time.perf_counter(); idx = s.fit_query(X, clf, b); dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"b={b} n={X.shape[0]} d={X.shape[1]} default fit_query {dt:.2f}s solver={s.solver_} sketch={s.sketch_dim_} "
      f"embedding {s.embedding_time_:.2f}s solve {s.solve_time_:.2f}s peak_rss_increase={(peak-base)/1024:.0f}MB load={os.getloadavg()[0]:.1f}")
