"""This process and its code: the git commit, the host and pid tags, whether a tagged process still runs."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

__all__ = ["git_commit", "process_alive", "process_started", "process_tags"]


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


def process_started(pid) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``), as text;
    None where there is no such process or no ``/proc``. A pid reused by a later process gets another value."""
    try:
        # "pid (name) state ppid ...": the name may hold spaces and ')'; the fields after its last ')'
        # start at field 3 (state), so field 22 (starttime) is the 20th of them.
        return Path(f"/proc/{int(pid)}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def process_tags() -> dict[str, str]:
    """``wtc.host``, ``wtc.pid`` and ``wtc.pid_started`` (when there is a ``/proc``) of this process: what tells,
    later, whether a RUNNING run's process is gone, even when its pid was given to another process since."""
    tags = {"wtc.host": socket.gethostname(), "wtc.pid": str(os.getpid())}
    started = process_started(os.getpid())
    if started is not None:
        tags["wtc.pid_started"] = started
    return tags


def process_alive(host: str | None, pid, started: str | None = None) -> bool | None:
    """Whether process ``pid`` of ``host`` still runs: None when that cannot be known here
    (another host, no pid). A zombie (killed, not yet reaped by its parent) counts as gone, and so
    does a process with that pid but another start time than ``started`` (the pid was reused)."""
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
    if started is not None:
        now = process_started(pid)
        if now is not None and now != str(started).strip():
            return False  # another process holds the pid now
    try:
        # /proc/<pid>/stat: "pid (name) state ..."; the name may hold spaces, the state follows its ')'.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
