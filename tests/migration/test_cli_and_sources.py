"""`pgvector-grpc migrate` as an operator runs it, and a running Chroma server (`chroma run`) as the source."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_grpc import Client
from pgvector_grpc_common.migration.events import Report

from tests.cli.run import error_line
from tests.fix_server import ServerThread
from tests.migration.chroma_stores import Written, write_store
from tests.processes import free_port

STORE = {"cli-one": ("cosine", 8, 600), "cli-two": ("l2", 4, 250)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Written]]:
    path = tmp_path_factory.mktemp("chroma") / "store"
    return path, write_store(path, STORE, seed=9)


def migrate_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "pgvector-grpc"), "migrate", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_all_collections_with_progress_and_report(server: ServerThread, store: tuple[Path, dict[str, Written]]) -> None:
    path, _ = store
    dry = migrate_cli("--from-chroma", str(path), "--all", "--server", server.address, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "cli-one: 600 documents, dimension 8, metric cosine" in dry.stdout
    assert "cli-two: 250 documents, dimension 4, metric l2" in dry.stdout
    assert dry.stdout.count("will be created") == 2
    dry_json = migrate_cli("--from-chroma", str(path), "--all", "--server", server.address, "--dry-run", "--json")
    assert dry_json.returncode == 0, dry_json.stderr
    records = {r["collection"]: r for r in map(json.loads, dry_json.stdout.splitlines())}
    assert set(records) == {"cli-one", "cli-two"}
    one = records["cli-one"]
    assert one["report"] is None and one["error"] is None
    assert {k: one["source"][k] for k in ("count", "dimension", "metric", "target", "target_exists")} == {
        "count": 600,
        "dimension": 8,
        "metric": "cosine",
        "target": "cli-one",
        "target_exists": False,
    }
    assert one["source"]["index"]["type"] == "hnsw" and records["cli-two"]["source"]["metric"] == "l2"
    with Client(server.address) as client:
        assert {c.name for c in client.list_collections()}.isdisjoint({"cli-one", "cli-two"})

    done = migrate_cli("--from-chroma", str(path), "--all", "--server", server.address, "--batch-size", "100")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("verification: OK") == 2
    assert "cli-one writing" in done.stderr and "cli-two done" in done.stderr  # progress lines on stderr
    with Client(server.address) as client:
        assert client.count("cli-one") == 600 and client.count("cli-two") == 250


def test_exit_status_is_1_when_verification_fails(server: ServerThread, store: tuple[Path, dict[str, Written]]) -> None:
    path, written = store
    first = migrate_cli(
        "--from-chroma", str(path), "--collection", "cli-two", "--to", "cli_bad", "--server", server.address
    )
    assert first.returncode == 0, first.stderr
    with Client(server.address) as client:
        client.delete("cli_bad", [written["cli-two"].ids[7]])
    again = migrate_cli(
        "--from-chroma", str(path), "--collection", "cli-two", "--to", "cli_bad", "--server", server.address, "--resume"
    )
    assert again.returncode == 1
    assert "verification: FAILED" in again.stdout and repr(written["cli-two"].ids[7]) in again.stdout
    as_json = migrate_cli(
        "--from-chroma", str(path), "--collection", "cli-two", "--to", "cli_bad", "--server", server.address, "--json"
    )
    assert as_json.returncode == 1
    [record] = [json.loads(line) for line in as_json.stdout.splitlines()]
    report = record["report"]
    assert report["ok"] is False and report["missing_ids"] == [written["cli-two"].ids[7]]
    assert report["missing_count"] == 1
    assert report["source_count"] == 250 and report["target_count"] == 249 and record["error"] is None


def test_client_side_cli_and_a_clear_error_for_a_bad_source(
    server: ServerThread, store: tuple[Path, dict[str, Written]], tmp_path: Path
) -> None:
    path, _ = store
    local = migrate_cli(
        "--from-chroma",
        str(path),
        "--collection",
        "cli-one",
        "--to",
        "cli_local",
        "--server",
        server.address,
        "--client-side",
    )
    assert local.returncode == 0, local.stderr
    assert "verification: OK" in local.stdout
    legacy = Path(__file__).resolve().parent.parent / "data" / "chroma" / "0.3.29"
    failed = migrate_cli("--from-chroma", str(legacy), "--collection", "articles", "--server", server.address)
    assert failed.returncode == 2
    assert error_line(failed).startswith("pgvector-grpc: FAILED_PRECONDITION: articles: ")
    assert "chroma-migrate" in error_line(failed)
    here = migrate_cli(
        "--from-chroma", str(legacy), "--collection", "articles", "--server", server.address, "--client-side"
    )
    assert here.returncode == 2  # found on this side: the reason stands where a server's status code would
    assert error_line(here).startswith("pgvector-grpc: CHROMA_LEGACY_FORMAT: articles: ")
    listing = migrate_cli("--from-chroma", str(tmp_path / "nothing"), "--all", "--server", server.address)
    assert listing.returncode == 2
    assert (
        error_line(listing)
        == f"pgvector-grpc: CHROMA_SOURCE_NOT_FOUND: Chroma directory {tmp_path / 'nothing'} does not exist"
    )
    unnamed = migrate_cli("--from-chroma", str(path), "--server", server.address)
    assert unnamed.returncode == 2
    assert error_line(unnamed) == "pgvector-grpc: USAGE: --from-chroma needs --collection NAME (repeatable) or --all"


def test_a_relative_path_is_resolved_where_the_command_runs(
    server: ServerThread, store: tuple[Path, dict[str, Written]]
) -> None:
    path, _ = store
    here = path.parent
    dry = migrate_cli(
        "--from-chroma", f"./{path.name}", "--collection", "cli-two", "--server", server.address, "--dry-run", cwd=here
    )
    assert dry.returncode == 0, dry.stderr
    assert "cli-two: 250 documents" in dry.stdout
    missing = migrate_cli(
        "--from-chroma", "./not-a-store", "--collection", "cli-two", "--server", server.address, "--dry-run", cwd=here
    )
    assert missing.returncode == 2
    assert error_line(missing) == (
        f"pgvector-grpc: NOT_FOUND: cli-two: Chroma directory {here / 'not-a-store'} does not exist on the server"
    )
    as_json = migrate_cli(
        "--from-chroma", "./not-a-store", "--collection", "cli-two", "--server", server.address, "--json", cwd=here
    )
    assert as_json.returncode == 2 and error_line(as_json) == error_line(missing)
    [record] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["error"] == {
        "code": "NOT_FOUND",
        "reason": "CHROMA_SOURCE_NOT_FOUND",
        "message": f"NOT_FOUND: Chroma directory {here / 'not-a-store'} does not exist on the server",
    }


@pytest.fixture(scope="module")
def chroma_server(store: tuple[Path, dict[str, Written]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chroma run` on a copy of the store, on loopback."""
    copy = tmp_path_factory.mktemp("served") / "store"
    shutil.copytree(store[0], copy)
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chroma"),
            "run",
            "--path",
            str(copy),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                break
        except OSError:
            assert process.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma run did not start"
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_a_running_chroma_server_is_a_source(database: str, chroma_server: str) -> None:
    allowing = ServerThread(database, migrate_allow_hosts=(chroma_server.removeprefix("http://"),))
    try:
        with Client(allowing.address, timeout=60) as client:
            events = list(
                client.migrate(chroma_server, "cli-one", target="from_http", headers={"x-request-id": "test"})
            )
            report = events[-1]
            assert isinstance(report, Report) and report.ok, report
            assert report.source_count == 600 and client.count("from_http") == 600
    finally:
        allowing.stop()
    local = migrate_cli(
        "--from-chroma", chroma_server, "--all", "--client-side", "--to", "", "--server", "unused:1", "--dry-run"
    )
    assert local.returncode == 2  # the server address is unreachable: a clear failure, not a hang
