"""What many tests build, in one place: composed configs, small runs on a generated benchmark,
tracking stores copied from a template, a served model, and the small hand-written history.

Plain functions and constants (usable in module-scoped fixtures and parametrize lists); the
fixtures built on them (``tracking_uri``, ``new_store``, ``history_path``, ...) are in
tests/conftest.py. No test module imports another test module: what two modules share is here,
in tests/spies.py (test doubles) or in a conftest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


# --------------------------------------------------------------------------- configs
def compose_cfg(overrides=(), *, conf: Path = CONF, hydra: bool = False):
    """The run config of ``python run.py OVERRIDES`` (with its ``hydra`` node when asked)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def options(group: str, conf: Path = CONF) -> list[str]:
    """The options of a config group: the YAML files of its folder."""
    return sorted(p.stem for p in (conf / group).glob("*.yaml"))


#: Size knobs a model family may have, and the small values an end-to-end test uses: any
#: new model YAML that uses these names runs fast in a test without a test edit.
SMALL = {"n_estimators": (10, 30), "max_epochs": (2, 3), "n_neurons": (8, 32)}


def fast_overrides(model: str, conf: Path = CONF) -> list[str]:
    """Overrides that shrink a model family's size knobs (estimator values and search ranges)."""
    node = compose_cfg([f"model={model}"], conf=conf).model
    out = []
    for knob, (low, high) in SMALL.items():
        if knob in node.estimator:
            out.append(f"model.estimator.{knob}={low}")
        space = node.get("space") or {}
        if knob in space and "low" in space[knob]:
            out += [f"model.space.{knob}.low={low}", f"model.space.{knob}.high={high}"]
    return out


def make_cfg(history_path, uri, overrides=()):
    """A small run's config: 2 trials, 2 folds, 1 thread, no plots, no model (unless overridden)."""
    base = [f"data.path={history_path}", f"tracking.uri={uri}", "search.n_trials=2", "cv.n_splits=2", "n_jobs=1",
            "tracking.log_plots=false", "tracking.log_model=false"]
    return compose_cfg(base + list(overrides))


# --------------------------------------------------------------------------- a small raw-task model
def fit_small_pipeline(path: Path, n_tasks: int, seed: int, target: str, extras=()):
    """A benchmark of ``n_tasks`` written at ``path`` and a scaled logistic regression fitted on its
    labelled tasks (view ``combined``). Returns (pipeline, X, feature names, classes, raw tasks, history)."""
    from imblearn.pipeline import Pipeline
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MaxAbsScaler

    from wtc.data import build_features, build_target, load_history
    from wtc.data.synthetic import write_benchmark

    path = write_benchmark(path, n_tasks=n_tasks, seed=seed)
    history = load_history(path, use_cache=False)
    X, names = build_features(history, "combined", extras=list(extras))
    y, classes = build_target(history, target)
    labelled = y >= 0
    pipeline = Pipeline([("scaler", MaxAbsScaler()), ("model", LogisticRegression(max_iter=2000))])
    pipeline.fit(X[labelled], y[labelled])
    return pipeline, X, list(names), classes, json.loads(path.read_text()), history


# --------------------------------------------------------------------------- runs
def train(history_path, uri, experiment, *overrides):
    """One untuned run (search=none, no diagnostics) that logs its model, in ``experiment``."""
    from wtc.run.experiment import run

    base = [f"data.path={history_path}", f"tracking.uri={uri}", f"tracking.experiment={experiment}", "search=none",
            "cv.n_splits=2", "n_jobs=1", "diagnostics=none", "tracking.log_plots=false", "tracking.log_model=true"]
    return run(compose_cfg(base + list(overrides)))


#: A model that beats both baselines on the 400-task benchmark (``history_400``) on the CV log-loss that
#: promote ranks and compares by: the procedures smoothed a little more (cv/log_loss_mean 0.3337 vs the rules'
#: 0.3354 and the class prior's 0.3454). On 400 generated tasks the learned families do not beat the rules
#: baseline; the mechanics of promotion are what is tested, not which family wins.
SHARP = ("model=rules", "model.name=rules_smooth", "+model.estimator.alpha=1.5", "metric=log_loss")


