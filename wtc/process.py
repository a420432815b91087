"""This process and its code: the git commit, the host and pid tags, whether a tagged process still runs."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

__all__ = ["git_commit", "process_alive", "process_tags"]


def git_commit() -> str:
    """``HEAD`` of the wtc checkout (``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return "unknown"
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def process_tags() -> dict[str, str]:
    """``wtc.host`` and ``wtc.pid`` of this process: what tells, later, whether a RUNNING run's process is gone."""
    return {"wtc.host": socket.gethostname(), "wtc.pid": str(os.getpid())}


def process_alive(host: str | None, pid) -> bool | None:
    """Whether process ``pid`` of ``host`` still runs: None when that cannot be known here
    (another host, no pid). A zombie (killed, not yet reaped by its parent) counts as gone."""
    if host != socket.gethostname():
        return None
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        # /proc/<pid>/stat: "pid (name) state ..."; the name may hold spaces, the state follows its ')'.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
