"""Migrate reads only what the operator allowed: directories under --migrate-root, Chroma servers
on --migrate-allow-host; it never contacts another host, never echoes what a remote sent, and
copies one directory at a time only when it fits the disk."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from pgvector_grpc import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    PgvectorGrpcError,
    ResourceExhaustedError,
)
from pgvector_grpc.v1 import migration_service_pb2, migration_service_pb2_grpc
from pgvector_grpc_common.migration.events import SourceSummary
from pgvector_grpc_server.settings import Settings

from tests.fix_server import ServerThread
from tests.migration.chroma_stores import write_store
from tests.processes import Served

STORE = {"guarded": ("cosine", 4, 300)}


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a root holding a Chroma store at root/store, a Chroma store outside the root)."""
    base = tmp_path_factory.mktemp("lockdown")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    write_store(outside, STORE, seed=3)
    shutil.copytree(outside, root / "store")
    return root, outside


@pytest.fixture(scope="module")
def fenced(database: str, places: tuple[Path, Path]) -> Iterator[ServerThread]:
    running = ServerThread(database, migrate_roots=(places[0],))
    yield running
    running.stop()


@pytest.fixture
def fenced_client(fenced: ServerThread) -> Iterator[Client]:
    with Client(fenced.address, timeout=60) as client:
        yield client


def dry_run(client: Client, source: str | Path, collection: str = "guarded", **options: Any) -> list[Any]:
    return list(client.migrate(str(source), collection, dry_run=True, **options))


