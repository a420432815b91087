"""A simulated operator for ``wtc panel``: decides the first N tasks of the queue through the panel's own pages
(confirm, then decide), accepting the recommendation where it equals what the history's operator chose and
overriding with that choice otherwise. The panel reviews the history without its ``parameters`` (new tasks).

    python experiments/panel_operator.py LABELLED.json --model models:/wtc-recovery@champion \
        --tracking-uri URI --decisions OUT.json [--tasks 60]
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

from wtc.ops.panel import build_panel

FIELDS = ("action", "splitting", "xrootd", "memory")


def _same(shown: dict | None, want: dict[str, str]) -> bool:
    if shown is None or shown["action"] != want["action"]:
        return False
    if want["action"] not in ("acdc", "recovery"):
        return True
    return all(str(shown.get(k, "")) == (want[k] or {"splitting": "1x", "xrootd": "disabled"}.get(k, ""))
               for k in FIELDS[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--decisions", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=60)
    args = parser.parse_args()
    labelled = json.loads(args.labelled.read_text())
    new = args.labelled.with_name(args.labelled.stem + ".new.json")
    new.write_text(json.dumps({t: {"errors": e["errors"]} for t, e in labelled.items()}))
    client = build_panel(new, args.model, args.tracking_uri, args.decisions, operator="sim-operator").test_client()
    tasks = [html.unescape(t) for t in re.findall(r'data-task="([^"]+)"', client.get("/").get_data(as_text=True))]
    tasks = tasks[:args.tasks]
    page = client.get("/task", query_string={"name": tasks[0]}).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    accepted = 0
    for task in tasks:
        want = {k: str(labelled[task]["parameters"].get(k) or "") for k in FIELDS}
        form = {"csrf": token, "task": task, "mode": "accept"}
        text = client.post("/confirm", data=form).get_data(as_text=True)
        written = re.search(r'<pre class="written">(.*?)</pre>', text, re.S)
        shown = json.loads(html.unescape(written.group(1)))[task]["parameters"] if written else None
        if _same(shown, want):
            accepted += 1
        else:
            form = {**form, "mode": "override", **want, "sites_mode": "auto", "sites": ""}
            text = client.post("/confirm", data=form).get_data(as_text=True)
        digest = re.search(r'name="digest" value="([^"]+)"', text).group(1)
        assert client.post("/decide", data={**form, "digest": digest}).status_code == 303, task
    print(f"decided {len(tasks)} task(s): {accepted} accepted, {len(tasks) - accepted} overridden -> {args.decisions}")


if __name__ == "__main__":
    main()
