"""The README as a newcomer reads it, and the supported-models tables of the user guide.

* every ``python`` block of the README runs on its own, as written, in a fresh interpreter, and
  prints its result (the docs' blocks: ``tests/test_docs_snippets.py``);
* the README's two commands are the ones ``.ci/run`` runs, and the README names no file the
  repository lacks;
* every row of the tables in ``docs/user_guide/models.md`` has a test here, and the test checks
  what the row says: the embedding it names, or the refusal and its message.
"""
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MODELS = (ROOT / "docs" / "user_guide" / "models.md").read_text()


def _python_blocks():
    return re.findall(r"^[ \t]*```python\n(.*?)^[ \t]*```", README, flags=re.S | re.M)


def _dedent(block):
    lines = block.splitlines()
    pad = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[pad:] for l in lines) + "\n"


BLOCKS = [_dedent(b) for b in _python_blocks()]


def test_readme_has_the_snippets():
    assert len(BLOCKS) >= 2
    assert any("modAL" in b for b in BLOCKS)
    assert any("skorch" in b and "criterion=" in b for b in BLOCKS)


def test_readme_commands_are_the_ci_commands():
    demo = 'pip install torch==2.13.0 && pip install ".[modal]" && python -m sparse_query.demo'
    tests = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest'
    docs = 'pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html'
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for line in (demo, tests, docs):
        assert line in README, line
    assert tests in ci and docs in ci
    assert len(README.splitlines()) <= 180


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_snippet_runs_on_its_own_and_prints(i, tmp_path):
    code = BLOCKS[i]
    if "tcp://" in code:
        pytest.skip("needs a running Dask cluster (its LocalCluster twin is run instead)")
    if "modAL" in code:
        pytest.importorskip("modAL")
    if "skorch" in code:
        pytest.importorskip("skorch")
    if "dask" in code:
        pytest.importorskip("distributed")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip(), "the snippet prints nothing"


def test_readme_references_only_files_that_exist():
    assert "SPEC" not in README and not re.search(r"\bissue \d+", README)
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target
    assert 'pip install ".[dask]"' in README


def _listed_attributes(text, start):
    """The backticked ``name_`` attributes of the paragraph of ``text`` that begins at ``start``."""
    para = text[text.index(start):].split("\n\n")[0]
    return set(re.findall(r"`([a-z][a-z_]*_)`", para))


def test_learned_attribute_lists_match_a_fitted_sampler():
    """The parameters page lists every attribute a query leaves (and only those); the README's
    shorter list names only real ones, the reliability attributes among them."""
    from sparse_query import SparseApproxSampler
    from sklearn.linear_model import LogisticRegression
    Xd, yd = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(Xd[:60] / 16, yd[:60])
    s = SparseApproxSampler(random_state=0)
    s.fit_query(Xd[60:400] / 16, model, 5, X_labeled=Xd[:60] / 16, y_labeled=yd[:60])
    learned = {k for k in vars(s) if k.endswith("_") and not k.startswith("_")}
    page = (ROOT / "docs" / "user_guide" / "parameters.md").read_text()
    assert _listed_attributes(page, "After a query:") == learned
    readme = _listed_attributes(README, "After a query the sampler keeps")
    assert readme <= learned
    assert {"heldout_accuracy_", "reliability_", "alpha_reliability_",
            "reliability_source_", "refit_time_"} <= readme


