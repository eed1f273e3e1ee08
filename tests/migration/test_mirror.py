"""Deletions in the source after a migration: reported as extra ids, and deleted with mirror
(over the Migrate RPC, the CLI, and the client-side path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings
from pgvector_grpc import Client, Document
from pgvector_grpc_common.migration.events import Progress, Report
from pgvector_grpc_common.migration.sources.chroma import release_client

from tests.fix_server import ServerThread
from tests.migration.chroma_stores import Written, write_store

COUNT = 500


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Written]:
    """A Chroma store of its own for each test: the tests delete from it."""
    path = tmp_path_factory.mktemp("chroma") / "store"
    return path, write_store(path, {"shrinking": ("cosine", 8, COUNT)}, seed=3)["shrinking"]


def delete_in_chroma(path: Path, ids: list[str]) -> None:
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    try:
        client.get_collection("shrinking").delete(ids=ids)
    finally:
        release_client(client)


def scattered(written: Written) -> list[str]:
    """Ids spread over the whole id order, several in one page of 50 and none in others."""
    return sorted(written.ids)[3::60] + sorted(written.ids)[4:7]


def report_of(events: list[object]) -> Report:
    report = events[-1]
    assert isinstance(report, Report)
    return report


def test_the_rpc_reports_extra_ids_and_deletes_them_with_mirror(client: Client, store: tuple[Path, Written]) -> None:
    path, written = store
    assert report_of(list(client.migrate(str(path), "shrinking", target="mirrored"))).ok
    gone = scattered(written)
    delete_in_chroma(path, gone)
    client.ingest("mirrored", [Document("written-elsewhere", "not from Chroma", {}, [0.5] * 8)])
    extra = sorted([*gone, "written-elsewhere"])

    kept = report_of(list(client.migrate(str(path), "shrinking", target="mirrored", restart=True, batch_size=50)))
    assert not kept.ok
    assert (kept.source_count, kept.target_count) == (COUNT - len(gone), COUNT + 1)
    assert kept.missing_count == 0 and kept.differing_count == 0
    assert kept.extra_count == len(extra) and sorted(kept.extra_ids) == extra
    assert kept.deleted_count == 0
    assert client.count("mirrored") == COUNT + 1, "without mirror nothing is deleted"

    events = list(client.migrate(str(path), "shrinking", target="mirrored", mirror=True, batch_size=50))
    mirrored = report_of(events)
    assert mirrored.ok, mirrored
    assert mirrored.deleted_count == len(extra)
    assert mirrored.source_count == mirrored.target_count == COUNT - len(gone)
    assert (mirrored.extra_count, mirrored.extra_ids) == (0, [])
    assert client.get("mirrored", extra) == []
    listed = [doc.id for doc in client.list("mirrored", page_size=1000, include_content=False, include_metadata=False)]
    assert sorted(listed) == sorted(set(written.ids) - set(gone))
    checked = [e for e in events if isinstance(e, Progress) and e.phase == "mirroring"]
    assert checked[0].done == 0 and checked[-1].done == checked[-1].total == COUNT + 1

    again = report_of(list(client.migrate(str(path), "shrinking", target="mirrored", mirror=True)))
    assert again.ok and again.deleted_count == 0, "a mirrored target has nothing left to delete"


def migrate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "pgvector-grpc"), "migrate", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("side", ["server", "client"])
def test_the_cli_says_how_to_reconcile_and_mirror_exits_0(
    server: ServerThread, store: tuple[Path, Written], side: str
) -> None:
    path, written = store
    target = f"cli_mirror_{side}"
    common = ["--from-chroma", str(path), "--collection", "shrinking", "--to", target, "--server", server.address]
    if side == "client":
        common.append("--client-side")
    first = migrate_cli(*common)
    assert first.returncode == 0, first.stderr
    gone = sorted(written.ids)[10:15]
    delete_in_chroma(path, gone)

    kept = migrate_cli(*common, "--restart")
    assert kept.returncode == 1, kept.stderr
    assert "verification: FAILED" in kept.stdout
    assert f"5 documents in the target are not in the source (e.g. {gone[0]!r}, {gone[1]!r}, {gone[2]!r}, …)" in (
        kept.stdout
    )
    assert "re-run with --mirror to delete them" in kept.stdout
    with Client(server.address) as client:
        assert client.count(target) == COUNT

    mirrored = migrate_cli(*common, "--mirror", "--batch-size", "100")
    assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    assert "verification: OK" in mirrored.stdout
    assert "deleted 5 target documents that are not in the source (--mirror)" in mirrored.stdout
    assert "not in the source (e.g." not in mirrored.stdout
    assert "shrinking mirroring" in mirrored.stderr
    with Client(server.address) as client:
        assert client.count(target) == COUNT - 5
        assert client.get(target, gone) == []
