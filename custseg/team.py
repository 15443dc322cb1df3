"""Team mode: a local PostgreSQL and an MLflow tracking server on it, in place of the embedded
defaults (a SQLite store in the state folder, Optuna studies in memory), so that several
processes, people or machines share one MLflow store (runs, registry, champions) and one Optuna
storage.

`up` starts both (the first time: a new cluster with the databases `mlflow` and `optuna`),
`down` stops both and keeps the data, `status` says what runs. One folder holds everything
(default: team/ in the state folder): team.json (ports, password), postgres/ (the cluster),
socket/ (its unix socket), artifacts/ (the MLflow server's artifact root, unless given) and
the two logs. PostgreSQL refuses to run as root: as root, its programs run as the `postgres`
system user (runuser), which then owns postgres/, socket/ and postgres.log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from glob import glob
from pathlib import Path

from core import catalog
from core.errors import CustsegError

USER = "custseg"  # the cluster's superuser, who owns both databases
TRACKING_DB, STUDY_DB = "mlflow", "optuna"
STATE = "team.json"
HOST = "127.0.0.1"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian's layout (/usr/bin has wrappers, no initdb)
SERVER_USER = "postgres"  # who runs PostgreSQL when this process is root
SOCKET_PATH_MAX = 100  # a unix socket path longer than ~107 bytes cannot be bound


class TeamError(CustsegError):
    """Team mode cannot start or stop: not installed, a port taken, a server that failed."""


@dataclass
class Team:
    """What `up` started, as written to team.json."""

    dir: str
    pg_port: int
    mlflow_port: int
    password: str
    artifacts: str
    pg_version: str = ""
    mlflow_pid: int = 0

    @property
    def tracking_uri(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    def database_uri(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}:{self.password}@{HOST}:{self.pg_port}/{database}"

    @property
    def study_storage(self) -> str:
        return self.database_uri(STUDY_DB)


@dataclass
class Status:
    team: Team | None  # None: never started in this folder
    postgres: bool
    mlflow: bool

    @property
    def up(self) -> bool:
        return self.postgres and self.mlflow


def default_dir() -> Path:
    return catalog.team_dir()


def up(
    folder: Path | None = None,
    artifacts: Path | None = None,
    pg_port: int | None = None,
    mlflow_port: int | None = None,
    workers: int = 2,
    timeout: float = 120,
) -> Team:
    """Start PostgreSQL and the MLflow server of `folder` (what already runs is left running).
    Ports: the ones given, else the last ones if still free, else free ones."""
    folder = (folder or default_dir()).resolve()
    binaries = pg_bin()
    folder.mkdir(parents=True, exist_ok=True)
    team = _load(folder)
    if artifacts is not None:
        artifacts = artifacts.resolve()
    if team is None:
        team = Team(
            dir=str(folder),
            pg_port=0,
            mlflow_port=0,
            password=secrets.token_urlsafe(18),
            artifacts=str(artifacts or folder / "artifacts"),
        )
    elif artifacts is not None and str(artifacts) != team.artifacts:
        if _mlflow_alive(team):
            raise TeamError(
                f"the MLflow server of {folder} already runs with artifacts in {team.artifacts}: "
                "`custseg team down` first"
            )
        team.artifacts = str(artifacts)
    version = subprocess.run([binaries / "postgres", "--version"], capture_output=True, text=True)
    found = re.search(r"PostgreSQL\) (\d[\d.]*)", version.stdout)  # postgres (PostgreSQL) 15.18
    team.pg_version = found[1] if found else "?"
    _choose_ports(team, pg_port, mlflow_port)  # a taken port fails before anything starts
    _start_postgres(team, timeout)
    _save(team)
    _start_mlflow(team, workers, timeout)
    _save(team)
    return team


def _choose_ports(team: Team, pg_port: int | None, mlflow_port: int | None) -> None:
    """Ports of the servers that do not run yet; a server that runs keeps its own (asked to
    move, a TeamError)."""
    for name, alive, asked, option, attr in (
        ("PostgreSQL", _postgres_alive(team), pg_port, "--pg-port", "pg_port"),
        ("the MLflow server", _mlflow_alive(team), mlflow_port, "--mlflow-port", "mlflow_port"),
    ):
        current = getattr(team, attr)
        if alive and asked and asked != current:
            raise TeamError(
                f"{name} of {team.dir} already runs on port {current}: `custseg team down` "
                "first to move it"
            )
        if not alive:
            taken = {team.pg_port} if attr == "mlflow_port" else set()
            setattr(team, attr, _port(asked, current, option, taken))


def down(folder: Path | None = None) -> Status:
    """Stop the MLflow server, then PostgreSQL; the data stays for the next `up`."""
    folder = (folder or default_dir()).resolve()
    team = _load(folder)
    if team is None:
        return Status(None, False, False)
    if _mlflow_alive(team):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(team.mlflow_pid, signal.SIGTERM)
        if not _wait(lambda: not _mlflow_alive(team), 20):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(team.mlflow_pid, signal.SIGKILL)
    team.mlflow_pid = 0
    _save(team)
    if _postgres_alive(team):
        _pg(team, "pg_ctl", "-D", str(_data(team)), "-m", "fast", "-w", "-t", "60", "stop")
    return status(folder)


def status(folder: Path | None = None) -> Status:
    folder = (folder or default_dir()).resolve()
    team = _load(folder)
    if team is None:
        return Status(None, False, False)
    return Status(team, _postgres_alive(team), _mlflow_alive(team))


# --- PostgreSQL ----------------------------------------------------------------------------


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin/ (Debian: /usr/lib/postgresql/<version>/bin), else
    the folder of an `initdb` on PATH; a TeamError when there is none."""
    found = sorted(
        (Path(p) for p in glob(PG_BIN_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    if found:
        return found[-1]
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise TeamError(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): "
        "`apt-get install postgresql` (make install does it)"
    )


def _data(team: Team) -> Path:
    return Path(team.dir) / "postgres"


def _socket_dir(team: Team) -> Path:
    return Path(team.dir) / "socket"


def _pg_log(team: Team) -> Path:
    return Path(team.dir) / "postgres.log"


def _as_server_user() -> bool:
    return os.geteuid() == 0


def _pg(team: Team, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """A PostgreSQL program of this cluster's installation, as the user that runs the server."""
    cmd = [str(pg_bin() / program), *args]
    if _as_server_user():
        cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=team.dir)
    if check and proc.returncode != 0:
        why = _last_line(proc.stderr or proc.stdout) or f"exit code {proc.returncode}"
        raise TeamError(f"PostgreSQL {program}: {why} (log: {_pg_log(team)})")
    return proc


def _owned_by_server(team: Team, *paths: Path) -> None:
    """As root: PostgreSQL's folders and log belong to the postgres user, who must also be able
    to reach them (every parent folder open to others)."""
    if not _as_server_user():
        return
    try:
        import pwd

        server = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise TeamError(
            f"running as root, PostgreSQL needs the `{SERVER_USER}` system user, which Debian's "
            "postgresql package creates: `apt-get install postgresql`"
        ) from None
    for p in paths:
        os.chown(p, server.pw_uid, server.pw_gid)
    reach = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", str(paths[0])])
    if reach.returncode != 0:
        raise TeamError(
            f"{paths[0]}: the `{SERVER_USER}` user cannot reach it (a parent folder is closed to "
            "other users); pass --dir with a folder it can reach"
        )


def _start_postgres(team: Team, timeout: float) -> None:
    data, sockets, log = _data(team), _socket_dir(team), _pg_log(team)
    if _postgres_alive(team):
        _create_databases(team)
        return
    if len(str(sockets / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
        raise TeamError(f"{sockets}: too long a path for a unix socket; pass a shorter --dir")
    for d in (data, sockets):
        d.mkdir(mode=0o700, exist_ok=True)
    log.touch()
    _owned_by_server(team, data, sockets, log)
    if not (data / "PG_VERSION").exists():
        _initdb(team, data)
    options = (
        f"-p {team.pg_port} -k {shlex.quote(str(sockets))} -c listen_addresses={HOST}"
        " -c max_connections=200"
    )
    logged = log.stat().st_size  # the log of earlier starts is not this start's reason
    start = _pg(
        team,
        "pg_ctl",
        "-D",
        str(data),
        "-l",
        str(log),
        "-o",
        options,
        "-w",
        "-t",
        str(int(timeout)),
        "start",
        check=False,
    )
    if start.returncode != 0:
        raise TeamError(
            f"PostgreSQL did not start on port {team.pg_port}: "
            f"{_reason(log, logged) or _last_line(start.stderr)} (log: {log})"
        )
    _create_databases(team)


def _initdb(team: Team, data: Path) -> None:
    """A new cluster: superuser `custseg` with the team's password over TCP, trust over the
    unix socket (its folder is the server user's alone)."""
    pwfile = Path(team.dir) / ".pwfile"
    pwfile.write_text(team.password + "\n")
    pwfile.chmod(0o600)
    try:
        _owned_by_server(team, pwfile)
        _pg(
            team,
            "initdb",
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _create_databases(team: Team) -> None:
    where = ["-h", str(_socket_dir(team)), "-p", str(team.pg_port), "-U", USER]
    listed = _pg(team, "psql", *where, "-d", "postgres", "-Atc", "SELECT datname FROM pg_database")
    present = set(listed.stdout.split())
    for db in (TRACKING_DB, STUDY_DB):
        if db not in present:
            _pg(team, "createdb", *where, db)


def _postgres_alive(team: Team) -> bool:
    if not (_data(team) / "postmaster.pid").exists():
        return False
    return _pg(team, "pg_ctl", "-D", str(_data(team)), "status", check=False).returncode == 0


# --- MLflow --------------------------------------------------------------------------------


def _mlflow_log(team: Team) -> Path:
    return Path(team.dir) / "mlflow.log"


def _start_mlflow(team: Team, workers: int, timeout: float) -> None:
    """`mlflow server` on the `mlflow` database, serving artifacts from team.artifacts, in its
    own session (it outlives this process); returns once /health answers."""
    if _mlflow_alive(team):
        return
    Path(team.artifacts).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        # in the environment, not the command line: `ps` would show the password
        "MLFLOW_BACKEND_STORE_URI": team.database_uri(TRACKING_DB),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no GenAI job runner (see `custseg ui`)
    }
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        HOST,
        "--port",
        str(team.mlflow_port),
        "--workers",
        str(workers),
        "--artifacts-destination",
        team.artifacts,
    ]
    log = _mlflow_log(team)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=team.dir,
            start_new_session=True,
        )
    team.mlflow_pid = proc.pid
    health = f"{team.tracking_uri}/health"
    deadline = time.monotonic() + timeout
    while not _answers(health):
        if proc.poll() is not None:
            team.mlflow_pid = 0
            raise TeamError(f"the MLflow server exited: {_reason(log)} (log: {log})")
        if time.monotonic() > deadline:
            raise TeamError(f"the MLflow server did not answer in {timeout:.0f} s (log: {log})")
        time.sleep(0.5)


def _mlflow_alive(team: Team) -> bool:
    """The recorded server process still exists and is an MLflow server (not a reused pid)."""
    if not team.mlflow_pid:
        return False
    try:
        cmdline = Path(f"/proc/{team.mlflow_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mlflow" in cmdline and b"server" in cmdline


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# --- helpers ---------------------------------------------------------------------------------


def _port(asked: int | None, last: int, option: str, taken: set[int]) -> int:
    """The port asked for (a TeamError when taken), else the last one if free, else a free one;
    never one of `taken` (the other server's)."""
    if asked:
        if asked in taken or not _free(asked):
            raise TeamError(f"port {asked} is in use: pick another {option}, or leave it out")
        return asked
    if last and last not in taken and _free(last):
        return last
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _wait(done, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _reason(log: Path, offset: int = 0) -> str:
    """The first error a server logged after `offset` (a traceback's last line; else its last
    line)."""
    with open(log, errors="replace") as f:
        f.seek(offset)
        lines = [x.strip() for x in f.read().splitlines() if x.strip()]
    if any(x.startswith("Traceback") for x in lines):
        return lines[-1]
    for marker in ("FATAL", "ERROR", "Error", "could not"):
        if hit := next((x for x in lines if marker in x), None):
            return hit
    return lines[-1] if lines else ""


def _last_line(text: str) -> str:
    lines = [x.strip() for x in (text or "").splitlines() if x.strip()]
    return lines[-1] if lines else ""


def _load(folder: Path) -> Team | None:
    path = folder / STATE
    if not path.exists():
        return None
    try:
        return Team(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise TeamError(f"{path}: unreadable ({exc}); remove the folder to start anew") from None


def _save(team: Team) -> None:
    path = Path(team.dir) / STATE
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(team), indent=2) + "\n")
