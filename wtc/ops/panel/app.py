"""The operator panel's web app (Flask + Jinja2 templates, htmx for the queue's partial updates).

Pages: the queue (``/``), a task (``/task?name=``), a workflow (``/workflow?name=``); writes: the
confirmation (``POST /confirm``) and the decision (``POST /decide``). Every write carries the
page's CSRF token; requests are bounded; the Host header must name the address served (no DNS
rebinding onto a loopback panel); every name read from a file is escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, url_for

from wtc.data.validation import MAX_TASK_NAME
from wtc.data.vocabulary import exit_code_info
from wtc.ops.panel.data import PanelData
from wtc.ops.panel.decisions import ACTIONS, SPLITTINGS, Decision, DecisionLog, check_parameters, now

__all__ = ["create_app"]

#: The largest request body the panel reads (a bulk decision of a workflow's tasks is a few kB).
MAX_BODY_BYTES = 256 * 1024
#: The most tasks one decision may cover.
MAX_TASKS_PER_DECISION = 500
ROWS_PER_PAGE = 150
_FILTERS = ("decision", "action", "campaign", "workflow", "site")


def _text(name: str, limit: int = MAX_TASK_NAME) -> str:
    value = request.values.get(name, "")
    if len(value) > limit:
        abort(400, f"{name} is longer than {limit} characters")
    return value


def _why_unselected(row: dict, paused: bool) -> str | None:
    """Why the workflow page does not pre-select an AUTO task for bulk accept (None: it does; "": a REVIEW task)."""
    if row.get("decision") != "AUTO":
        return ""
    if row.get("decided"):
        return "already decided"
    if paused:
        return "automation is paused"
    if row.get("auto_mode") == "action":
        return "its parameters are suggestions to check"
    if row.get("missing"):
        return f"needs a choice of {', '.join(row['missing'])}"
    return None


def create_app(data: PanelData, log: DecisionLog, operator: str, allowed_hosts: set[str] | None = None) -> Flask:
    """The panel over ``data``, writing to ``log`` for ``operator``.

    ``allowed_hosts``: the Host headers answered (``127.0.0.1:PORT``, ``localhost:PORT``); None: any.
    """
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
                      MAX_FORM_PARTS=MAX_TASKS_PER_DECISION + 50)
    app.config["WTC_DECISIONS"] = str(log.path)
    token = secrets.token_urlsafe(32)

    @app.before_request
    def guard():
        if allowed_hosts is not None and request.host not in allowed_hosts:
            abort(400, "unknown Host header (the panel answers only the address it serves)")
        if request.method == "POST":
            sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent.encode(), token.encode()):
                abort(403, "missing or wrong CSRF token: reload the page")

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; "
                                                       "style-src 'self'; img-src 'self' data:; "
                                                       "form-action 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(409)
    @app.errorhandler(413)
    def error(exc):
        return render_template("error.html", code=exc.code, message=exc.description, **common()), exc.code

    def common() -> dict[str, Any]:
        return {"meanings": lambda code: exit_code_info(code)["meaning"], "automation": log.automation, "csrf": token, "model": data.model_label, "operator": operator, "decisions_path": log.path}

    def decided_of(task: str) -> dict[str, Any] | None:
        entry = log.entries.get(task)
        if entry is None:
            return None
        record = log.latest(task) or {}
        return {**entry["parameters"], "operator": record.get("operator", ""), "at": record.get("at", ""),
                "model_version": record.get("model_version", ""), "accepted": record.get("accepted")}

    def queue_rows() -> tuple[list[dict], dict[str, str], int, int]:
        filters = {name: _text(name, 200) for name in _FILTERS}
        table = data.table
        mask = table["error"] == ""
        if filters["decision"] in ("AUTO", "REVIEW"):
            mask &= table["decision"] == filters["decision"]
        if filters["action"]:
            column = "action" if "action" in table.columns else "recommendation"
            mask &= table[column] == filters["action"]
        if filters["campaign"]:
            mask &= table["campaign"] == filters["campaign"]
        if filters["workflow"]:
            mask &= table["workflow"].str.contains(filters["workflow"], regex=False)
        if filters["site"]:
            mask &= table["sites"].str.split().map(lambda sites: filters["site"] in sites)
        rows = table[mask]
        try:
            page = max(1, int(request.args.get("page", "1")))
        except ValueError:
            page = 1
        pages = max(1, -(-len(rows) // ROWS_PER_PAGE))
        page = min(page, pages)
        shown = rows.iloc[(page - 1) * ROWS_PER_PAGE:page * ROWS_PER_PAGE]
        out = [{**row, "decided": decided_of(row["task"])} for row in shown.to_dict("records")]
        return out, filters, page, pages

    @app.get("/")
    def queue():
        rows, filters, page, pages = queue_rows()
        table = data.table[data.table["error"] == ""]
        key = "action" if "action" in table.columns else "recommendation"
        context = dict(rows=rows, filters=filters, page=page, pages=pages, total=len(data.table),
                       matched=None, invalid=int((data.table["error"] != "").sum()),
                       auto=int((table["decision"] == "AUTO").sum()), decided=len(log.entries),
                       choices={"action": sorted(table[key].dropna().unique()),
                                "campaign": sorted(table["campaign"].dropna().unique())}, **common())
        if request.headers.get("HX-Request"):
            return render_template("rows.html", **context)
        return render_template("queue.html", **context)

    def task_or_404(name: str) -> str:
        if name not in data.index or name not in data.row_of:
            abort(404, "no such task in this history")
        return name

    @app.get("/task")
    def task():
        name = task_or_404(_text("name"))
        form, missing = data.proposal(name)
        decided = decided_of(name)
        return render_template("task.html", task=name, row=data.summary(name), heatmap=data.heatmap(name),
                               why=data.why(name), similar=data.similar(name, log.entries), form=form,
                               missing=missing, decided=decided, actions=ACTIONS, splittings=SPLITTINGS,
                               journal=[r for r in log.history if r["task"] == name], **common())

    @app.get("/workflow")
    def workflow():
        name = _text("name")
        tasks = [t for t in data.table.loc[data.table["workflow"] == name, "task"] if t in data.row_of]
        if not tasks:
            abort(404, "no such workflow in this history")
        rows = [{**data.summary(t), "decided": decided_of(t), "missing": data.proposal(t)[1]} for t in tasks]
        for row in rows:
            row["unselected"] = _why_unselected(row, log.automation["paused"])
        return render_template("workflow.html", workflow=name, rows=rows, actions=ACTIONS, splittings=SPLITTINGS,
                               **common())

    def planned() -> tuple[list[tuple[str, dict]], list[str], dict[str, Any]]:
        """The decisions a confirm/decide request asks for, the tasks refused and the form read."""
        tasks = request.form.getlist("task")
        if not tasks or len(tasks) > MAX_TASKS_PER_DECISION:
            abort(400, f"choose 1 to {MAX_TASKS_PER_DECISION} tasks")
        for name in tasks:
            task_or_404(name)
        mode = request.form.get("mode", "")
        form = {k: request.form.get(k, "")[:200] for k in ("action", "splitting", "xrootd", "memory", "sites",
                                                            "sites_mode")}
        if mode == "accept" and len(set(tasks)) > 1 and log.automation["paused"]:
            abort(409, f"automation is paused (by {log.automation['operator']} at {log.automation['at']}): accept "
                       "tasks one by one, or resume it")
        plans, refused = [], []
        for name in dict.fromkeys(tasks):
            if mode == "accept":
                values, missing = data.proposal(name)
                if missing:
                    refused.append(f"{name}: the recommendation leaves {', '.join(missing)} to choose: "
                                   "open the task and override")
                    continue
            elif mode == "override":
                values = form
            else:
                abort(400, "mode must be accept or override")
            sites = values["sites"].replace(",", " ").split() if values.get("sites_mode", "auto") == "manual" else []
            try:
                params = check_parameters(values["action"], values["splitting"], values["xrootd"], values["memory"],
                                          sites)
            except ValueError as exc:
                abort(400, f"{name}: {exc}")
            plans.append((name, params))
        return plans, refused, {"mode": mode, **form}

    def written(plans: list[tuple[str, dict]]) -> str:
        return json.dumps({t: {"errors": data.errors[t], "parameters": p} for t, p in plans}, indent=1,
                          ensure_ascii=False)

    @app.post("/confirm")
    def confirm():
        plans, refused, form = planned()
        text = written(plans)
        return render_template("confirm.html", plans=plans, refused=refused, form=form, text=text,
                               digest=hashlib.sha256(text.encode()).hexdigest(), **common())

    @app.post("/decide")
    def decide():
        plans, _, form = planned()
        text = written(plans)
        if not hmac.compare_digest(request.form.get("digest", ""), hashlib.sha256(text.encode()).hexdigest()):
            abort(400, "the decision differs from the one confirmed: confirm it again")
        at, mode = now(), form["mode"]
        log.decide([Decision(task=t, parameters=p, operator=operator, at=at, accepted=mode == "accept",
                             recommendation=str(data.summary(t).get("recommendation", "")), model=data.model_uri,
                             model_version=data.model_label) for t, p in plans], data.errors)
        if len(plans) == 1:
            return redirect(url_for("task", name=plans[0][0], decided=1), 303)
        return redirect(url_for("workflow", name=data.summary(plans[0][0])["workflow"], decided=len(plans)), 303)

    @app.get("/automation")
    def automation_state():
        """The kill switch's state, for whatever automates decisions to read before acting."""
        return jsonify(log.automation)

    @app.post("/automation")
    def automation_switch():
        paused = request.form.get("paused", "")
        if paused not in ("true", "false"):
            abort(400, "paused must be true or false")
        log.set_automation(paused == "true", operator)
        return redirect(url_for("queue"), 303)

    return app
