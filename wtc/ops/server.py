"""A shared MLflow tracking server in one folder: a PostgreSQL backend store and proxied artifacts.

``wtc tracking-server start --dir DIR`` (and :func:`start`) lays out ``DIR`` as::

    DIR/postgres/data      the PostgreSQL cluster (initdb; owned by ``postgres`` when run as root)
    DIR/postgres/log       PostgreSQL's log
    DIR/pgpass             the database password (mode 600), read by libpq through $PGPASSFILE
    DIR/artifacts          every run's artifacts, uploaded and read through the server
    DIR/mlflow.log         the MLflow server's log
    DIR/server.json        what runs where (pids, ports, URIs), for ``status`` and ``stop``

PostgreSQL listens on 127.0.0.1 only (a free port, password authentication, no Unix socket):
its one client is the MLflow server beside it. The MLflow server binds ``--host`` (127.0.0.1
unless told otherwise) and serves the artifacts itself (``mlflow-artifacts:``), so a client on
another machine needs nothing but the server's URL. A second ``start`` reuses the cluster, so
nothing recorded is lost between a ``stop`` and the next ``start``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wtc.errors import TrackingError, one_line
from wtc.store.uri import check_reachable

__all__ = ["ServerStatus", "database_dsn", "free_port", "postgres_bin_dir", "start", "status", "stop"]

DB_NAME = "mlflow"
DB_USER = "wtc"
#: The system user that runs PostgreSQL when wtc runs as root (initdb and postgres refuse root).
#: Debian's ``postgresql`` package creates it.
ROOT_PG_USER = "postgres"
STATE = "server.json"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_CHILDREN: dict[int, subprocess.Popen] = {}  # servers started by this process, to reap on stop


@dataclass
class ServerStatus:
    """What runs from one server folder."""

    dir: Path
    uri: str | None          # the MLflow server's URL, when one was started from ``dir``
    mlflow: bool             # the MLflow server answers
    postgres: bool           # the PostgreSQL cluster runs
    pg_port: int | None
    pg_version: str | None

    @property
    def running(self) -> bool:
        """Both the MLflow server and its database are up."""
        return self.mlflow and self.postgres


# ------------------------------------------------------------------------------- PostgreSQL
def postgres_bin_dir() -> Path:
    """The folder holding PostgreSQL's server binaries (``initdb``, ``pg_ctl``, ``postgres``).

    Looked for in ``$WTC_PG_BIN``, then beside ``pg_ctl`` on ``PATH``, then in Debian's
    ``/usr/lib/postgresql/<version>/bin`` (the newest version).

    Raises
    ------
    TrackingError
        No folder has all three; the message says how to install them.
    """
    candidates = []
    if os.environ.get("WTC_PG_BIN"):
        candidates.append(Path(os.environ["WTC_PG_BIN"]))
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)], reverse=True)
    candidates.extend(versions)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in _BINARIES):
            return folder
    raise TrackingError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $WTC_PG_BIN, on PATH or "
                        "in /usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql)")


def _owner_prefix() -> list[str]:
    """Run PostgreSQL's tools as ``postgres`` when we are root (they refuse root), else as ourselves."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam(ROOT_PG_USER)
    except KeyError:
        raise TrackingError(f"running as root needs the system user {ROOT_PG_USER!r} to run PostgreSQL (Debian's "
                            "postgresql package creates it); or start the server as an ordinary user") from None
    return ["runuser", "-u", ROOT_PG_USER, "--"]


def _run(command: list[str], what: str, log: Path | None = None) -> str:
    done = subprocess.run(_owner_prefix() + command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        if log is not None and log.exists():
            detail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:] or detail
        raise TrackingError(f"{what} failed: {detail[0]}")
    return done.stdout


def _give_to_owner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, ROOT_PG_USER, ROOT_PG_USER)


def _init_cluster(root: Path, bins: Path) -> None:
    """Create the cluster (once) with the password of ``DIR/pgpass``, listening on 127.0.0.1 only."""
    pg = root / "postgres"
    data = pg / "data"
    pg.mkdir(parents=True, exist_ok=True)
    _give_to_owner(pg)
    if os.geteuid() == 0 and subprocess.run(_owner_prefix() + ["test", "-w", str(pg)]).returncode != 0:
        raise TrackingError(f"the {ROOT_PG_USER!r} user cannot write {pg}: a parent folder is private to root; "
                            "choose a --dir it can reach (e.g. under /srv or /tmp)")
    password = _password(root)
    if (data / "PG_VERSION").exists():
        return
    pwfile = pg / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _give_to_owner(pwfile)
    try:
        _run([str(bins / "initdb"), "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
              "-E", "UTF8", "--locale=C"], f"initdb of {data}")
    finally:
        pwfile.unlink(missing_ok=True)
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\n# wtc tracking-server: loopback only, no Unix socket (the MLflow server is the only client)\n"
                   "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")


