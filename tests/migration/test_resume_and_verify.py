"""Resuming an interrupted migration (cut stream, killed server, client side) and catching a tampered target."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pgvector_grpc import AsyncClient, Client, Document
from pgvector_grpc.cli.client_target import migrate_locally
from pgvector_grpc_common.migration.events import Progress, Report
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation

from tests.fix_server import ServerThread
from tests.migration.chroma_stores import Written, write_store
from tests.processes import Served

STORE = {"resumable": ("cosine", 12, 3000), "tamper-me": ("l2", 6, 800), "local-side": ("ip", 5, 1200)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Written]]:
    path = tmp_path_factory.mktemp("chroma") / "store"
    return path, write_store(path, STORE, seed=5)


def key(path: Path, collection: str) -> str:
    return ChromaLocation(path=str(path)).key(collection)


def settled(client: Client, target: str, checkpoint_key: str) -> tuple[int, int]:
    """(documents, checkpointed offset) once an interrupted migration has stopped writing."""
    last = (-1, -1)
    while True:
        saved = client.get_checkpoint(target, checkpoint_key)
        now = (client.count(target), json.loads(saved)["offset"] if saved else 0)
        if now == last:
            return now
        last = now
        time.sleep(0.5)


def finish(client: Client, path: Path, collection: str, target: str, **options: Any) -> tuple[int, Report]:
    """Re-run the same migration; (resumed_from of its first progress, its report)."""
    events = list(client.migrate(str(path), collection, target=target, **options))
    first = next(e for e in events if isinstance(e, Progress))
    report = events[-1]
    assert isinstance(report, Report)
    return first.resumed_from, report


def test_a_cut_stream_resumes_after_the_last_committed_page(
    client: Client, store: tuple[Path, dict[str, Written]]
) -> None:
    path, written = store
    events = client.migrate(str(path), "resumable", target="resumed", batch_size=100)
    for event in events:
        if isinstance(event, Progress) and event.phase == "writing" and event.done >= 700:
            break
    events.close()  # cancels the RPC mid-copy

    count, offset = settled(client, "resumed", key(path, "resumable"))
    assert 700 <= count < 3000
    assert count == offset, "the checkpoint is committed with its page: never ahead of or behind the data"

    resumed_from, report = finish(client, path, "resumable", "resumed", batch_size=100)
    assert resumed_from == offset
    assert report.ok, report
    assert client.count("resumed") == len(written["resumable"].ids)


def test_restart_copies_everything_again(client: Client, store: tuple[Path, dict[str, Written]]) -> None:
    path, _ = store
    finish(client, path, "local-side", "restarted")
    resumed_from, report = finish(client, path, "local-side", "restarted", restart=True)
    assert resumed_from == 0 and report.ok


def test_verification_catches_a_deleted_and_an_altered_row(
    client: Client, store: tuple[Path, dict[str, Written]]
) -> None:
    path, written = store
    ids = written["tamper-me"].ids
    _, report = finish(client, path, "tamper-me", "tampered")
    assert report.ok

    client.delete("tampered", [ids[10]])
    altered = client.get("tampered", [ids[20]], include_embedding=True)[0]
    client.ingest("tampered", [Document(altered.id, altered.content, {**altered.metadata, "n": -1}, altered.embedding)])

    resumed_from, report = finish(client, path, "tamper-me", "tampered", verify_sample_size=1000)
    assert resumed_from == len(ids), "a finished migration re-runs only its verification"
    assert not report.ok
    assert report.missing_ids == [ids[10]] and report.missing_count == 1
    assert report.target_count == len(ids) - 1
    assert any(ids[20] in m and "metadata" in m for m in report.mismatches), report.mismatches
    assert report.differing_count == 1, "the count of differing documents crosses the wire"


async def test_the_client_side_path_reads_chroma_here_and_resumes(
    server: ServerThread, store: tuple[Path, dict[str, Written]]
) -> None:
    path, written = store
    location = ChromaLocation(path=str(path))
    options = MigrationOptions(target="client_side", batch_size=100)
    async with AsyncClient(server.address) as client:
        async for event in migrate_locally(client, location, "local-side", options):
            if isinstance(event, Progress) and event.phase == "writing" and event.done >= 300:
                break  # the client stops mid-way
        events = [e async for e in migrate_locally(client, location, "local-side", options)]
        first = next(e for e in events if isinstance(e, Progress))
        assert first.resumed_from >= 300
        report = events[-1]
        assert isinstance(report, Report) and report.ok, report
        assert await client.count("client_side") == len(written["local-side"].ids)
        stored = (await client.get("client_side", [written["local-side"].ids[3]], include_embedding=True))[0]
        assert stored.metadata == written["local-side"].metadatas[3]
        assert (stored.embedding == written["local-side"].embeddings[3]).all()


def test_killing_the_server_mid_migration_loses_nothing(database: str, store: tuple[Path, dict[str, Written]]) -> None:
    path, written = store
    served = Served("--admin-database-url", database, "--no-reflection", "--migrate-root", str(path.parent))
    try:
        with Client(served.address) as client:
            for event in client.migrate(str(path), "resumable", target="killed", batch_size=100):
                if isinstance(event, Progress) and event.phase == "writing" and event.done >= 500:
                    served.kill()
                    break
    finally:
        served.process.kill()
    again = Served("--admin-database-url", database, "--no-reflection", "--migrate-root", str(path.parent))
    try:
        with Client(again.address) as client:
            count, offset = settled(client, "killed", key(path, "resumable"))
            assert count == offset >= 500
            resumed_from, report = finish(client, path, "resumable", "killed", batch_size=100)
            assert resumed_from == offset and report.ok, report
            assert client.count("killed") == len(written["resumable"].ids)
    finally:
        assert again.stop() == 0