def test_cli_help_shows_every_option_with_its_default():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "benchmarks.harness", "--help"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for opt in ("--dataset", "--model", "--strategies", "--seeds", "--seed-size", "--batch",
                "--rounds", "--epochs", "--max-pool", "--out", "--device", "--threads",
                "--smoke", "--no-progress", "--no-report", "--title", "--no-plots"):
        assert opt in out.stdout, opt
    help_text = re.sub(r"\s+", " ", out.stdout)
    for part in ("(default: digits)", "(default: logreg)", "(default: [0, 1, 2])",
                 "(default: 30)", "(default: 20)", "(default: 8)",
                 "(default: benchmarks/results/al_run)"):
        assert part in help_text, part
    demo = subprocess.run([sys.executable, "-m", "sparse_query.demo", "--help"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("usage: python -m sparse_query.demo")
    text = re.sub(r"\s+", " ", demo.stdout)
    for part in ("--rounds ROUNDS query rounds (default: 8)", "(default: 20)", "(default: 30)",
                 "(default: 0)"):
        assert part in text, part


# -- the supported-models tables of the user guide, row by row ---------------------------------------------
def _table_rows(after, text=MODELS):
    """First cells of the markdown table that follows the line containing ``after``."""
    start = text.index(after)
    rows, seen = [], False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            seen = True
            cell = line.split("|")[1].strip()
            if cell not in ("model", "") and not set(cell) <= set("-"):
                rows.append(cell)
        elif seen:
            break
    return rows


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:300], y[:300].astype(np.int64), X[300:600]


def _fit_quiet(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def _sampler(**kw):
    from sparse_query import SparseApproxSampler
    return SparseApproxSampler(device="cpu", random_state=0, **kw)


def _works(model, pool, kind, n=10):
    s = _sampler()
    idx = s.fit_query(pool, model, n)
    assert idx.shape == (n,) and len(set(idx.tolist())) == n
    assert s.embedding_kind_ == kind
    return idx


def _skorch_net(module, X, y, **kw):
    skorch = pytest.importorskip("skorch")
    torch.manual_seed(0)
    return skorch.NeuralNetClassifier(module, max_epochs=2, train_split=None, verbose=0,
                                      criterion=torch.nn.CrossEntropyLoss, **kw).fit(X, y)


def row_linear(d):
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    X, y, P = d
    _works(_fit_quiet(LogisticRegression(max_iter=300), X, y), P, "gradient")
    yb = (y % 2)
    _works(_fit_quiet(SGDClassifier(loss="log_loss", random_state=0), X, yb), P, "gradient")


def row_ovr_linear(d):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import RidgeClassifier, SGDClassifier
    from sklearn.svm import LinearSVC
    from sparse_query.baselines import EntropySampling
    X, y, P = d
    _refused(_fit_quiet(SGDClassifier(loss="log_loss", random_state=0), X, y), P, "one-vs-rest")
    _refused(_fit_quiet(LinearSVC(), X, y), P, "no predict_proba")
    _refused(_fit_quiet(RidgeClassifier(), X, y), P, "no predict_proba")
    cal = _fit_quiet(CalibratedClassifierCV(LinearSVC(), cv=3), X, y)
    p = cal.predict_proba(P)
    ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(1)
    assert_array_equal(EntropySampling(device="cpu").fit_query(P, cal, 5),
                       np.argsort(-ent, kind="stable")[:5])


def row_mlp(d):
    from sklearn.neural_network import MLPClassifier
    X, y, P = d
    _works(_fit_quiet(MLPClassifier((16,), max_iter=50, random_state=0), X, y), P, "gradient")


def row_pipeline(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y, P = d
    pipe = _fit_quiet(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), X, y)
    got = _works(pipe, P, "gradient")
    assert_array_equal(got, _sampler().fit_query(pipe[0].transform(P), pipe[-1], 10))


def row_skorch(d):
    from sparse_query.adapters import last_layer_outputs
    X, y, P = d
    net = _skorch_net(torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                          torch.nn.Linear(16, 10)), X, y)
    _works(net, P, "gradient")
    np.testing.assert_allclose(
        torch.softmax(last_layer_outputs(net, P).logits.double(), 1).numpy(),
        net.predict_proba(P), atol=1e-5)
    module = torch.nn.Sequential(torch.nn.Linear(64, 10))
    _works(module, torch.from_numpy(P), "gradient")


def row_search(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    X, y, P = d
    for search in (GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1]}, cv=3),
                   RandomizedSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1]},
                                      n_iter=2, cv=3, random_state=0)):
        search = _fit_quiet(search, X, y)
        assert_array_equal(_works(search, P, "gradient"),
                           _sampler().fit_query(P, search.best_estimator_, 10))


def row_dropout(d):
    X, y, P = d
    net = _skorch_net(torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                          torch.nn.Dropout(0.3), torch.nn.Linear(16, 10)), X, y)
    s = _sampler(embedding="posterior", n_posterior_samples=5)
    assert s.fit_query(P, net, 10).shape == (10,) and s.embedding_kind_ == "posterior"


def row_variational(d):
    from sparse_query.nn import VariationalLinear

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(64, 16)
            self.last_layer = VariationalLinear(16, 10)

        def forward(self, x):
            return self.last_layer(torch.relu(self.body(x)))

    X, y, P = d
    net = _skorch_net(Net, X, y)
    s = _sampler(embedding="posterior", n_posterior_samples=5)
    assert s.fit_query(P, net, 10).shape == (10,) and s.embedding_kind_ == "posterior"


