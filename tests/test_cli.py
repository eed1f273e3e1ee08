"""The README's serve command as a user runs it: a subprocess on the embedded PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_grpc import Client, Document

from tests.processes import Served, health


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "pgdata"


def test_serve_health_restart_and_sigterm(data_dir: Path) -> None:
    served = Served("--data-dir", str(data_dir))
    try:
        assert health(served.address).stdout.strip() == "SERVING"
        with Client(served.address) as c:
            c.create_collection("cli", 3)
            c.ingest("cli", [Document("a", "persisted", {"n": 1}, [1, 2, 3])])
            assert [h.id for h in c.search("cli", [1, 2, 3], top_k=1)] == ["a"]
    finally:
        assert served.stop() == 0
    assert health(served.address).returncode == 1

    again = Served("--data-dir", str(data_dir))
    try:
        with Client(again.address) as c:
            assert c.get("cli", ["a"])[0].content == "persisted"
    finally:
        assert again.stop() == 0