class Listener:
    """A TCP port on loopback that never accepts by itself: a connection made to it stays in the
    kernel's backlog, so ``was_contacted`` is exact, not a race with an accepting thread."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]

    def was_contacted(self) -> bool:
        self.socket.setblocking(False)
        try:
            connection, _ = self.socket.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True

    def answer_every_connection(self, response: bytes) -> None:
        """Reply ``response`` to whatever each connection sends, then close it."""

        def serve() -> None:
            while True:
                try:
                    connection, _ = self.socket.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(65536)
                    connection.sendall(response)

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


def test_a_url_off_the_allowlist_is_refused_without_contacting_it(database: str, listener: Listener) -> None:
    elsewhere = Listener()
    allowing_another = ServerThread(database, migrate_allow_hosts=(f"127.0.0.1:{elsewhere.port}",))
    try:
        with Client(allowing_another.address) as client:
            for url in (
                f"http://127.0.0.1:{listener.port}",  # same host, another port
                f"http://localhost:{elsewhere.port}",  # a name for the allowed address: names are not resolved
                f"http://2130706433:{elsewhere.port}",  # 127.0.0.1 as a decimal number
                f"http://127.1:{elsewhere.port}",
            ):
                with pytest.raises(PermissionDeniedError) as refused:
                    dry_run(client, url)
                assert refused.value.reason == "HOST_NOT_ALLOWED", url
        assert not listener.was_contacted()
        assert not elsewhere.was_contacted()
    finally:
        allowing_another.stop()
        elsewhere.close()


def test_without_an_allowlist_no_url_is_fetched(fenced_client: Client, listener: Listener) -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        dry_run(fenced_client, f"http://127.0.0.1:{listener.port}")
    assert refused.value.reason == "HOST_NOT_ALLOWED" and "--client-side" in refused.value.message
    assert not listener.was_contacted()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("file:///etc", "chroma.url"),
        ("ftp://127.0.0.1/", "chroma.url"),
        ("http://user:secret@127.0.0.1:8000", "chroma.url"),
        ("http://127.0.0.1:99999", "chroma.url"),
    ],
)
def test_only_plain_http_and_https_urls(fenced: ServerThread, url: str, field: str) -> None:
    with grpc.insecure_channel(fenced.address) as channel:
        stub = migration_service_pb2_grpc.MigrationServiceStub(channel)
        request = migration_service_pb2.MigrateRequest(
            chroma=migration_service_pb2.ChromaSource(collection="guarded", url=url), dry_run=True
        )
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Migrate(request, timeout=10))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")


def test_a_host_header_cannot_redirect_an_allowed_request(database: str, listener: Listener) -> None:
    allowing = ServerThread(database, migrate_allow_hosts=(f"127.0.0.1:{listener.port}",))
    try:
        with Client(allowing.address) as client, pytest.raises(InvalidArgumentError) as refused:
            dry_run(client, f"http://127.0.0.1:{listener.port}", headers={"Host": "internal.example"})
        assert refused.value.field == "chroma.headers"
        assert not listener.was_contacted()
    finally:
        allowing.stop()


SECRET = "s3cr3t-from-the-remote"
ANSWERS = {
    "an HTTP error": (
        f"HTTP/1.1 500 Internal Server Error\r\nX-Leak: {SECRET}\r\nContent-Type: application/json\r\n"
        f'Content-Length: {len(SECRET) + 12}\r\nConnection: close\r\n\r\n{{"error": "{SECRET}"}}'
    ),
    "not HTTP at all": f"{SECRET} {SECRET}\r\n\r\n",
    "a 200 that is not JSON": (
        f"HTTP/1.1 200 OK\r\nX-Leak: {SECRET}\r\nContent-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n{SECRET}"
    ),
}


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_an_allowed_host_that_answers_garbage_gets_a_generic_error(
    database: str, listener: Listener, answer: str
) -> None:
    listener.answer_every_connection(ANSWERS[answer].encode())
    allowing = ServerThread(database, migrate_allow_hosts=(f"127.0.0.1:{listener.port}",))
    try:
        with Client(allowing.address, timeout=60) as client, pytest.raises(PgvectorGrpcError) as failed:
            dry_run(client, f"http://127.0.0.1:{listener.port}")
    finally:
        allowing.stop()
    assert SECRET not in str(failed.value) and SECRET not in repr(failed.value.metadata)
    assert failed.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)


def test_an_allowed_host_that_never_answers_fails_the_migration_in_time(database: str, listener: Listener) -> None:
    """The connection is made (the kernel accepts it) and the request sent, but no byte comes back:
    the server gives up after --migrate-http-timeout, long before the caller's deadline."""
    allowing = ServerThread(database, migrate_allow_hosts=(f"127.0.0.1:{listener.port}",), migrate_http_timeout=0.5)
    try:
        with Client(allowing.address, timeout=45) as client, pytest.raises(PgvectorGrpcError) as failed:
            dry_run(client, f"http://127.0.0.1:{listener.port}")
    finally:
        allowing.stop()
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE, failed.value
    assert f"127.0.0.1:{listener.port}" in str(failed.value)