def row_forests(d):
    from sklearn.ensemble import BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier
    X, y, P = d
    for m in (RandomForestClassifier(5, random_state=0), ExtraTreesClassifier(5, random_state=0),
              BaggingClassifier(DecisionTreeClassifier(), n_estimators=5, random_state=0)):
        _works(_fit_quiet(m, X, y), P, "leaf-gradient")


def row_gradient_boosting(d):
    from sklearn.ensemble import GradientBoostingClassifier
    X, y, P = d
    gb = _fit_quiet(GradientBoostingClassifier(n_estimators=3, random_state=0), X[:150], y[:150])
    _refused(gb, P, "does not serve GradientBoostingClassifier")
    s = _sampler(embedding="leaf-gradient")
    assert s.fit_query(P, gb, 10).shape == (10,) and s.embedding_kind_ == "leaf-gradient"


def row_other_ensembles(d):
    from sklearn.ensemble import BaggingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier
    X, y, P = d
    for m in (BaggingClassifier(LogisticRegression(max_iter=200), n_estimators=3, random_state=0),
              VotingClassifier([("lr", LogisticRegression(max_iter=300)),
                                ("dt", DecisionTreeClassifier(max_depth=3))], voting="soft")):
        _works(_fit_quiet(m, X, y), P, "posterior")


def _learner(est, X, y):
    pytest.importorskip("modAL")
    from modAL.models import ActiveLearner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ActiveLearner(est, X_training=X, y_training=y)


def row_committee(d):
    Committee = pytest.importorskip("modAL.models").Committee
    from sklearn.ensemble import RandomForestClassifier
    X, y, P = d
    few = y < 5
    c = Committee([_learner(RandomForestClassifier(5, random_state=0), X, y),
                   _learner(RandomForestClassifier(5, random_state=1), X[few], y[few])])
    _works(c, P, "posterior")


def row_committee_gradient(d):
    Committee = pytest.importorskip("modAL.models").Committee
    from sklearn.linear_model import LogisticRegression
    X, y, P = d
    c = Committee([_learner(LogisticRegression(max_iter=300, C=c), X, y) for c in (0.1, 1.0)])
    _works(c, P, "committee-gradient")


def row_learner(d):
    from sklearn.linear_model import LogisticRegression
    X, y, P = d
    learner = _learner(LogisticRegression(max_iter=300), X, y)
    assert_array_equal(_works(learner, P, "gradient"),
                       _sampler().fit_query(P, learner.estimator, 10))


def _refused(model, pool, match, strategies=None):
    from sparse_query.adapters import EmbeddingNotSupportedError
    for s in strategies or [_sampler()]:
        with pytest.raises(EmbeddingNotSupportedError, match=match):
            s.fit_query(pool, model, 5)


def row_regressors(d):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sparse_query.baselines import EntropySampling
    skorch = pytest.importorskip("skorch")
    X, y, P = d
    yf = y.astype(np.float32)
    reg = skorch.NeuralNetRegressor(torch.nn.Linear(64, 1), max_epochs=1, train_split=None,
                                    verbose=0).fit(X, yf[:, None])
    for m in (Ridge().fit(X, yf), RandomForestRegressor(3, random_state=0).fit(X, yf), reg):
        _refused(m, P, "only classifiers are supported",
                 [_sampler(), EntropySampling(device="cpu")])


def row_proba_models(d):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        AdaBoostClassifier, HistGradientBoostingClassifier, StackingClassifier, VotingClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC, LinearSVC
    from sklearn.tree import DecisionTreeClassifier
    X, y, P = d
    two = [("lr", LogisticRegression(max_iter=200)), ("dt", DecisionTreeClassifier(max_depth=2))]
    for m in (SVC(probability=True, random_state=0), KNeighborsClassifier(), GaussianNB(),
              HistGradientBoostingClassifier(max_iter=3), CalibratedClassifierCV(LinearSVC(), cv=3),
              AdaBoostClassifier(n_estimators=5, random_state=0), StackingClassifier(two, cv=2),
              VotingClassifier(two, voting="soft", weights=[2, 1]),
              OneVsRestClassifier(LogisticRegression(max_iter=300))):
        _works(_fit_quiet(m, X, y), P, "input-gradient")


