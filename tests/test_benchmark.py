"""The benchmark harness: metrics, data splits, strategy specs, and end-to-end smoke runs."""
import json
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from benchmarks.harness import (
    auc,
    initial_labeled,
    load_records,
    make_strategy,
    mean_std,
    parse_strategy,
    split_dataset,
)
from benchmarks.harness.__main__ import main
from benchmarks.harness.records import (
    COMPACT,
    compact_record,
    queried_digest,
    read_records,
    same_batches,
    write_compact,
)
from benchmarks.harness.strategies import slug

pytest.importorskip("matplotlib")


# -- metrics ------------------------------------------------------------------------------------
def test_auc_constant_curve_is_that_accuracy():
    assert_allclose(auc([10, 20, 40], [0.7, 0.7, 0.7]), 0.7)


def test_auc_trapezoid_by_hand():
    # area = 10 * (0.5 + 0.7) / 2 + 20 * (0.7 + 0.9) / 2 = 6 + 16 = 22 over a range of 30
    assert_allclose(auc([10, 20, 40], [0.5, 0.7, 0.9]), 22 / 30)


def test_auc_single_point_and_errors():
    assert_allclose(auc([5], [0.3]), 0.3)
    with pytest.raises(ValueError, match="strictly increasing"):
        auc([10, 10], [0.1, 0.2])
    with pytest.raises(ValueError, match="same non-zero length"):
        auc([1, 2], [0.1])


def test_mean_std_uses_sample_std():
    m, s = mean_std([1.0, 2.0, 3.0])
    assert_allclose([m, s], [2.0, 1.0])
    assert mean_std([4.0]) == (4.0, 0.0)


# -- data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_split_is_stratified_disjoint_and_deterministic(name):
    a = split_dataset(name, 0)
    b = split_dataset(name, 0)
    c = split_dataset(name, 1)
    assert np.intersect1d(a.pool_index, a.test_index).size == 0
    assert a.X_pool.dtype == np.float32 and a.y_pool.dtype == np.int64
    assert_array_equal(a.pool_index, b.pool_index)
    assert_array_equal(a.test_index, b.test_index)
    assert not np.array_equal(a.test_index, c.test_index)
    # stratified: class shares in the test set match the whole dataset's to within one point
    y_all = np.concatenate([a.y_pool, a.y_test])
    expected = np.bincount(y_all) * len(a.y_test) / len(y_all)
    assert np.all(np.abs(np.bincount(a.y_test) - expected) <= 1.0)


def test_mnist_is_the_offline_5000_digits_scaled():
    sp = split_dataset("mnist", 3)
    assert sp.X_pool.shape == (4000, 784) and sp.X_test.shape == (1000, 784)
    assert 0.0 <= sp.X_pool.min() and sp.X_pool.max() <= 1.0
    assert_array_equal(np.bincount(sp.y_test), np.full(10, 100))


def test_mnist1d_leaves_global_numpy_seed_alone():
    from benchmarks.harness import datasets

    datasets.load_dataset.cache_clear()
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    datasets.load_dataset("mnist1d")
    assert_array_equal(np.random.random(3), expected)


def test_max_pool_and_initial_labeled():
    sp = split_dataset("digits", 0, max_pool=200)
    assert len(sp.y_pool) == 200 and len(np.unique(sp.y_pool)) == 10
    s1, s2 = initial_labeled(200, 30, 5), initial_labeled(200, 30, 5)
    assert_array_equal(s1, s2)
    assert np.unique(s1).size == 30 and s1.max() < 200
    assert not np.array_equal(s1, initial_labeled(200, 30, 6))
    with pytest.raises(ValueError, match="seed_size=300"):
        initial_labeled(200, 300, 0)
    with pytest.raises(ValueError, match="dataset='cifar'"):
        split_dataset("cifar", 0)


# -- strategies ---------------------------------------------------------------------------------
def test_parse_strategy_and_overrides():
    assert parse_strategy("badge") == ("badge", {})
    name, params = parse_strategy("ours-iht:alpha=0.1,temperature=auto,sketch_dim=128,prox=paper")
    assert name == "ours-iht"
    assert params == {"alpha": 0.1, "temperature": "auto", "sketch_dim": 128, "prox": "paper"}
    s = make_strategy("ours-iht:alpha=0,temperature=0", seed=3)
    assert (s.solver, s.alpha, s.temperature, s.random_state) == ("iht", 0, 0, 3)
    # a Bayesian model no longer forces the posterior embedding: the default row runs at the
    # sampler's default, the posterior embedding is a named variant
    assert make_strategy("ours-greedy", seed=0, bayesian=True).embedding == "auto"
    assert make_strategy("ours-greedy:embedding=posterior", seed=0,
                         bayesian=True).embedding == "posterior"
    assert slug("ours-iht:alpha=0.1,temperature=auto") == "ours-iht_alpha-0.1_temperature-auto"
    with pytest.raises(ValueError, match="'bage'"):
        parse_strategy("bage")
    with pytest.raises(ValueError, match="key=value"):
        parse_strategy("ours-iht:alpha")


