"""The operator panel through Flask's test client: the queue and its filters, a task page, accepting and
overriding (per task and for a workflow's AUTO tasks), the decisions file and its journal, and the guards
(CSRF, Host, body size, unknown names, escaping)."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.factories import panel_model
from wtc.data import load_history
from wtc.ops.panel import build_panel, decisions_path
from wtc.ops.panel.decisions import DecisionLog, check_parameters

HOST = "127.0.0.1:5050"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel")
    return panel_model(folder)


@pytest.fixture
def panel(built, tmp_path):
    history, model = built
    decisions = tmp_path / "decisions.json"
    app = build_panel(history, "models:/test-recovery@champion", None, decisions, operator="alice", model=model,
                      allowed_hosts={HOST})
    return app, app.test_client(), decisions


def get(client, url, **kw):
    return client.get(url, headers={"Host": HOST, **kw.pop("headers", {})}, **kw)


def post(client, url, data):
    return client.post(url, data=data, headers={"Host": HOST})


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def tasks_in(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<tr class="task" data-task="([^"]+)"', page)]


def test_the_queue_lists_every_task_newest_workflow_first_with_its_recommendation(panel, built):
    app, client, _ = panel
    page = get(client, "/").get_data(as_text=True)
    assert "recommendations from <b class=\"model\">models:/test-recovery@champion</b>" in page
    shown = tasks_in(page)
    history = load_history(built[0], use_cache=False)
    assert len(shown) == min(150, history.n_tasks)
    dates = [history.request_dates[t] for t in shown]
    assert all(a >= b for a, b in zip(dates, dates[1:]) if a == a and b == b)  # newest first (NaT aside)
    assert "AUTO" in page and "REVIEW" in page


def test_filters_narrow_the_queue_and_htmx_gets_only_the_rows(panel):
    _, client, _ = panel
    auto = get(client, "/?decision=AUTO").get_data(as_text=True)
    review = get(client, "/?decision=REVIEW").get_data(as_text=True)
    assert tasks_in(auto) and tasks_in(review) and not set(tasks_in(auto)) & set(tasks_in(review))
    assert 'class="badge review"' not in auto
    clone = get(client, "/?action=clone").get_data(as_text=True)
    assert all(">clone<" in row for row in clone.split('<tr class="task"')[1:])
    one = tasks_in(auto)[0]
    workflow = one.strip("/").split("/")[0]
    only = tasks_in(get(client, f"/?workflow={workflow}").get_data(as_text=True))
    assert one in only and all(t.startswith(f"/{workflow}/") for t in only)
    partial = get(client, "/?decision=AUTO", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and tasks_in(partial) == tasks_in(auto)
    nothing = get(client, "/?site=T9_XX_Nowhere").get_data(as_text=True)
    assert "no task matches these filters" in nothing


def test_a_task_page_shows_errors_probabilities_why_and_similar_decisions(panel):
    _, client, _ = panel
    task = tasks_in(get(client, "/").get_data(as_text=True))[0]
    page = get(client, "/task", query_string={"name": task}).get_data(as_text=True)
    assert html.escape(task) in page
    assert 'class="heatmap"' in page and "LightGBM contribution (log-odds)" in page
    assert "Operators&#39; decisions on similar tasks" in page or "decisions on similar tasks" in page
    assert re.search(r"<th>acdc</th>", page)
    if "splitting = " in page:  # an acdc: its logistic parts are explained by ablation
        assert "change of probability when the feature is removed" in page
    assert get(client, "/task", query_string={"name": "/no/such"}).status_code == 404


def _accept(client, task):
    page = get(client, "/task", query_string={"name": task}).get_data(as_text=True)
    confirm = post(client, "/confirm", {"csrf": csrf(page), "task": task, "mode": "accept"})
    assert confirm.status_code == 200, confirm.get_data(as_text=True)
    text = confirm.get_data(as_text=True)
    shown = json.loads(html.unescape(re.search(r'<pre class="written">(.*?)</pre>', text, re.S).group(1)))
    digest = re.search(r'name="digest" value="([^"]+)"', text).group(1)
    return shown, digest, csrf(page)


def test_accept_writes_exactly_the_confirmed_decision_and_the_journal_says_who(panel, built):
    _, client, decisions = panel
    task = next(t for t in tasks_in(get(client, "/?decision=AUTO").get_data(as_text=True)))
    shown, digest, token = _accept(client, task)
    assert not decisions.exists()  # a confirmation writes nothing
    done = post(client, "/decide", {"csrf": token, "task": task, "mode": "accept", "digest": digest})
    assert done.status_code == 303
    assert json.loads(decisions.read_text()) == shown
    history = load_history(decisions, use_cache=False)
    assert history.tasks == [task] and history.parameter_records[0] == shown[task]["parameters"]
    record = json.loads(decisions.with_name(decisions.name + ".journal.jsonl").read_text().splitlines()[0])
    assert record["operator"] == "alice" and record["accepted"] and record["model_version"]
    assert "by alice" in get(client, "/").get_data(as_text=True)


def test_override_and_the_guards(panel):
    _, client, decisions = panel
    task = tasks_in(get(client, "/?decision=REVIEW").get_data(as_text=True))[0]
    page = get(client, "/task", query_string={"name": task}).get_data(as_text=True)
    form = {"csrf": csrf(page), "task": task, "mode": "override", "action": "acdc", "splitting": "5x",
            "xrootd": "enabled", "memory": "8000", "sites_mode": "manual", "sites": "T1_US_FNAL, T2_CH_CERN"}
    assert post(client, "/confirm", {**form, "csrf": "forged"}).status_code == 403
    assert post(client, "/confirm", {**form, "memory": "lots"}).status_code == 400
    text = post(client, "/confirm", form).get_data(as_text=True)
    digest = re.search(r'name="digest" value="([^"]+)"', text).group(1)
    assert post(client, "/decide", {**form, "digest": digest, "memory": "9000"}).status_code == 400  # not what was shown
    assert not decisions.exists()
    assert post(client, "/decide", {**form, "digest": digest}).status_code == 303
    assert json.loads(decisions.read_text())[task]["parameters"] == {
        "action": "acdc", "splitting": "5x", "xrootd": "enabled", "memory": "8000",
        "sites": ["T1_US_FNAL", "T2_CH_CERN"], "cores": ""}
    assert client.get("/", headers={"Host": "evil.example:5050"}).status_code == 400
    assert post(client, "/confirm", {**form, "sites": "x" * 300_000}).status_code == 413
    assert get(client, "/static/../decisions.py").status_code == 404
    assert get(client, "/task", query_string={"name": "x" * 2000}).status_code == 400


def test_bulk_accept_of_a_workflows_auto_tasks(panel):
    _, client, decisions = panel
    auto = tasks_in(get(client, "/?decision=AUTO").get_data(as_text=True))
    workflow = max({t.strip("/").split("/")[0] for t in auto}, key=lambda w: sum(t.startswith(f"/{w}/") for t in auto))
    page = get(client, "/workflow", query_string={"name": workflow}).get_data(as_text=True)
    checked = [html.unescape(t) for t in re.findall(r'name="task" value="([^"]+)" checked', page)]
    assert checked and set(checked) <= set(auto)
    text = post(client, "/confirm", {"csrf": csrf(page), "task": checked, "mode": "accept"}).get_data(as_text=True)
    digest = re.search(r'name="digest" value="([^"]+)"', text).group(1)
    done = post(client, "/decide", {"csrf": csrf(page), "task": checked, "mode": "accept", "digest": digest})
    assert done.status_code == 303
    assert sorted(json.loads(decisions.read_text())) == sorted(checked)


def test_a_journal_line_not_yet_in_the_file_is_replayed_and_a_cut_line_is_ignored(tmp_path):
    path = tmp_path / "d.json"
    log = DecisionLog(path)
    errors = {"/wf/a": {"good_sites": {"85": {"T2_US_MIT": 2}}}, "/wf/b": {"bad_sites": {"-1": {"T1_US_FNAL": 1}}}}
    record = {"task": "/wf/a", "parameters": check_parameters("clone"), "operator": "bob", "at": "t", "accepted": False,
              "errors": errors["/wf/a"]}
    log.journal.write_text(json.dumps(record) + "\n" + json.dumps({**record, "task": "/wf/b"})[:40])  # killed mid-line
    reopened = DecisionLog(path)
    assert json.loads(path.read_text()) == {"/wf/a": {"errors": errors["/wf/a"], "parameters": record["parameters"]}}
    assert [r["task"] for r in reopened.history] == ["/wf/a"]
    assert load_history(path, use_cache=False).parameter_records[0]["action"] == "clone"


def test_parameters_are_checked_and_the_decisions_file_is_never_the_history(tmp_path):
    assert check_parameters("clone", "2x", "enabled", "3000") == {"action": "clone", "sites": [], "cores": ""}
    assert check_parameters("acdc")["splitting"] == "1x"
    for bad in [("merge",), ("acdc", "0x"), ("acdc", "2x", "maybe"), ("acdc", "", "", "-5")]:
        with pytest.raises(ValueError):
            check_parameters(*bad)
    with pytest.raises(ValueError, match="sites"):
        check_parameters("clone", sites=["bad:name"])
    history = tmp_path / "h.json"
    history.write_text("{}")
    assert decisions_path(history) == tmp_path / "h.decisions.json"
    with pytest.raises(Exception, match="the history under review"):
        decisions_path(history, history)


SCRIPT = "<script>alert(1)</script>"


def hostile_history(history_path, folder):
    """The first tasks of a benchmark renamed with script tags in workflow, task and site names."""
    tasks = json.loads(history_path.read_text())
    out = {}
    for i, (task, entry) in enumerate(list(tasks.items())[:6]):
        workflow, rest = task.strip("/").split("/", 1)
        errors = {status: {code: {f"T2_XX_{SCRIPT}{site}" if i % 2 else site: n for site, n in sites.items()}
                           for code, sites in codes.items()} for status, codes in entry["errors"].items()}
        out[f"/{workflow}{SCRIPT}/{rest}\"'<img src=x onerror=alert(2)>"] = {"errors": errors}
    path = folder / "hostile.json"
    path.write_text(json.dumps(out))
    return path


def test_names_from_a_hostile_history_are_rendered_as_text(built, tmp_path):
    history, model = built
    path = hostile_history(history, tmp_path)
    app = build_panel(path, "models:/test-recovery@champion", None, tmp_path / "d.json", operator="<b>eve</b>",
                      model=model)
    client = app.test_client()
    pages = [client.get("/").get_data(as_text=True)]
    tasks = tasks_in(pages[0])
    assert len(tasks) == 6 and all(SCRIPT in t for t in tasks)
    for task in tasks[:2]:
        pages.append(client.get("/task", query_string={"name": task}).get_data(as_text=True))
        pages.append(client.get("/workflow", query_string={"name": task.strip("/").split("/")[0]}).get_data(
            as_text=True))
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>eve" not in page
        assert page.count("<script") == 1  # htmx, nothing else
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1] and "T2_XX_&lt;script&gt;" in "".join(pages)


def test_the_kill_switch_stops_bulk_accepts_and_survives_a_restart(panel, built):
    app, client, decisions = panel
    auto = tasks_in(get(client, "/?decision=AUTO").get_data(as_text=True))
    page = get(client, "/task", query_string={"name": auto[0]}).get_data(as_text=True)
    assert "automation on" in page and get(client, "/automation").get_json()["paused"] is False
    assert post(client, "/automation", {"csrf": "forged", "paused": "true"}).status_code == 403
    assert post(client, "/automation", {"csrf": csrf(page), "paused": "true"}).status_code == 303
    refused = post(client, "/confirm", {"csrf": csrf(page), "task": auto[:2], "mode": "accept"})
    assert refused.status_code == 409 and "automation is paused (by alice" in refused.get_data(as_text=True)
    assert post(client, "/confirm", {"csrf": csrf(page), "task": auto[0], "mode": "accept"}).status_code == 200
    workflow = auto[0].strip("/").split("/")[0]
    paused = get(client, "/workflow", query_string={"name": workflow}).get_data(as_text=True)
    assert " checked" not in paused and '<span class="muted unselected">automation is paused</span>' in paused
    history, model = built
    reopened = build_panel(history, "models:/test-recovery@champion", None, decisions, operator="bob", model=model)
    state = reopened.test_client().get("/automation").get_json()
    assert state["paused"] is True and state["operator"] == "alice"
    assert not decisions.exists()  # the switch is not a decision


def test_a_single_target_model_works_too(tmp_path):
    from tests.factories import LoadedModel, fit_small_pipeline
    from wtc.store.pyfunc import WTCTaskModel

    path = tmp_path / "history.json"
    pipeline, _, names, classes, _, _ = fit_small_pipeline(path, 120, 5, "binary")
    model = LoadedModel(WTCTaskModel(pipeline, classes, names, view="combined", target="binary", threshold=0.6))
    client = build_panel(path, "models:/wtc-binary@champion", None, tmp_path / "d.json", operator="dan",
                         model=model).test_client()
    page = client.get("/").get_data(as_text=True)
    tasks = tasks_in(page)
    assert len(tasks) == 120 and "non-acdc" in page
    acdc = next(t for t in tasks if ">acdc<" in page.split(f'data-task="{html.escape(t)}"')[1].split("</tr>")[0])
    other = next(t for t in tasks if ">non-acdc<" in page.split(f'data-task="{html.escape(t)}"')[1].split("</tr>")[0])
    task_page = client.get("/task", query_string={"name": acdc}).get_data(as_text=True)
    assert "change of probability when the feature is removed" in task_page  # a logistic model: ablation
    assert "Accept the recommendation" in task_page
    assert "Accepting needs a choice of: <b>action</b>" in client.get(
        "/task", query_string={"name": other}).get_data(as_text=True)


def test_a_joint_gated_model_shows_its_auto_mode(built, tmp_path):
    """A recommender with a joint gate in mode action: the queue and task pages say which AUTO each task got."""
    from tests.factories import LoadedModel
    from wtc.inference.joint import JointGate
    from wtc.store.recovery_model import WTCRecoveryModel

    history, model = built
    inner = model.unwrap_python_model()
    # Low thresholds: some tasks clear the whole's, others only the action's.
    gated = LoadedModel(WTCRecoveryModel(inner.parts, JointGate(joint_threshold=0.5, action_threshold=0.6,
                                                                mode="action", joint_coverage=0.2,
                                                                action_coverage=0.7)))
    app = build_panel(history, "models:/test-recovery@champion", None, tmp_path / "d.json", operator="alice",
                      model=gated, allowed_hosts={HOST})
    client = app.test_client()
    page = get(client, "/?decision=AUTO").get_data(as_text=True)
    assert '<span class="mode"' in page and "action only" in page and ">whole<" in page
    by_action = re.search(r'<tr class="task" data-task="([^"]+)">\s*<td><span class="badge auto">AUTO</span> '
                          r'<span class="mode"[^>]*>action only', page).group(1)
    shown = get(client, f"/task?name={html.unescape(by_action)}").get_data(as_text=True)
    assert re.search(r"AUTO for the action only \(\w+ [0-9.]+\): the parameters are suggestions; the confidence below "
                     "is the whole recommendation's.", shown)
    assert "the whole recommendation held back by: <b>whole " in shown  # not "held back by" on an AUTO task
    from wtc.ops.predict import predict_history

    # What `wtc predict` expects of it: AUTO by the action too, so at least the action's share, not the whole's.
    assert predict_history(history, "models:/test-recovery@champion", model=gated).expected_coverage == 0.7
    # Bulk accept pre-selects the wholly AUTO tasks only: an action-only task's parameters need a look.
    seen = {"whole": [], "action only": []}
    for workflow in {t.strip("/").split("/")[0] for t in tasks_in(page)}:
        rows = get(client, "/workflow", query_string={"name": workflow}).get_data(as_text=True)
        for row in re.findall(r'<tr class="task".*?</tr>', rows, flags=re.S):
            for mode in seen:
                if f">{mode}<" in row:
                    seen[mode].append(" checked>" in row)
                    # An unticked AUTO task says why beside its box.
                    why = re.search(r'<span class="muted unselected">([^<]+)</span>', row)
                    assert (why is None) == (" checked>" in row)
                    if mode == "action only":
                        assert why.group(1) == "its parameters are suggestions to check"
                    elif why:
                        assert why.group(1).startswith("needs a choice of ")
    # (a whole-AUTO task whose recommendation lacks a parameter stays unticked too)
    assert any(seen["whole"]) and seen["action only"] and not any(seen["action only"])