def row_no_proba(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier
    from sklearn.svm import SVC
    X, y, P = d
    _refused(_fit_quiet(SVC(), X, y), P, "no predict_proba")
    _refused(_fit_quiet(OneVsOneClassifier(LogisticRegression(max_iter=300)), X, y), P,
             "binary sub-problems")


def row_wrong_head(d):
    X, y, P = d

    class Tempered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.head(x) / 3.0

    _refused(_skorch_net(Tempered, X, y), P, r"not its class head.*last_layer")


def row_refit_false(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    X, y, P = d
    gs = _fit_quiet(GridSearchCV(LogisticRegression(max_iter=200), {"C": [1]}, cv=2,
                                 refit=False), X, y)
    _refused(gs, P, "refit=True")


def row_sparse(d):
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sparse_query.adapters import last_layer_outputs
    from benchmarks.harness.text import make_topic_corpus
    X, y, P = d
    clf = _fit_quiet(LogisticRegression(max_iter=300), X, y)
    assert sp.issparse(last_layer_outputs(clf, sp.csr_matrix(P)).features)
    assert_array_equal(_works(clf, sp.csr_matrix(P), "gradient"), _sampler().fit_query(P, clf, 10))
    docs, yd = make_topic_corpus(400, vocab_size=2000, n_classes=3, random_state=0)
    docs = np.asarray(docs, dtype=object)
    pipe = _fit_quiet(Pipeline([("tfidf", TfidfVectorizer()),
                                ("clf", LogisticRegression(max_iter=300))]), docs[:100], yd[:100])
    _works(pipe, docs[100:], "gradient")


ROWS = {
    "linear model on a `scipy.sparse` pool, `Pipeline(TfidfVectorizer(), LogisticRegression())`":
        row_sparse,
    "`LogisticRegression`, binary `SGDClassifier(loss=\"log_loss\")`": row_linear,
    "multiclass `SGDClassifier`, `LinearSVC`, `RidgeClassifier`": row_ovr_linear,
    "`MLPClassifier`": row_mlp,
    "`Pipeline(..., clf)`": row_pipeline,
    "skorch `NeuralNetClassifier`, plain `torch.nn.Module`": row_skorch,
    "`GridSearchCV`, `RandomizedSearchCV` (`refit=True`)": row_search,
    "skorch net with dropout (MC dropout)": row_dropout,
    "net with `sparse_query.nn.VariationalLinear`": row_variational,
    "`RandomForestClassifier`, `ExtraTreesClassifier`, `BaggingClassifier` of decision trees":
        row_forests,
    "other `BaggingClassifier`, soft `VotingClassifier` without weights": row_other_ensembles,
    "modAL `Committee` whose members have last layers or leaves": row_committee_gradient,
    "other modAL `Committee` (e.g. with an `SVC` member)": row_committee,
    "any other classifier with `predict_proba`: `SVC(probability=True)`, `KNeighborsClassifier`, "
    "`GaussianNB`, `HistGradientBoostingClassifier`, `CalibratedClassifierCV`, "
    "`AdaBoostClassifier`, `StackingClassifier`, weighted `VotingClassifier`, "
    "`OneVsRestClassifier`": row_proba_models,
    "modAL `ActiveLearner`": row_learner,
    "`SVC()` without `probability=True`, `OneVsOneClassifier`": row_no_proba,
    "regressors: `Ridge`, `RandomForestRegressor`, skorch `NeuralNetRegressor`": row_regressors,
    "`GradientBoostingClassifier` (with `embedding=\"auto\"`)": row_gradient_boosting,
    "a torch net whose last `nn.Linear` is not its class head: a `Parameter` head after a "
    "hidden layer, an auxiliary layer that runs after the head, `logits / T` in `forward`, a "
    "tuple output": row_wrong_head,
    "`GridSearchCV(..., refit=False)`": row_refit_false,
}


def test_every_table_row_has_a_test():
    rows = _table_rows("## Served") + _table_rows("## Refused")
    assert set(rows) == set(ROWS), set(rows) ^ set(ROWS)


@pytest.mark.parametrize("row", list(ROWS), ids=[f.__name__ for f in ROWS.values()])
def test_table_row(row, digits):
    ROWS[row](digits)