def _password(root: Path) -> str:
    """The database password, kept in ``DIR/pgpass`` (libpq's password-file format, mode 600)."""
    pgpass = root / "pgpass"
    if pgpass.exists():
        return pgpass.read_text().strip().rsplit(":", 1)[-1]
    password = secrets.token_urlsafe(24)
    pgpass.touch(mode=0o600)
    pgpass.write_text(f"127.0.0.1:*:*:{DB_USER}:{password}\n")
    return password


def _pg_running(root: Path, bins: Path) -> bool:
    data = root / "postgres" / "data"
    if not (data / "PG_VERSION").exists():
        return False
    return subprocess.run(_owner_prefix() + [str(bins / "pg_ctl"), "-D", str(data), "status"],
                          capture_output=True, stdin=subprocess.DEVNULL).returncode == 0


def database_dsn(dir: Path | str, port: int | None = None) -> str:
    """A libpq connection string to the server's database (e.g. for ``psycopg2.connect``).

    Parameters
    ----------
    dir : path
        The server folder.
    port : int, optional
        PostgreSQL's port; by default the one in ``DIR/server.json``.
    """
    root = Path(dir).resolve()
    port = port or _state(root).get("pg_port")
    if port is None:
        raise TrackingError(f"no tracking server was started from {root}")
    return f"host=127.0.0.1 port={port} dbname={DB_NAME} user={DB_USER} passfile={root / 'pgpass'}"


def _create_database(root: Path, port: int) -> str:
    """Create the MLflow database if missing; return the server's version (e.g. ``15.14``)."""
    import psycopg2

    dsn = database_dsn(root, port).replace(f"dbname={DB_NAME}", "dbname=postgres")
    try:
        connection = psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.Error as exc:
        raise TrackingError(f"cannot connect to PostgreSQL on 127.0.0.1:{port}: {one_line(exc)}") from None
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {DB_NAME}")
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0].split()[0]
    finally:
        connection.close()


