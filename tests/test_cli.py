"""The README's serve command as a user runs it: a subprocess on the embedded PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_grpc import Client, Document


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgvector_grpc_server", "health", "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
    )


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "pgvector-grpc"),
                "serve",
                "--listen",
                self.address,
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while health(self.address).returncode != 0:
            assert self.process.poll() is None, self.process.stdout.read() if self.process.stdout else ""
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.3)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "pgdata"


def test_serve_health_restart_and_sigterm(data_dir: Path) -> None:
    served = Served(data_dir)
    try:
        assert health(served.address).stdout.strip() == "SERVING"
        with Client(served.address) as c:
            c.create_collection("cli", 3)
            c.ingest("cli", [Document("a", "persisted", {"n": 1}, [1, 2, 3])])
            assert [h.id for h in c.search("cli", [1, 2, 3], top_k=1)] == ["a"]
    finally:
        assert served.stop() == 0
    assert health(served.address).returncode == 1

    again = Served(data_dir)
    try:
        with Client(again.address) as c:
            assert c.get("cli", ["a"])[0].content == "persisted"
    finally:
        assert again.stop() == 0
