"""The synthetic benchmark: realistic, deterministic files whose oracle is exact and calibrated."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss
from xgboost import XGBClassifier

from wtc.data import build_features, build_target, load_history, synthetic
from wtc.data.names import campaign_of, request_date_of, task_type_of, workflow_of
from wtc.data.synthetic.posterior import latent_posterior
from wtc.data.synthetic.sampling import sample_errors, sample_history
from wtc.data.synthetic.traits import workflow_traits
from wtc.data.synthetic.world import DISPERSION, PWGS, SIGNATURE_SHARE, WHITELIST_SHARE, fixed_world
from wtc.data.targets import ACTION_GROUPS, TARGETS, class_sort_key, label_of
from wtc.data.vocabulary import cms_vocabulary

VOCAB = cms_vocabulary()


@pytest.fixture(scope="module")
def small():
    return synthetic.generate_history(400, seed=3)


@pytest.fixture(scope="module")
def large():
    """20k tasks with their hidden causes: enough to test calibration tightly."""
    sample = sample_history(20_000, seed=11)
    return sample, synthetic.oracle_of(sample.history)


def labels(history: dict, target: str) -> np.ndarray:
    return np.array([label_of(r["parameters"], target) for r in history.values()])


def clustered_z(hit: np.ndarray, proba: np.ndarray, groups: np.ndarray) -> float:
    """z-score of ``sum(hit - proba)`` when the terms are correlated within groups (workflows).

    Tasks of a workflow share the hidden cause and the decision, so their outcomes are
    correlated. The variance is bounded from the model's own probabilities assuming perfect
    correlation inside a workflow: ``sum_w (sum_{t in w} sd_t)^2``. That bound is conservative
    and, unlike residual-based estimates, stays valid in bins where nothing was observed.
    """
    sd = np.sqrt(np.clip(proba * (1 - proba), 0, None))
    return float((hit - proba).sum() / np.sqrt((np.bincount(groups, weights=sd) ** 2).sum()))


def calibration_z(proba: np.ndarray, hit: np.ndarray, groups: np.ndarray, n_bins: int = 8) -> list[float]:
    """Clustered z-scores of (observed - predicted) in quantile bins of the predictions."""
    edges = np.unique(np.quantile(proba, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, len(edges) - 2)
    return [clustered_z(hit[which == b], proba[which == b], groups[which == b])
            for b in range(len(edges) - 1) if (which == b).sum() >= 200]


# -- the file ------------------------------------------------------------------------------
def test_same_seed_gives_identical_files_and_oracle(tmp_path):
    first = synthetic.write_benchmark(tmp_path / "a" / "h.json", n_tasks=300, seed=5)
    second = synthetic.write_benchmark(tmp_path / "b" / "h.json", n_tasks=300, seed=5)
    assert first.read_bytes() == second.read_bytes()
    pd.testing.assert_frame_equal(synthetic.load_oracle_table(first), synthetic.load_oracle_table(second))
    assert not list(first.parent.glob(".*tmp"))  # the atomic writes left no temp file


def test_different_seeds_differ(small):
    other, _ = synthetic.generate_history(400, seed=4)
    assert list(other) != list(small[0])


@pytest.mark.parametrize("n_tasks", [1, 2, 57, 400])
def test_exact_number_of_tasks(n_tasks):
    history, oracle = synthetic.generate_history(n_tasks, seed=1)
    assert len(history) == len(oracle) == n_tasks
    assert list(oracle["task"]) == list(history)


def test_json_is_compact_and_loads(tmp_path):
    path = synthetic.write_benchmark(tmp_path / "h.json", n_tasks=50, seed=2)
    text = path.read_text(encoding="utf-8")
    assert ", " not in text and ": " not in text
    assert list(json.loads(text)) == list(synthetic.generate_history(50, seed=2)[0])


def test_names_parse_and_look_real(small):
    history, _ = small
    campaigns = {campaign_of(workflow_of(t)) for t in history}
    assert "unknown" not in campaigns and len(campaigns) >= 8
    dates = {request_date_of(workflow_of(t)) for t in history}
    assert None not in dates and {d.year for d in dates} == {2018}
    assert len({d.month for d in dates}) >= 10
    types = {task_type_of(t) for t in history}
    assert {"Merge", "DataProcessing", "Production"} <= types
    for task in history:
        workflow, first, *rest = task.strip("/").split("/")
        assert workflow.startswith("pdmvserv_task_") and first.rsplit("_", 1)[1] in ("0", "1")
        prepid = workflow.split("_task_")[1].split("__")[0]
        assert first.startswith(prepid) and prepid.split("-")[0] in PWGS


def test_tasks_of_a_workflow_share_one_decision(small):
    history, _ = small
    by_workflow = defaultdict(list)
    for task, record in history.items():
        by_workflow[workflow_of(task)].append(record["parameters"])
    assert max(len(p) for p in by_workflow.values()) >= 4
    for params in by_workflow.values():
        assert all(p == params[0] for p in params)


def test_records_follow_the_console_format(small):
    history, _ = small
    codes, sites = set(VOCAB["exit_codes"]), set(VOCAB["sites"])
    memories = {str(m) for m in VOCAB["memory_values_mb"]} | {""}
    for task, record in history.items():
        errors = record["errors"]
        assert set(errors) == {"good_sites", "bad_sites"}
        cells = [(s, c, site, n) for s, m in errors.items() for c, row in m.items() for site, n in row.items()]
        assert cells and all(type(n) is int and n >= 1 for *_, n in cells)
        assert {c for _, c, _, _ in cells} <= codes and {site for _, _, site, _ in cells} <= sites
        good = {site for s, _, site, _ in cells if s == "good_sites"}
        assert not good & {site for s, _, site, _ in cells if s == "bad_sites"}
        p = record["parameters"]
        assert p["action"] in ACTION_GROUPS
        if ACTION_GROUPS[p["action"]] == "special":
            assert p == {"action": p["action"]}
        else:
            assert p["splitting"] in VOCAB["splitting_values"] and p["xrootd"] in ("enabled", "disabled")
            assert p["memory"] in memories and p["sites"] and set(p["sites"]) <= sites


def test_a_site_has_one_status_per_week(large):
    sample, _ = large
    status_of = {}
    for task, record in sample.history.items():
        week = request_date_of(workflow_of(task)).isocalendar()[:2]
        for status, matrix in record["errors"].items():
            for row in matrix.values():
                for site in row:
                    assert status_of.setdefault((week, site), status) == status, (task, site)


def test_heavy_tailed_counts_and_seed_study_codes(large):
    sample, _ = large
    counts, by_code = [], defaultdict(int)
    for record in sample.history.values():
        for matrix in record["errors"].values():
            for code, row in matrix.items():
                counts.extend(row.values())
                by_code[code] += sum(row.values())
    counts = np.array(counts)
    assert np.median(counts) <= 10 and counts.max() >= 300
    top = sorted(by_code, key=by_code.get, reverse=True)[:8]
    assert {"50660", "71304", "-1", "8001"} <= set(top)


def test_about_five_percent_of_acdc_is_written_recovery(large):
    sample, _ = large
    actions = [r["parameters"]["action"] for r in sample.history.values()]
    share = actions.count("recovery") / (actions.count("recovery") + actions.count("acdc"))
    assert 0.03 < share < 0.07


def test_class_balance_follows_the_seed_study(large):
    sample, _ = large
    values, counts = np.unique(labels(sample.history, "action_split"), return_counts=True)
    ranked = list(values[np.argsort(-counts)])
    assert ranked[:3] == ["acdc_1x", "clone_1x", "special_1x"]
    acdc = np.mean(labels(sample.history, "binary") == "acdc")
    assert 0.84 <= acdc <= 0.89
    large_splits = np.isin(labels(sample.history, "splitting"), ["50x", "100x"]).mean()
    assert large_splits < 0.03


# -- the oracle ----------------------------------------------------------------------------
def test_oracle_columns_rows_and_cross_target_consistency(small):
    _, oracle = small
    for target in TARGETS:
        cols = [c for c in oracle.columns if c.startswith(f"{target}/")]
        classes = [c.split("/", 1)[1] for c in cols]
        assert classes == sorted(classes, key=class_sort_key(target))
        np.testing.assert_allclose(oracle[cols].sum(axis=1), 1.0, atol=1e-9)
        assert (oracle[cols].to_numpy() >= 0).all()
    np.testing.assert_allclose(oracle["binary/acdc"], oracle["action/acdc"], atol=1e-12)
    for group in ("acdc", "clone"):
        split_cols = [c for c in oracle.columns if c.startswith(f"action_split/{group}_")]
        np.testing.assert_allclose(oracle[split_cols].sum(axis=1), oracle[f"action/{group}"], atol=1e-9)
    np.testing.assert_allclose(oracle["action_split/special_1x"], oracle["action/special"], atol=1e-12)
    # every split's marginal = its acdc + clone (+ special for 1x) entries
    for split in ("2x", "max"):
        both = oracle[f"action_split/acdc_{split}"] + oracle[f"action_split/clone_{split}"]
        np.testing.assert_allclose(oracle[f"splitting/{split}"], both, atol=1e-9)


def test_oracle_gives_every_observed_label_positive_probability(large):
    sample, oracle = large
    for target in TARGETS:
        observed = labels(sample.history, target)
        cols = [f"{target}/{c}" for c in observed]
        assert set(cols) <= set(oracle.columns), target
        picked = oracle.to_numpy()[np.arange(len(observed)), oracle.columns.get_indexer(cols)]
        assert (picked.astype(float) > 0).all(), target


def literal_loglik(world, task: str, record: dict, z: int) -> float:
    """log P(task's errors | z) transcribed cell by cell from the generative story, scipy's laws."""
    from scipy.stats import nbinom, poisson

    workflow = workflow_of(task)
    week = (request_date_of(workflow) - pd.Timestamp("2018-01-01")).days // 7
    tc = {"Merge": 1, "Cleanup": 2, "LogCollect": 2}.get(task_type_of(task), 0)
    traits = workflow_traits(world, [workflow])
    whitelist = {int(i) for i in traits.whitelist[0] if i >= 0}
    signature, scale = int(traits.signature[0, z]), float(traits.count_scale[0])
    lam, mean = world.draws[z, tc], (world.count_mean[z, tc] - 1) * scale
    loglik = -np.log1p(-poisson.pmf(0, lam))  # at least one draw: the task is in the file
    for s, status in enumerate(synthetic.STATUSES):
        ready = world.site_prob[week, s] > 0
        listed = [i for i in whitelist if ready[i]]
        pull = {i: np.sqrt(world.site_size[i]) / sum(np.sqrt(world.site_size[j]) for j in listed) for i in listed}
        share = WHITELIST_SHARE if listed else 0.0
        p_site = (1 - share) * world.site_prob[week, s] + share * np.array([pull.get(i, 0.0) for i in range(len(world.sites))])
        p_code = (1 - SIGNATURE_SHARE) * world.code_prob[z, tc, s] + SIGNATURE_SHARE * (np.arange(len(world.codes)) == signature)
        rate = lam * world.bad_share[z, s] * np.outer(p_code, p_site)  # code x site: Poisson thinning
        loglik -= rate.sum()  # every cell not hit ...
        for code, row in record["errors"].get(status, {}).items():
            for site, n in row.items():
                r = rate[world.codes.index(code), world.sites.index(site)]
                loglik += r + np.log1p(-np.exp(-r))  # ... except the active ones, hit at least once
                loglik += nbinom.logpmf(n - 1, DISPERSION, DISPERSION / (DISPERSION + mean))
    return loglik


def test_posterior_equals_a_literal_transcription_of_the_likelihood(small):
    """Cell by cell, with scipy's laws: catches a term the vectorised code drops (which
    calibration cannot: a posterior given less information is still calibrated)."""
    history, _ = small
    world = fixed_world()
    some = dict(list(history.items())[:40])
    expected = []
    for task, record in some.items():
        camp = world.campaigns.index(campaign_of(workflow_of(task)))
        log_post = world.log_prior[camp] + [literal_loglik(world, task, record, z) for z in range(world.log_prior.shape[1])]
        expected.append(np.exp(log_post - np.logaddexp.reduce(log_post)))
    np.testing.assert_allclose(latent_posterior(world, some), np.array(expected), rtol=1e-8, atol=1e-12)


def test_likelihood_matches_the_sampler_by_monte_carlo():
    """The transcription above against the sampler itself: draw 40,000 tasks of one workflow
    with a fixed cause and compare the frequency of the commonest tables with their likelihood."""
    world = fixed_world()
    workflow = "pdmvserv_task_HIG-RunIIFall17GS-00451__v1_T_180412_131301_1234"
    n, z = 40_000, synthetic.CAUSES.index("transient_site") * len(synthetic.SEVERITIES)
    history = {f"/{workflow}/HIG-RunIIFall17GS-00451_0/Step{i}": {"errors": None} for i in range(n)}
    sample_errors(np.random.default_rng(0), world, history, np.full(n, z), workflow_traits(world, [workflow]),
                  np.zeros(n, dtype=np.int64))
    seen = Counter(json.dumps(r["errors"], sort_keys=True) for r in history.values())
    task = next(iter(history))
    for text, hits in seen.most_common(3):
        p = np.exp(literal_loglik(world, task, {"errors": json.loads(text)}, z))
        assert hits > 100 and abs(hits - n * p) < 4 * np.sqrt(n * p * (1 - p)), (text, hits, n * p)


def test_oracle_reads_only_the_file(tmp_path):
    path = synthetic.write_benchmark(tmp_path / "h.json", n_tasks=300, seed=8)
    from_file = synthetic.oracle_of(json.loads(path.read_text(encoding="utf-8")))
    pd.testing.assert_frame_equal(from_file, synthetic.load_oracle_table(path))
    # a subset of the tasks gets the same per-task posterior: siblings are not used
    history = json.loads(path.read_text(encoding="utf-8"))
    odd = {t: r for i, (t, r) in enumerate(history.items()) if i % 2}
    pd.testing.assert_frame_equal(synthetic.oracle_of(odd).reset_index(drop=True),
                                  from_file.iloc[1::2].reset_index(drop=True))


def test_oracle_rejects_what_the_world_cannot_produce(small):
    history, _ = small
    task, record = next(iter(history.items()))
    moved = {task: {**record, "errors": {"drain_sites": {"85": {"T2_US_MIT": 1}}}}}
    with pytest.raises(ValueError, match="drain_sites"):
        synthetic.oracle_of(moved)
    site = "T1_US_FNAL"  # always ready in this world: never a bad site
    moved = {task: {**record, "errors": {"good_sites": {}, "bad_sites": {"85": {site: 1}}}}}
    with pytest.raises(ValueError, match=site):
        synthetic.oracle_of(moved)


@pytest.mark.parametrize("target", ["binary", "action", "splitting"])
def test_oracle_is_calibrated(large, target):
    sample, oracle = large
    observed = labels(sample.history, target)
    for col in [c for c in oracle.columns if c.startswith(f"{target}/")]:
        hit = (observed == col.split("/", 1)[1]).astype(float)
        if hit.sum() < 200:
            continue
        z = calibration_z(oracle[col].to_numpy(), hit, sample.task_workflow)
        assert len(z) >= 3 and max(map(abs, z)) < 4, (col, np.round(z, 2))


def test_oracle_matches_label_marginals(large):
    sample, oracle = large
    for target in ("action_split", "memory", "xrootd"):
        observed = labels(sample.history, target)
        for col in [c for c in oracle.columns if c.startswith(f"{target}/")]:
            hit = (observed == col.split("/", 1)[1]).astype(float)
            z = clustered_z(hit, oracle[col].to_numpy(), sample.task_workflow)
            assert abs(z) < 4, (col, hit.mean(), oracle[col].mean())


def test_posterior_of_the_hidden_cause_is_calibrated(large):
    """The sharpest check of the likelihood: P(cause | task) against the true causes."""
    sample, _ = large
    world = fixed_world()
    post = latent_posterior(world, sample.history).reshape(len(sample.history), len(synthetic.CAUSES), -1)
    cause = sample.task_latent // len(synthetic.SEVERITIES)
    per_cause = post.sum(axis=2)
    assert (per_cause.argmax(axis=1) == cause).mean() > 0.7  # causes are mostly recognisable
    for k, name in enumerate(synthetic.CAUSES):
        z = calibration_z(per_cause[:, k], (cause == k).astype(float), sample.task_workflow, n_bins=10)
        assert max(map(abs, z)) < 4, (name, np.round(z, 2))


def test_oracle_beats_a_boosted_tree_trained_on_more_data(tmp_path, large):
    sample, _ = large
    train_path, test_path = tmp_path / "train.json", tmp_path / "test.json"
    train_path.write_text(json.dumps(sample.history), encoding="utf-8")
    synthetic.write_benchmark(test_path, n_tasks=5_000, seed=12)
    train, test = load_history(train_path), load_history(test_path)
    X_train, names = build_features(train, "combined")
    X_test, _ = build_features(test, "combined", vocabulary=names)
    y_train, classes = build_target(train, "binary")
    y_test, test_classes = build_target(test, "binary")
    assert classes == test_classes == ["acdc", "non-acdc"]
    model = XGBClassifier(n_estimators=100, max_depth=4, n_jobs=2, random_state=0)
    model.fit(X_train, y_train)
    oracle = synthetic.load_oracle_table(test_path)[["binary/acdc", "binary/non-acdc"]].to_numpy()
    model_loss = log_loss(y_test, model.predict_proba(X_test))
    oracle_loss = log_loss(y_test, oracle)
    prior_loss = log_loss(y_test, np.tile(np.bincount(y_train) / len(y_train), (len(y_test), 1)))
    assert oracle_loss < model_loss < prior_loss


# -- paths ---------------------------------------------------------------------------------
def test_oracle_path_and_missing_sidecar(tmp_path):
    history = tmp_path / "real.json"
    assert synthetic.oracle_path(history) == tmp_path / "real.oracle.parquet"
    with pytest.raises(FileNotFoundError, match="real.oracle.parquet"):
        synthetic.load_oracle_table(history)


def test_default_history_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WTC_DATA_DIR", str(tmp_path / "gen"))
    path = synthetic.default_history_path()
    assert path == tmp_path / "gen" / f"wtc_history_7582_seed0_g{synthetic.GENERATOR_VERSION}.json"
    assert synthetic.ensure_default_history() == path
    stamp = path.stat().st_mtime_ns
    assert len(synthetic.load_oracle_table(path)) == 7582
    assert synthetic.ensure_default_history() == path and path.stat().st_mtime_ns == stamp


def test_default_history_path_falls_back_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("WTC_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    name = f"wtc_history_7582_seed0_g{synthetic.GENERATOR_VERSION}.json"
    assert synthetic.default_history_path() == tmp_path / "data" / "generated" / name


def test_an_explicit_folder_wins_and_an_older_generator_is_never_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("WTC_DATA_DIR", str(tmp_path / "env"))
    folder = tmp_path / "mine"
    path = synthetic.default_history_path(folder)
    assert path.parent == folder and path.name.endswith(f"_g{synthetic.GENERATOR_VERSION}.json")
    old = folder / "wtc_history_7582_seed0.json"  # what the unversioned generator wrote
    old.parent.mkdir()
    old.write_text("{}", encoding="utf-8")
    synthetic.oracle_path(old).write_bytes(b"")
    assert synthetic.ensure_default_history(folder) == path != old
    assert len(synthetic.load_oracle_table(path)) == 7582
    assert not (tmp_path / "env").exists()


def test_the_calibration_study_prints_one_row_per_seed_and_their_mean(capsys):
    """``python -m wtc.data.synthetic.calibration``: the seed study's recipe and the oracle on a random and a
    workflow-grouped split of each generated history (small here: 300 tasks, two seeds)."""
    from wtc.data.synthetic.calibration import METRICS, SPLITS, main

    main(["--tasks", "300", "--seeds", "0", "1"])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [float(c) for c in line.strip().strip("|").split("|")[1:]]
            for line in out.splitlines() if line.startswith("| ") and not line.startswith("| seed")}
    assert set(rows) == {"0", "1", "mean"}
    assert all(len(cells) == len(SPLITS) * 2 * len(METRICS) for cells in rows.values())
    np.testing.assert_allclose(rows["mean"], np.mean([rows["0"], rows["1"]], axis=0), atol=1e-3)
    for cells in rows.values():
        for auc, accuracy, loss in zip(cells[0::3], cells[1::3], cells[2::3]):  # auc, accuracy, log_loss per block
            assert 0 <= auc <= 1 and 0 <= accuracy <= 1 and loss > 0
    assert "recipe AUC, random minus grouped split: " in out and out.count("workflows; classes ") == 2