def test_iht_init_is_the_start_proximal_iht_gets(monkeypatch):
    """``ours-iht:iht_init=zero`` solves with ``init="zero"``; plain ``ours-iht`` with the
    sampler's default ``"fallback"``; the module is restored after each query."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import sparse_query.sampler as sampler_mod

    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16.0
    model = LogisticRegression(max_iter=500).fit(X[:60], y[:60])
    seen = []
    real = sampler_mod.proximal_iht

    def spy(*args, **kwargs):
        seen.append(kwargs["init"])
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler_mod, "proximal_iht", spy)
    for spec, want in (("ours-iht", "fallback"), ("ours-iht:iht_init=zero", "zero"),
                       ("ours-iht:iht_init=spread", "spread")):
        seen.clear()
        make_strategy(spec, seed=0).fit_query(X[60:], model, 10, X_labeled=X[:60],
                                              y_labeled=y[:60])
        assert seen == [want]
        assert sampler_mod.proximal_iht is spy
    with pytest.raises(ValueError, match="iht_init='one'"):
        make_strategy("ours-iht:iht_init=one", seed=0)
    with pytest.raises(ValueError, match="ours-iht only"):
        make_strategy("ours-greedy:iht_init=zero", seed=0)


# -- end to end ---------------------------------------------------------------------------------
def _records(out):
    return {(r["config"]["model"], r["config"]["strategy"]): r for r in load_records(str(out))}


def test_cli_smoke_digits_logreg_report_and_resume(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--dataset", "digits", "--model", "logreg", "--smoke", "--no-progress",
            "--strategies", "ours-greedy", "ours-iht:alpha=0.1", "random", "--out", str(out)]
    assert main(args) == 0
    recs = _records(out)
    assert set(recs) == {("logreg", "ours-greedy"), ("logreg", "ours-iht:alpha=0.1"),
                         ("logreg", "random")}
    for rec in recs.values():
        assert rec["labels"] == [20, 30, 40]  # --smoke: 20 seed labels, 2 rounds of 10
        assert len(rec["accuracy"]) == 3 and len(rec["query_time"]) == 2
        assert all(0.0 <= a <= 1.0 for a in rec["accuracy"])
        assert_allclose(rec["auc"], auc(rec["labels"], rec["accuracy"]))
        queried = np.concatenate(rec["queried"])
        assert queried.size == 20 and np.unique(queried).size == 20
        assert rec["n_pool"] == 300
    assert (out / "summary.csv").stat().st_size > 0
    assert (out / "curves_digits_logreg.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "ours-iht:alpha=0.1" in report and "curves_digits_logreg.png" in report

    # resume: a second invocation loads the stored runs instead of recomputing them
    paths = sorted((out / "digits_logreg").glob("*.json"))
    mtimes = [p.stat().st_mtime_ns for p in paths]
    capsys.readouterr()
    assert main(args + ["--no-report"]) == 0
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    assert capsys.readouterr().out.count("[skip]") == 3

    # report sub-command on its own
    os.remove(out / "report.md")
    assert main(["report", "--out", str(out), "--no-plots"]) == 0
    assert (out / "report.md").exists()


def test_changed_config_is_recomputed(tmp_path):
    out = tmp_path / "res"
    base = ["--smoke", "--no-progress", "--no-report", "--strategies", "random", "--out", str(out)]
    main(base)
    path = next((out / "digits_logreg").glob("*.json"))
    main(base + ["--batch", "5"])  # --smoke overrides the batch: same config, kept
    first = json.loads(path.read_text())
    main(base + ["--max-pool", "250"])  # a different pool: recomputed
    second = json.loads(path.read_text())
    assert first["n_pool"] == 300 and second["n_pool"] == 250


@pytest.mark.slow
def test_cli_smoke_skorch_models(tmp_path):
    pytest.importorskip("skorch")
    out = tmp_path / "res"
    assert main(["--dataset", "digits", "--model", "torch-mlp", "--smoke", "--epochs", "2", "--max-pool", "150",
                 "--no-progress", "--strategies", "ours-greedy", "badge", "--out", str(out)]) == 0
    assert main(["--dataset", "digits", "--model", "mlp-dropout", "--smoke", "--epochs", "2", "--max-pool", "150",
                 "--no-progress", "--no-report", "--strategies", "ours-iht", "bald",
                 "--out", str(out)]) == 0
    recs = _records(out)
    assert set(recs) == {("torch-mlp", "ours-greedy"), ("torch-mlp", "badge"),
                         ("mlp-dropout", "ours-iht"), ("mlp-dropout", "bald")}
    assert all(len(r["accuracy"]) == 3 for r in recs.values())
    assert (out / "curves_digits_torch-mlp.png").exists()


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(SystemExit):
        main(["--strategies", "nonsense", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="exceeds the pool size"):
        main(["--smoke", "--rounds", "3", "--no-progress", "--strategies", "random",
              "--max-pool", "30", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="no run records"):
        main(["report", "--out", str(tmp_path / "empty")])


def test_summary_pairs_seeds_with_random():
    from benchmarks.harness import summarise

    def rec(strategy, seed, accs):
        return {"config": {"dataset": "d", "model": "m", "strategy": strategy, "seed": seed,
                           "seed_size": 10, "batch": 10, "rounds": 1, "epochs": None},
                "labels": [10, 20], "accuracy": accs, "auc": auc([10, 20], accs),
                "final_accuracy": accs[-1], "query_time": [0.1]}

    recs = [rec("random", 0, [0.5, 0.5]), rec("random", 1, [0.7, 0.7]),
            rec("x", 0, [0.6, 0.6]), rec("x", 1, [0.9, 0.9]), rec("x", 2, [0.1, 0.1])]
    row = summarise(recs)[("d", "m")]["x"]
    assert_allclose([row["paired_mean"], row["paired_std"]], [0.15, np.std([0.1, 0.2], ddof=1)])
    assert row["n_seeds"] == 3
    assert np.isnan(summarise(recs)[("d", "m")]["random"]["paired_mean"])


# -- the compact store of run records ---------------------------------------------------------
def _raw(strategy, seed, accs, queried):
    return {"config": {"dataset": "d", "model": "m", "strategy": strategy, "seed": seed},
            "labels": [10, 20], "accuracy": accs, "auc": auc([10, 20], accs),
            "final_accuracy": accs[-1], "query_time": [0.1], "train_time": [0.2, 0.3],
            "environment": {"python": "3"}, "queried": queried}


def _write(path, rec):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


def test_compact_store_keeps_what_tables_read_and_raw_records_override(tmp_path):
    a = _raw("random", 0, [0.5, 0.625], [[3, 1]])
    b = _raw("x", 0, [0.75, 0.875], [[3, 1]])
    c = _raw("x", 1, [0.25, 0.5], [[4, 2]])
    _write(tmp_path / "d_m" / "random_seed0.json", a)
    _write(tmp_path / "d_m" / "x_seed0.json", b)
    _write(tmp_path / "d_m" / "x_seed1.json", c)
    _write(tmp_path / "nested" / "d_m" / "y_seed0.json", a)  # a store of its own, below
    (tmp_path / "nested" / COMPACT).write_text("")
    assert write_compact(str(tmp_path)) == 3
    lines = (tmp_path / COMPACT).read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == [
        "d_m/random_seed0.json", "d_m/x_seed0.json", "d_m/x_seed1.json"]
    for f in (tmp_path / "d_m").iterdir():
        f.unlink()
    stored = read_records(str(tmp_path))
    assert list(stored) == ["d_m/random_seed0.json", "d_m/x_seed0.json", "d_m/x_seed1.json"]
    assert stored["d_m/x_seed0.json"] == compact_record(b)
    assert "queried" not in stored["d_m/x_seed0.json"]
    assert "train_time" not in stored["d_m/x_seed0.json"]
    assert_allclose(stored["d_m/x_seed1.json"]["auc"], c["auc"])
    # the summary from the store equals the summary from the raw records
    from benchmarks.harness.report import summarise, summary_table
    assert (summary_table(summarise(load_records(str(tmp_path)))[("d", "m")])
            == summary_table(summarise([a, b, c])[("d", "m")]))
    # identical batches are recognised from the digest, raw or compact
    assert same_batches(stored["d_m/random_seed0.json"], b)
    assert not same_batches(stored["d_m/x_seed1.json"], b)
    assert queried_digest([[3, 1]]) != queried_digest([[1, 3]])
    # a raw record on disk replaces the stored one of the same path
    newer = _raw("x", 1, [0.5, 0.5], [[4, 2]])
    _write(tmp_path / "d_m" / "x_seed1.json", newer)
    assert_allclose(read_records(str(tmp_path))["d_m/x_seed1.json"]["auc"], newer["auc"])
    assert list(read_records(str(tmp_path), skip_dirs=("d_m",))) == []


def test_compact_store_without_path_is_refused(tmp_path):
    (tmp_path / COMPACT).write_text(json.dumps({"config": {}}) + "\n")
    with pytest.raises(ValueError, match="has no 'path'"):
        read_records(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no run records"):
        write_compact(str(tmp_path / "empty"))


def test_committed_section_tables_rebuild_from_the_compact_stores():
    """The learning-curve tables of the committed section 1 page are what the harness's
    summary of the committed compact stores gives."""
    import re

    from benchmarks.harness.report import summarise as summarise_records, summary_table
    root = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "results")
    page = open(os.path.join(root, "benchmark.md")).read()
    recs = [r for r in load_records(os.path.join(root, "s1"))
            if (r["config"]["dataset"], r["config"]["model"]) == ("digits", "logreg")]
    assert len(recs) > 10
    body = re.search(r"<!-- s1:digits_logreg -->\n(.*?)\n<!-- /s1:digits_logreg -->", page,
                     re.S).group(1)
    assert body == "\n".join(summary_table(summarise_records(recs)[("digits", "logreg")]))
