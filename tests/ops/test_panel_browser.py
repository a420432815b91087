"""The operator panel in a real browser: ``wtc panel`` served by its own process, driven by Playwright through
Debian's headless Chromium (``/usr/bin/chromium`` or ``$WTC_CHROMIUM``; ``.ci/run`` installs it). Load the
queue, filter, open a task, accept one, override another, kill the server mid-way (a confirmation shown but
not confirmed) and restart it, bulk-accept a workflow's AUTO tasks; the decisions file then loads with
``load_history`` and holds exactly the confirmed decisions. A hostile history renders its names as text.

``$WTC_SCREENSHOTS=DIR`` keeps the screenshots (``panel-queue.png``, ``panel-task.png``, ...) in DIR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.factories import free_port, panel_model, save_panel_model, stop_group
from wtc.data import load_history

pytestmark = pytest.mark.slow

SCRIPT = "<script>alert(1)</script>"


def _chromium() -> str:
    chromium = os.environ.get("WTC_CHROMIUM", "/usr/bin/chromium")
    assert Path(chromium).is_file(), f"{chromium} is missing: apt-get install chromium (.ci/run does)"
    return chromium


def _start(history: Path, model: str, decisions: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "wtc.cli", "panel", str(history), "--model", model, "--port", str(port),
         "--decisions", str(decisions), "--operator", "carol"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"wtc panel exited {process.returncode}: {process.stdout.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
            return process
        except OSError:
            time.sleep(0.5)
    stop_group(process)
    raise AssertionError("wtc panel did not answer in 120 s")


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, 9)  # no chance to flush or clean up: what was confirmed must already be on disk
    process.wait(30)


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel-browser")
    history, model = panel_model(folder)
    return folder, Path(history), save_panel_model(model, folder)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


def _shot(page, name: str) -> None:
    folder = os.environ.get("WTC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def _confirm(page) -> dict:
    """On a confirmation page: what it says will be written; then confirm it."""
    shown = json.loads(page.locator("pre.written").inner_text())
    page.click("button.confirm")
    page.locator(".flash").wait_for()  # the page the decision redirects to says it was written
    return shown


def test_queue_filter_accept_override_kill_restart_bulk_accept(served_model, browser):
    folder, history, model = served_model
    decisions, port = folder / "decisions.json", free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(history, model, decisions, port)
    expected = {}
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base + "/")
        assert page.locator("tr.task").count() == 150
        _shot(page, "panel-queue.png")
        page.select_option("select[name=decision]", "AUTO")  # htmx swaps the rows in place
        page.locator("tr.task .badge.review").first.wait_for(state="detached")  # (the CSP forbids eval'd waits)
        assert "decision=AUTO" in page.url and page.locator("tr.task .badge.auto").count() > 0
        page.locator("a.tasklink").first.click()
        page.wait_for_load_state()
        page.locator("table.heatmap").wait_for()
        assert "LightGBM contribution" in page.content()
        _shot(page, "panel-task.png")
        page.click("button.accept")
        expected.update(_confirm(page))
        assert "accepted by carol" in page.content()

        page.goto(base + "/?decision=REVIEW")
        page.locator("a.tasklink").first.click()
        page.wait_for_load_state()
        page.select_option("select[name=action]", "acdc")
        page.select_option("select[name=splitting]", "5x")
        page.fill("input[name=memory]", "8000")
        page.click("button.override")
        _shot(page, "panel-confirm.png")
        expected.update(_confirm(page))
        assert "overridden by carol" in page.content()

        # A confirmation on screen, the server killed before it is confirmed: it must not be written.
        page.goto(base + "/?decision=REVIEW")
        pending = page.locator("tr.task").nth(1).get_attribute("data-task")
        page.locator("a.tasklink").nth(1).click()
        page.wait_for_load_state()
        page.click("button.override")
        page.locator("pre.written").wait_for()  # the confirmation is on screen
        _kill(server)
        server = _start(history, model, decisions, port)
        page.goto(base + "/")
        assert page.content().count("by carol") == 2  # reopened: what was decided is shown

        page.goto(base + "/?decision=AUTO")
        workflow = page.locator("tr.group a").first.inner_text()
        page.locator("tr.group a").first.click()
        page.wait_for_load_state()
        checked = page.locator("input[name=task]:checked").count()
        assert checked > 0
        page.click("button.accept")
        bulk = _confirm(page)
        assert len(bulk) == checked and all(t.startswith(f"/{workflow}/") for t in bulk)
        expected.update(bulk)
        _shot(page, "panel-workflow.png")
    finally:
        stop_group(server)
    written = json.loads(decisions.read_text())
    assert written == expected and pending not in written
    loaded = load_history(decisions, use_cache=False)
    assert sorted(loaded.tasks) == sorted(expected)
    assert all(loaded.parameter_records[i] == expected[t]["parameters"] for i, t in enumerate(loaded.tasks))
    journal = [json.loads(line) for line in decisions.with_name(decisions.name + ".journal.jsonl").open()]
    assert len(journal) == len(expected) and {r["operator"] for r in journal} == {"carol"}


def test_a_hostile_history_renders_its_names_as_text(served_model, browser):
    folder, history, model = served_model
    tasks = json.loads(history.read_text())
    hostile = {}
    for i, (task, entry) in enumerate(list(tasks.items())[:4]):
        workflow, rest = task.strip("/").split("/", 1)
        errors = {s: {c: {f"T2_XX_{SCRIPT}": n for n in sites.values()} for c, sites in codes.items()}
                  for s, codes in entry["errors"].items()}
        hostile[f"/{workflow}{SCRIPT}/{rest}<img src=x onerror=alert(2)>"] = {"errors": errors}
    path = folder / "hostile.json"
    path.write_text(json.dumps(hostile))
    port = free_port()
    server = _start(path, model, folder / "hostile.decisions.json", port)
    try:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.locator("tr.task").count() == 4
        assert "<script>alert(1)<" in page.locator("tr.group a").first.inner_text()  # the workflow ends at "/"
        page.locator("a.tasklink").first.click()
        page.wait_for_load_state()
        _shot(page, "panel-hostile.png")
        assert SCRIPT in page.locator("h1").inner_text() and f"T2_XX_{SCRIPT}" in page.locator("table.heatmap").inner_text()
        assert page.evaluate("document.querySelectorAll('script').length") == 1  # htmx only
        assert page.evaluate("document.querySelectorAll('img').length") == 0 and dialogs == []
    finally:
        stop_group(server)