def runs_of(uri, experiment="wtc-binary"):
    """``(client, parent runs, child runs)`` of an experiment."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def versions(uri, name):
    """The registered versions of model ``name``."""
    import mlflow

    return mlflow.MlflowClient(uri).search_model_versions(f"name = '{name}'")


# --------------------------------------------------------------------------- stores
def copy_store(template: Path, folder: Path) -> str:
    """A tracking store at ``folder/mlruns/mlflow.db``, a copy of ``template`` (a database whose
    schema exists: MLflow's migrations take ~10 s); returns its URI."""
    (folder / "mlruns").mkdir(parents=True, exist_ok=True)
    shutil.copy(template, folder / "mlruns" / "mlflow.db")
    return f"sqlite:///{folder}/mlruns/mlflow.db"


def store_db(uri: str) -> Path:
    """The SQLite file behind a ``sqlite:///`` URI (to copy a filled store)."""
    return Path(uri.removeprefix("sqlite:///"))


# --------------------------------------------------------------------------- serving
def stop_group(process, grace: float = 15) -> None:
    """Stop a server started with ``start_new_session=True``: SIGTERM to its process group, SIGKILL after ``grace`` s."""
    import os
    import signal
    import subprocess

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(model_uri: str, tracking_uri: str, tmp_path):
    """`wtc serve` of a model for real (its process group stopped on exit); yields ``post(body)``,
    which POSTs a JSON body to /invocations and returns the answer's predictions."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    # Not the venv's bin dir on PATH: `wtc serve` must put it there itself.
    env["PATH"] = "/usr/bin:/bin"
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "wtc.cli", "serve", "--model", model_uri,
                               "--tracking-uri", tracking_uri, "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)

    def post(body: dict) -> list[dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())["predictions"]

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not answer within 90 s"
            time.sleep(1)
        yield post
    finally:
        stop_group(server)
        log.close()


# --------------------------------------------------------------------------- figures drawn on demand
def figure_inputs(n_classes: int = 2, rich: bool = True, seed: int = 0):
    """Random :class:`~wtc.evaluation.diagnostics.FigureInputs` (``rich``: folds, oracle, importances too)."""
    import numpy as np

    from wtc.evaluation.diagnostics import FigureInputs

    rng = np.random.default_rng(seed)

    def proba(n):
        p = rng.random((n, n_classes)) + 0.05
        return p / p.sum(axis=1, keepdims=True)

    y_train, y_test = rng.integers(0, n_classes, 200), rng.integers(0, n_classes, 80)
    folds = [(rng.integers(0, n_classes, 60), proba(60)) for _ in range(3)] if rich else None
    return FigureInputs([f"class{k}" for k in range(n_classes)], y_train, proba(200), y_test, proba(80),
                        np.bincount(np.concatenate([y_train, y_test]), minlength=n_classes),
                        [0.61, 0.64, 0.63] if rich else [0.6], "roc_auc", folds,
                        proba(80) if rich else None, None, rng.random(12) if rich else None,
                        [f"f{i}" for i in range(12)] if rich else None)


def on_demand_run(uri: str, folder: Path, name: str = "logreg-combined", cv: float = 0.7, sweep: str = "s/1",
                  model_on_demand: bool = False) -> str:
    """A parent run as a light job leaves it: the figures' inputs, the on-demand tag, the summary
    (with a model section saying how to log the model, when ``model_on_demand``); its id."""
    from wtc.evaluation.report import summary_markdown
    from wtc.store import RunTracker

    path = folder / name / "inputs.npz"
    path.parent.mkdir(parents=True)
    figure_inputs().save(path)
    with RunTracker(uri, "wtc-binary", run_name=name, tags={"wtc.sweep": sweep}) as tracker:
        tracker.log_params({"metric": "roc_auc", "model.name": name})
        tracker.log_metrics({"cv/roc_auc_mean": cv})
        tracker.log_artifact(path, "figures")
        summary = summary_markdown(name, {"model": "logreg"}, {}, "roc_auc", [], 200, 80, on_demand=tracker.run_id,
                                   model_on_demand=tracker.run_id if model_on_demand else None)
        tracker.log_text(summary, "summary.md")
        tracker.set_tags({"wtc.figures": "on_demand", "mlflow.note.content": summary})
        return tracker.run_id


def markdown_sections(text: str) -> dict[str, str]:
    """A Markdown page by section: ``{heading line: its body, stripped}`` (``""`` for what comes first)."""
    sections, heading = {"": []}, ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line
            sections[heading] = []
        else:
            sections[heading].append(line)
    return {h: "\n".join(body).strip() for h, body in sections.items()}


def listed(body: str) -> list[str]:
    """The items of a Markdown list of code spans (``- `plots/roc.png```), in order."""
    return [line[3:-1] for line in body.splitlines() if line.startswith("- `") and line.endswith("`")]


# --------------------------------------------------------------------------- a small history
WF = "pdmvserv_task_HIG-RunIIFall17DRStdmix-00451__v1_T_180412_131301_1234"
WF2 = "pdmvserv_task_SUS-RunIIFall17wmLHEGS-00012__v1_T_180530_101010_5678"
SMALL_HISTORY = {
    f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0": {
        "errors": {
            "good_sites": {"50660": {"T1_US_FNAL": 6, "T2_CH_CERNBOX": 63}, "-1": {"T1_DE_KIT": 1}},
            "bad_sites": {"71304": {"T2_DE_DESY": 102}},
        },
        "parameters": {"action": "acdc", "splitting": "2x", "xrootd": "enabled", "memory": "3000",
                       "sites": ["T1_US_FNAL"], "cores": ""},
    },
    f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0/HIG-RunIIFall17DRStdmix-00451_0MergeAODSIMoutput": {
        "errors": {
            "good_sites": {"codes": ["85", "50660"], "sites": ["T1_US_FNAL", "T2_US_MIT"],
                           "matrix": [[0, 2], [3, 0]]},
            "drain_sites": {"85": {"T2_US_MIT": 4}},
        },
        "parameters": {"action": "recovery", "splitting": "50x", "memory": 20000},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_0": {
        "errors": {"good_sites": {"8001": {"T2_US_MIT": 5, "T3_US_Rice": 1}}, "bad_sites": {}},
        "parameters": {"action": "by-pass"},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_0/SUS-RunIIFall17wmLHEGS-00012_0MergeRAWSIMoutput": {
        "errors": {"bad_sites": {"8001": {"T2_US_MIT": 2}, "139": {"Unknown": 7}}},
        "parameters": {"action": "clone", "splitting": "max", "xrootd": "disabled", "memory": "9000"},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_1": {
        "errors": {"good_sites": {"8001": {"T2_US_MIT": 1}}},
    },
}


def write_json(path, obj) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- the operator panel's model
#: The recovery parts' AUTO thresholds of :func:`panel_model`: a confident action is AUTO, and
#: an acdc's parameters never hold it back (so that a small benchmark has AUTO and REVIEW tasks).
PANEL_THRESHOLDS = {"action": 0.95, "splitting": 0.0, "xrootd": 0.0, "memory": 0.0}


class LoadedModel:
    """What ``load_model`` gives (``unwrap_python_model``, ``predict``) around a model built in memory."""

    def __init__(self, inner):
        self.inner = inner

    def unwrap_python_model(self):
        return self.inner

    def predict(self, frame, params=None):
        return self.inner.predict(None, frame, params)


def panel_model(folder: Path, n_tasks: int = 300, seed: int = 3):
    """A benchmark of ``n_tasks`` in ``folder`` and a recovery recommender fitted on it: the action
    part a small LightGBM (its explanations are the booster's contributions), the others logistic
    regressions (explained by ablation). Returns (history path, the model as loaded)."""
    from imblearn.pipeline import Pipeline
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MaxAbsScaler

    from wtc.data import build_features, build_target, load_history
    from wtc.data.synthetic import write_benchmark
    from wtc.inference.recovery import RECOVERY_TARGETS, RecoveryPart
    from wtc.inference.tasks import TaskModelSpec
    from wtc.store.recovery_model import WTCRecoveryModel

    path = write_benchmark(Path(folder) / "history.json", n_tasks=n_tasks, seed=seed)
    history = load_history(path, use_cache=False)
    extras = ["code_totals", "site_totals"]
    X, names = build_features(history, "codes", extras=extras)
    parts = {}
    for target in RECOVERY_TARGETS:
        y, classes = build_target(history, target)
        labelled = y >= 0
        model = (LGBMClassifier(n_estimators=30, num_leaves=8, min_child_samples=10, verbose=-1, n_jobs=1, random_state=0)
                 if target == "action" else LogisticRegression(max_iter=2000))
        pipeline = Pipeline([("scaler", MaxAbsScaler()), ("model", model)]).fit(X[labelled], y[labelled])
        spec = TaskModelSpec(view="codes", feature_names=list(names), class_names=list(classes), extras=extras,
                             target=target)
        parts[target] = RecoveryPart(pipeline, spec, PANEL_THRESHOLDS[target])
    return path, LoadedModel(WTCRecoveryModel(parts))


def save_panel_model(model: LoadedModel, folder: Path) -> str:
    """:func:`panel_model`'s model saved as an MLflow pyfunc folder (what ``--model PATH`` loads)."""
    import mlflow.pyfunc

    import wtc

    target = Path(folder) / "recovery-model"
    mlflow.pyfunc.save_model(str(target), python_model=model.inner, code_paths=[str(Path(wtc.__file__).parent)])
    return str(target)


def oof_gate(uri: str, run_id: str, alpha: float, delta: float = 0.1):
    """The AUTO gate recomputed from a run's logged out-of-fold rows, and their count."""
    import io

    import numpy as np

    from wtc.evaluation.gate import ltt_threshold
    from wtc.run.refit import OOF_ARTIFACT
    from wtc.store.query import read_artifact

    with np.load(io.BytesIO(read_artifact(uri, run_id, OOF_ARTIFACT))) as oof:
        proba, y, groups = oof["proba"], oof["y"], oof["groups"]
    return ltt_threshold(proba.max(axis=1), proba.argmax(axis=1) == y, groups, alpha=alpha, delta=delta), len(y)


# --------------------------------------------------------------------------- synthetic oracles
def small_traits_prior(world, history: dict):
    """A small traits prior for checking the name-blind oracles against brute-force enumeration.

    Three whitelist sites (the history's commonest, so every kind of stratum occurs), up to 3
    slots, three signature codes (the two commonest and one never thrown), a lognormal scale.
    Returns the prior, its sites and its codes (world indices).
    """
    from collections import Counter

    import numpy as np

    from wtc.data.synthetic.traits import TraitsPrior

    def commonest(what: str, n: int) -> list[int]:
        seen = Counter(code if what == "codes" else site for r in history.values() for m in r["errors"].values()
                       for code, row in m.items() for site in row)
        names = world.codes if what == "codes" else world.sites
        return [names.index(x) for x, _ in seen.most_common(n)]

    rng = np.random.default_rng(2)
    sites = commonest("sites", 3)
    codes = commonest("codes", 2)
    codes.append(next(c for c in range(len(world.codes)) if c not in codes))
    slot = np.zeros(len(world.sites))
    slot[sites] = rng.dirichlet(np.ones(3))
    signature = np.zeros_like(world.signature_prob)
    signature[:, codes] = rng.dirichlet(np.ones(3), signature.shape[0])
    return TraitsPrior(slot, rng.dirichlet(np.ones(4)), signature, 0.3, 0.8), sites, codes


def traits_enumeration(world, prior, sites, codes, nodes):
    """Every (whitelist, signature code, count scale) of a small prior with its log weight:
    the slot sequences over ``sites`` merged into sets, ``codes``, Gauss-Hermite ``nodes``."""
    import itertools
    from collections import Counter

    import numpy as np

    whitelists: Counter = Counter()
    for n, p_n in enumerate(prior.n_slots_prob):
        for seq in itertools.product(sites, repeat=n):
            whitelists[tuple(sorted(set(seq)))] += p_n * np.prod(prior.slot_prob[list(seq)])
    x, w = np.polynomial.hermite.hermgauss(nodes)
    for (whitelist, p_w), code, (x_i, w_i) in itertools.product(whitelists.items(), codes, zip(x, w)):
        scale = float(np.exp(prior.scale_mu + prior.scale_sigma * np.sqrt(2) * x_i))
        weight = np.log(p_w) + np.log(prior.signature_prob[:, code]) + np.log(w_i / np.sqrt(np.pi))
        yield list(whitelist) + [-1] * (5 - len(whitelist)), code, scale, weight


# --------------------------------------------------------------------------- serving
def asgi_call(app, body: bytes, content_type: str = "application/json", path: str = "/invocations",
              method: str = "POST", declare_length: bool = True) -> tuple[int, bytes]:
    """One HTTP request through the ASGI app, as uvicorn would make it (the body in chunks)."""
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"content-type", content_type.encode())]
             + ([(b"content-length", str(len(body)).encode())] if declare_length else []),
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 5001), "client": ("127.0.0.1", 1),
             "root_path": ""}
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
    out = {"status": None, "body": b""}

    async def receive():
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"]
