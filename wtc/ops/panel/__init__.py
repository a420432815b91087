"""``wtc panel``: the operators' web page over a history and a registered model — the queue, a task's
errors and why, decisions written to an actions-history file (:mod:`~wtc.ops.panel.decisions`)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

__all__ = ["build_panel", "decisions_path", "serve_panel"]


def decisions_path(history: Path | str, decisions: Path | str | None = None) -> Path:
    """``--decisions``, else ``<history stem>.decisions.json`` beside the history; never the history itself."""
    from wtc.errors import WtcError
    from wtc.outputs import _same_file

    history = Path(history)
    path = Path(decisions) if decisions is not None else history.with_name(history.stem + ".decisions.json")
    if _same_file(path, history):
        raise WtcError(f"--decisions {path} is the history under review: choose another file")
    if path.is_dir():
        raise WtcError(f"--decisions {path} is a folder: name a file")
    return path


def build_panel(history: Path | str, model_uri: str, tracking_uri: str | None = None,
                decisions: Path | str | None = None, operator: str | None = None, model=None,
                allowed_hosts: set[str] | None = None):
    """The panel's Flask app: the history predicted by the model, decisions to ``decisions``."""
    from wtc.ops.panel.app import create_app
    from wtc.ops.panel.data import PanelData
    from wtc.ops.panel.decisions import DecisionLog, default_operator
    from wtc.store.registry import version_label

    log = DecisionLog(decisions_path(history, decisions))
    data = PanelData(history, model_uri, tracking_uri, model=model, model_label=version_label(tracking_uri, model_uri))
    return create_app(data, log, operator or default_operator(), allowed_hosts)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_panel(history: Path | str, model_uri: str, tracking_uri: str | None = None, port: int = 5050,
                host: str = "127.0.0.1", decisions: Path | str | None = None, operator: str | None = None) -> None:
    """Serve the panel until interrupted (threaded, on ``host:port``)."""
    from werkzeug.serving import make_server

    loopback = _loopback(host)
    hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")} if loopback else None
    if not loopback:
        print(f"warning: the panel has no login: anyone who reaches {host}:{port} can write decisions; keep it "
              "on a trusted network or reach it through ssh -L", file=sys.stderr, flush=True)
    app = build_panel(history, model_uri, tracking_uri, decisions, operator, allowed_hosts=hosts)
    server = make_server(host, port, app, threaded=True)
    print(f"wtc panel on http://{host}:{port}/ (decisions: {app.config['WTC_DECISIONS']}); Ctrl-C stops it",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
