"""Cost of the issue-12 invariant check (softmax of the head = predict_proba), side by side.

The check is switched off by replacing the two check functions with no-ops, interleaved with
checked runs in one process (the machine is shared: medians of 7 / 3 runs; load printed).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_invariant_check.py
"""
import os, time, warnings, numpy as np, torch
torch.set_num_threads(1)
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from torch import nn
import skorch
import sparse_query.adapters._api as api
import sparse_query.adapters._torch as tt
from sparse_query.adapters import last_layer_outputs
warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True); X = (X / 16).astype(np.float32)
rng = np.random.default_rng(0)
P = np.concatenate([X] * 12)[:20000] + rng.normal(0, 0.05, (20000, 64)).astype(np.float32)
lr = LogisticRegression(max_iter=300).fit(X, y)
mlp = MLPClassifier((128,), max_iter=50, random_state=0).fit(X, y)
torch.manual_seed(0)
net = skorch.NeuralNetClassifier(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)),
      criterion=nn.CrossEntropyLoss, max_epochs=2, train_split=None, verbose=0).fit(X, y)
on_s, on_t = api._check_sklearn_proba, tt._check_head
def run(m, check):
    api._check_sklearn_proba = on_s if check else (lambda *a, **k: None)
    tt._check_head = on_t if check else (lambda *a, **k: None)
    t0 = time.perf_counter(); last_layer_outputs(m, P); return time.perf_counter() - t0
print("load", os.getloadavg())
for name, m in [("LogisticRegression", lr), ("MLPClassifier(128)", mlp), ("skorch MLP(256)", net)]:
    on, off = [], []
    for _ in range(7):
        off.append(run(m, False)); on.append(run(m, True))
    print(f"{name:20s} 20000x64: checked {np.median(on)*1e3:7.1f} ms, unchecked {np.median(off)*1e3:7.1f} ms, ratio {np.median(on)/np.median(off):.2f}")
print("load", os.getloadavg())
from sparse_query import SparseApproxSampler
def e2e(m, check):
    api._check_sklearn_proba = on_s if check else (lambda *a, **k: None)
    tt._check_head = on_t if check else (lambda *a, **k: None)
    t0 = time.perf_counter(); SparseApproxSampler(device="cpu", random_state=0).fit_query(P, m, 100); return time.perf_counter() - t0
for name, m in [("LogisticRegression", lr), ("skorch MLP(256)", net)]:
    on, off = [], []
    for _ in range(3):
        off.append(e2e(m, False)); on.append(e2e(m, True))
    print(f"fit_query b=100 {name:20s}: checked {np.median(on):.2f} s, unchecked {np.median(off):.2f} s, ratio {np.median(on)/np.median(off):.3f}")
print("load", os.getloadavg())