def test_a_redirect_to_another_host_is_not_followed(database: str, listener: Listener) -> None:
    target = Listener()
    location = f"http://127.0.0.1:{target.port}/api/v2/heartbeat"
    listener.answer_every_connection(
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    allowing = ServerThread(database, migrate_allow_hosts=(f"127.0.0.1:{listener.port}",))
    try:
        with Client(allowing.address, timeout=60) as client, pytest.raises(PgvectorGrpcError) as failed:
            dry_run(client, f"http://127.0.0.1:{listener.port}")
        assert not target.was_contacted()
        assert location not in str(failed.value)
    finally:
        allowing.stop()
        target.close()


def test_outside_the_roots_existing_and_missing_paths_get_the_same_error(
    fenced_client: Client, places: tuple[Path, Path]
) -> None:
    root, outside = places
    messages = {}
    for path in (outside, outside.parent / "no-such-directory", Path("/etc"), Path("/no/such/place")):
        with pytest.raises(PermissionDeniedError) as refused:
            dry_run(fenced_client, path)
        assert refused.value.reason == "PATH_NOT_ALLOWED"
        messages[path] = refused.value.message.replace(str(path), "<path>")
    assert len(set(messages.values())) == 1, messages
    assert str(root) in next(iter(messages.values())), "the error says where sources may be"


def test_dot_dot_cannot_climb_out_of_a_root(fenced_client: Client, places: tuple[Path, Path]) -> None:
    root, outside = places
    with pytest.raises(PermissionDeniedError) as refused:
        dry_run(fenced_client, f"{root}/store/../../{outside.name}")
    assert refused.value.reason == "PATH_NOT_ALLOWED"
    assert dry_run(fenced_client, f"{root}/store/../store")[0].count == 300, "`..` that stays inside is fine"


def test_a_link_from_a_root_to_outside_is_refused(
    fenced_client: Client, places: tuple[Path, Path], tmp_path: Path
) -> None:
    root, outside = places
    link = root / f"link-{tmp_path.name}"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(PermissionDeniedError) as refused:
            dry_run(fenced_client, link)
        assert refused.value.reason == "PATH_NOT_ALLOWED"
    finally:
        link.unlink()


def test_a_link_inside_the_store_to_outside_is_refused_before_copying(
    fenced_client: Client, places: tuple[Path, Path]
) -> None:
    root, outside = places
    store = root / "store-with-escape"
    shutil.copytree(root / "store", store)
    secret = outside.parent / "secret.bin"
    secret.write_bytes(b"never copied")
    (store / "extra").symlink_to(secret)
    try:
        with pytest.raises(PermissionDeniedError) as refused:
            dry_run(fenced_client, store)
        assert refused.value.reason == "SYMLINK_OUTSIDE_ROOTS"
        assert str(store / "extra") in refused.value.message and str(secret) not in refused.value.message
    finally:
        shutil.rmtree(store)


def test_links_that_stay_inside_a_root_are_followed(fenced_client: Client, places: tuple[Path, Path]) -> None:
    root, _ = places
    store = root / "store-with-inner-link"
    store.mkdir()
    shutil.copy(root / "store" / "chroma.sqlite3", root / "inner.sqlite3")
    (store / "chroma.sqlite3").symlink_to(root / "inner.sqlite3")
    for segment in (root / "store").iterdir():
        if segment.is_dir():
            (store / segment.name).symlink_to(segment, target_is_directory=True)
    alias = root / "alias"
    alias.symlink_to(store, target_is_directory=True)
    before = (root / "inner.sqlite3").read_bytes()
    try:
        summary = dry_run(fenced_client, alias)[0]
        assert isinstance(summary, SourceSummary) and summary.count == 300
        assert (root / "inner.sqlite3").read_bytes() == before, "the linked file is copied, never opened by Chroma"
    finally:
        alias.unlink()
        shutil.rmtree(store)
        (root / "inner.sqlite3").unlink()


def test_a_missing_directory_inside_a_root_is_named_as_the_server_resolved_it(
    fenced_client: Client, places: tuple[Path, Path]
) -> None:
    root, _ = places
    with pytest.raises(NotFoundError) as missing:
        dry_run(fenced_client, f"{root}/store/../nothing-here")
    assert missing.value.reason == "CHROMA_SOURCE_NOT_FOUND"
    assert f"{root / 'nothing-here'} does not exist" in missing.value.message


def test_a_path_too_long_to_look_up_is_invalid_not_internal(fenced_client: Client, places: tuple[Path, Path]) -> None:
    root, _ = places
    with pytest.raises(InvalidArgumentError) as refused:
        dry_run(fenced_client, f"{root}/{'a' * 5000}")
    assert refused.value.reason == "PATH_INVALID" and refused.value.field == "chroma.path"
    assert "too long" in refused.value.message


def test_a_relative_path_is_refused_by_the_server(fenced_client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        dry_run(fenced_client, "store")
    assert refused.value.reason == "PATH_RELATIVE" and refused.value.field == "chroma.path"


def test_a_directory_bigger_than_the_limit_is_not_copied(database: str, places: tuple[Path, Path]) -> None:
    root, _ = places
    limited = ServerThread(database, migrate_roots=(root,), migrate_max_bytes=1000)
    try:
        with Client(limited.address) as client, pytest.raises(ResourceExhaustedError) as refused:
            dry_run(client, root / "store")
        assert refused.value.reason == "SOURCE_TOO_LARGE" and "1000" in refused.value.message
    finally:
        limited.stop()


def test_a_copy_that_would_fill_the_disk_is_refused(database: str, places: tuple[Path, Path]) -> None:
    root, _ = places
    needy = ServerThread(database, migrate_roots=(root,), migrate_min_free_bytes=2**62)
    try:
        with Client(needy.address) as client, pytest.raises(ResourceExhaustedError) as refused:
            dry_run(client, root / "store")
        assert refused.value.reason == "NOT_ENOUGH_DISK" and "free" in refused.value.message
    finally:
        needy.stop()


def waiting_on_a_lock(conninfo: str) -> bool:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_one_copy_of_a_directory_at_a_time_dry_runs_included(
    fenced: ServerThread, database: str, places: tuple[Path, Path]
) -> None:
    root, _ = places
    outcome: list[Any] = []
    with psycopg.connect(database) as holder:
        # Holding the catalogue stops the first dry run after its copy is made, while it is in use.
        holder.execute("LOCK TABLE pgvector_grpc.collections IN ACCESS EXCLUSIVE MODE")

        def first() -> None:
            with Client(fenced.address, timeout=60) as client:
                outcome.extend(dry_run(client, root / "store", target="busy_first"))

        running = threading.Thread(target=first)
        running.start()
        deadline = time.monotonic() + 30
        while not waiting_on_a_lock(database):
            assert time.monotonic() < deadline, "the first dry run never reached the database"
            time.sleep(0.05)
        with Client(fenced.address, timeout=60) as client, pytest.raises(PgvectorGrpcError) as busy:
            dry_run(client, os.path.join(root, "store", "."), target="busy_second")
        holder.rollback()
    running.join(timeout=60)
    assert busy.value.code == grpc.StatusCode.ABORTED and busy.value.reason == "SOURCE_BUSY"
    assert str(root / "store") in busy.value.message
    assert len(outcome) == 1 and isinstance(outcome[0], SourceSummary), "the first run finished normally"


def test_the_embedded_database_reads_from_its_imports_folder(places: tuple[Path, Path], tmp_path: Path) -> None:
    _, outside = places
    data_dir = tmp_path / "pgdata"
    served = Served("--data-dir", str(data_dir))
    try:
        imports = data_dir / "imports"
        assert imports.is_dir() and stat.S_IMODE(imports.stat().st_mode) == 0o700
        shutil.copytree(outside, imports / "chroma_data")
        command = [str(Path(sys.executable).parent / "pgvector-grpc"), "migrate", "--from-chroma", "./chroma_data"]
        readme_example = subprocess.run(
            [*command, "--collection", "guarded", "--dry-run", "--server", served.address],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=imports,
        )
        assert readme_example.returncode == 0, readme_example.stderr
        assert "guarded: 300 documents" in readme_example.stdout
        with Client(served.address) as client, pytest.raises(PermissionDeniedError) as refused:
            dry_run(client, outside)
        assert str(imports) in refused.value.message
    finally:
        assert served.stop() == 0


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PGVECTOR_GRPC_MIGRATE_ROOTS": f"/srv/chroma{os.pathsep}/mnt/imports{os.pathsep}",
            "PGVECTOR_GRPC_MIGRATE_ALLOW_HOSTS": "chroma.internal:8000, [::1]",
            "PGVECTOR_GRPC_MIGRATE_MAX_BYTES": "1000000",
        }
    )
    assert settings.migrate_roots == (Path("/srv/chroma"), Path("/mnt/imports"))
    assert settings.migrate_allow_hosts == ("chroma.internal:8000", "[::1]")
    assert settings.migrate_max_bytes == 1_000_000
    defaults = Settings.from_env({})
    assert defaults.migrate_roots is None and defaults.migrate_allow_hosts == ()