# ------------------------------------------------------------------------------ processes
def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _answers(url: str) -> bool:
    try:
        check_reachable(url, timeout=3.0)
        return True
    except TrackingError:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies awaiting their parent do not count)."""
    child = _CHILDREN.get(pgid)
    if child is not None:
        child.poll()  # reap our own child, or it stays a zombie that looks alive
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _is_our_server(pid: int, root: Path) -> bool:
    """The process ``pid`` is the MLflow server of ``root`` (and not an unrelated process that reused the pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return _group_alive(pid)
    return "mlflow" in command and str(root / "artifacts") in command


def _state(root: Path) -> dict:
    try:
        return json.loads((root / STATE).read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------- API
def start(dir: Path | str, host: str = "127.0.0.1", port: int = 5000, workers: int = 2,
          allowed_hosts: str | None = None, timeout: float = 180.0) -> ServerStatus:
    """Start PostgreSQL and an MLflow server on it from ``dir``; return once the server answers.

    Parameters
    ----------
    dir : path
        The server folder (created; see the module docstring for what goes where).
    host : str
        Interface the MLflow server binds: 127.0.0.1 (this machine only) unless told otherwise,
        e.g. ``0.0.0.0`` for a group's server (MLflow then still only answers Host headers of
        localhost and private addresses).
    port : int
        The MLflow server's port.
    workers : int
        The MLflow server's worker processes.
    allowed_hosts : str, optional
        MLflow's ``--allowed-hosts``: the Host headers it answers besides localhost and private
        addresses, e.g. ``mlflow.example.org,mlflow.example.org:5000`` for a server reached by name.
    timeout : float
        Seconds to wait for the MLflow server to answer (it migrates a new database first).

    Raises
    ------
    TrackingError
        PostgreSQL is missing, a server already runs from ``dir``, the port is taken, or a
        process failed to start (the message quotes its log).
    """
    root = Path(dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    current = status(root)
    if current.mlflow:
        raise TrackingError(f"a tracking server already runs from {root} at {current.uri}; stop it first")
    if _port_in_use(host, port):
        raise TrackingError(f"port {port} on {host} is in use; choose another --port")
    bins = postgres_bin_dir()
    _init_cluster(root, bins)
    if current.postgres:  # left over from an interrupted start or stop
        _run([str(bins / "pg_ctl"), "-D", str(root / "postgres" / "data"), "-m", "fast", "-w", "stop"],
             "stopping PostgreSQL")
    pg_port, pg_log = free_port(), root / "postgres" / "log"
    _run([str(bins / "pg_ctl"), "-D", str(root / "postgres" / "data"), "-l", str(pg_log), "-w", "-t", "60",
          "-o", f"-p {pg_port}", "start"], f"starting PostgreSQL ({bins}) in {root / 'postgres'}", log=pg_log)
    url = f"http://{_connect_host(host)}:{port}"
    state = {"uri": url, "host": host, "port": port, "pg_port": pg_port, "pg_bin": str(bins), "mlflow_pid": None}
    try:
        state["pg_version"] = _create_database(root, pg_port)
        (root / "artifacts").mkdir(exist_ok=True)
        # SQLAlchemy 2.1 defaults postgresql:// to psycopg 3; name the driver wtc installs. The password comes
        # from $PGPASSFILE, not the command line (which every local user can read).
        backend = f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{pg_port}/{DB_NAME}"
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                   "--artifacts-destination", str(root / "artifacts"), "--host", host, "--port", str(port),
                   "--workers", str(workers),
                   # uvicorn restarts a worker that has not answered its supervisor within 5 s; on a busy
                   # machine a worker takes longer than that just to import MLflow.
                   "--uvicorn-opts", "--timeout-worker-healthcheck 60"]
        if allowed_hosts:
            command += ["--allowed-hosts", allowed_hosts]
        env = dict(os.environ, PGPASSFILE=str(root / "pgpass"),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        env.pop("MLFLOW_TRACKING_URI", None)
        # Job execution (GenAI scorers, prompt optimisation) starts seven queue consumers, each a
        # Python process importing MLflow: nothing wtc uses, and a heavy load on a small machine.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        with open(root / "mlflow.log", "ab") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True, cwd=root)
        _CHILDREN[server.pid] = server
        state["mlflow_pid"] = server.pid
        (root / STATE).write_text(json.dumps(state, indent=2))
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                lines = [x for x in (root / "mlflow.log").read_text(errors="replace").splitlines() if x.strip()]
                why = "exited" if server.returncode is not None else f"did not answer within {timeout:.0f} s"
                raise TrackingError(f"the MLflow server {why} (log {root / 'mlflow.log'}: "
                                    f"{lines[-1] if lines else 'empty'})")
            time.sleep(0.5)
    except BaseException:
        (root / STATE).write_text(json.dumps(state, indent=2))
        stop(root)
        raise
    return status(root)


def stop(dir: Path | str, timeout: float = 10.0) -> list[str]:
    """Stop the MLflow server (its whole process group) and PostgreSQL of ``dir``; keep their data.

    The server gets SIGTERM and ``timeout`` seconds, then SIGKILL; PostgreSQL a fast shutdown.
    Returns what was stopped (empty when nothing ran).
    """
    root = Path(dir).resolve()
    state, stopped = _state(root), []
    pid = state.get("mlflow_pid")
    if pid and _group_alive(pid) and _is_our_server(pid, root):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _group_alive(pid):
                time.sleep(0.1)
        stopped.append(f"MLflow server {state.get('uri')} (pid {pid})")
    _CHILDREN.pop(pid, None)
    bins = Path(state["pg_bin"]) if state.get("pg_bin") else None
    if (root / "postgres" / "data" / "PG_VERSION").exists():
        bins = bins or postgres_bin_dir()
        if _pg_running(root, bins):
            _run([str(bins / "pg_ctl"), "-D", str(root / "postgres" / "data"), "-m", "fast", "-w", "-t", "60",
                  "stop"], "stopping PostgreSQL")
            stopped.append(f"PostgreSQL on 127.0.0.1:{state.get('pg_port')}")
    (root / STATE).unlink(missing_ok=True)
    return stopped


def status(dir: Path | str) -> ServerStatus:
    """What runs from ``dir``: whether the MLflow server answers and PostgreSQL runs."""
    root = Path(dir).resolve()
    state = _state(root)
    pid, uri = state.get("mlflow_pid"), state.get("uri")
    mlflow_up = bool(pid and uri and _group_alive(pid) and _is_our_server(pid, root) and _answers(uri))
    postgres_up = False
    if (root / "postgres" / "data" / "PG_VERSION").exists():
        postgres_up = _pg_running(root, Path(state["pg_bin"]) if state.get("pg_bin") else postgres_bin_dir())
    return ServerStatus(root, uri, mlflow_up, postgres_up, state.get("pg_port"), state.get("pg_version"))
