"""The embedded PostgreSQL is supervised: restarted when its postmaster dies, never left behind by a
killed server or an interrupted test session, adopted when an older owner left it running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from pgvector_grpc import Client, Document
from pgvector_grpc_server.embedded import DataDirectoryInUse, EmbeddedPostgres, Postmaster

from tests.fix_pg import PgCluster
from tests.processes import Served

REPO = Path(__file__).resolve().parents[2]


def eventually(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except Exception:
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Every live postgres process (postmaster and children) of this data directory: they all run in it."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if (
                process.info["name"] == "postgres"
                and process.status() != psutil.STATUS_ZOMBIE
                and Path(process.cwd()) == data_dir.resolve()
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def postmaster(data_dir: Path) -> Postmaster:
    found = Postmaster.read(data_dir)
    assert found is not None and found.alive()
    return found


def test_a_killed_postmaster_is_restarted_and_calls_succeed_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    served = Served("--data-dir", str(data_dir))
    try:
        with Client(served.address, retries=0, timeout=5) as c:
            c.create_collection("kept", 2)
            c.ingest("kept", [Document("a", None, {}, [1, 2])])
            killed = postmaster(data_dir).pid
            os.kill(killed, signal.SIGKILL)
            eventually(lambda: postmaster(data_dir).pid != killed, seconds=60)
            eventually(lambda: c.count("kept") == 1, seconds=30)
    finally:
        assert served.stop() == 0
    assert "restart attempt 1" in served.output()
    assert postgres_processes(data_dir) == []


def kill_with_its_watchdog(served: Served) -> None:
    """SIGKILL to the server and its watchdog, as an OOM killer or `kill -9` of the process tree would."""
    for child in psutil.Process(served.process.pid).children():
        if "pgvector_grpc_server.embedded" in child.cmdline():
            child.kill()
    served.kill()


def test_killed_servers_leave_no_postgres_behind_or_one_the_next_server_adopts(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    served = Served("--data-dir", str(data_dir))
    with Client(served.address) as c:
        c.create_collection("kept", 2)
        c.ingest("kept", [Document("a", "durable", {}, [1, 2])])
    served.kill()
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)  # its watchdog stopped PostgreSQL

    again = Served("--data-dir", str(data_dir))
    with Client(again.address) as c:
        assert c.get("kept", ["a"])[0].content == "durable"
    kill_with_its_watchdog(again)
    orphan = postmaster(data_dir).pid
    # The wheel's bookkeeping of its users (stale PIDs once they are killed) does not matter.
    (data_dir / ".handle_pids.json").write_text(json.dumps([again.process.pid]))

    adopting = Served("--data-dir", str(data_dir))
    try:
        assert postmaster(data_dir).pid == orphan  # adopted, not restarted
        with Client(adopting.address) as c:
            assert c.get("kept", ["a"])[0].content == "durable"
    finally:
        assert adopting.stop() == 0
    assert postgres_processes(data_dir) == []


def test_a_data_directory_has_one_owner_at_a_time(pg_cluster: PgCluster) -> None:
    if pg_cluster.embedded is None:
        pytest.skip("DATABASE_URL is set: no embedded PostgreSQL")
    running = postmaster(pg_cluster.embedded.data_dir).pid
    second = EmbeddedPostgres(pg_cluster.embedded.data_dir)
    with pytest.raises(DataDirectoryInUse):
        second.start()
    second.stop()  # not the owner: a no-op
    assert postmaster(pg_cluster.embedded.data_dir).pid == running


NESTED_SESSION = """
import os
import time
from pathlib import Path


def test_holds_the_session_postgres(pg_cluster):
    Path(os.environ["NESTED_READY_FILE"]).write_text(str(pg_cluster.embedded.data_dir))
    time.sleep(600)
"""


def test_an_interrupted_test_session_leaves_no_postgres(tmp_path: Path) -> None:
    (tmp_path / "test_nested.py").write_text(NESTED_SESSION)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    ready = tmp_path / "ready"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_ADDOPTS")}
    nested = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path / "test_nested.py"),
            "-c",
            str(tmp_path / "pytest.ini"),
            "-p",
            "tests.fix_pg",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'nested'}",
        ],
        cwd=REPO,
        env={**env, "NESTED_READY_FILE": str(ready)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        eventually(ready.exists, seconds=60)
        data_dir = Path(ready.read_text())
        assert postgres_processes(data_dir) != []
    finally:
        nested.kill()
        nested.wait(timeout=30)
    eventually(lambda: postgres_processes(data_dir) == [], seconds=15)
