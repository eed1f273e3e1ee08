"""The server as operators run it: a non-loopback address without authentication is refused, and
`pgvector-grpc keys` manages keys while `serve` runs on the same embedded PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pgvector_grpc import Client
from pgvector_grpc.errors import UnauthenticatedError

from tests.processes import Served, free_port
from tests.security.keys import bearer


def pgvector_grpc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "pgvector-grpc"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def unauthenticated(address: str, token: str | None) -> bool:
    with Client(address, timeout=10, metadata=bearer(token) if token else ()) as c:
        try:
            c.list_collections()
        except UnauthenticatedError:
            return True
    return False


def test_non_loopback_address_without_authentication_is_refused(database: str) -> None:
    result = pgvector_grpc("serve", "--listen", f"0.0.0.0:{free_port()}", "--admin-database-url", database)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "--insecure" in result.stderr


def test_a_pool_role_that_bypasses_row_level_security_is_refused(database: str) -> None:
    # DATABASE_URL of a superuser (who also applies sql/ and so joins the owner role): tenants would
    # not be isolated, so the server does not start unless the operator says so explicitly.
    refused = pgvector_grpc("serve", "--listen", f"127.0.0.1:{free_port()}", "--database-url", database)
    assert refused.returncode == 2
    assert "is a superuser" in refused.stderr and "--allow-privileged-role" in refused.stderr


def test_allow_privileged_role_is_the_explicit_escape(database: str) -> None:
    served = Served("--database-url", database, "--allow-privileged-role")
    try:
        assert not unauthenticated(served.address, None)  # serving, on the privileged role
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("listen", ["0.0.0.0:1", "[::]:1", "10.1.2.3:1", "example.com:1"])
def test_exposed_addresses(listen: str) -> None:
    from pgvector_grpc_server.access import is_loopback

    assert not is_loopback(listen)


@pytest.mark.parametrize("listen", ["127.0.0.1:1", "127.0.0.2:1", "[::1]:1", "localhost:1", "unix:/tmp/s"])
def test_loopback_addresses(listen: str) -> None:
    from pgvector_grpc_server.access import is_loopback

    assert is_loopback(listen)


def test_keys_while_the_server_runs(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "pgdata")
    served = Served("--data-dir", data_dir)
    try:
        assert not unauthenticated(served.address, None)

        created = pgvector_grpc(
            "keys", "create", "--data-dir", data_dir, "--tenant", "acme", "--role", "admin", "--name", "ops"
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        assert token.startswith("pgv_") and created.stdout.count("\n") == 1
        key_id, secret = token.split("_", 2)[1:]

        eventually(lambda: unauthenticated(served.address, None))
        assert not unauthenticated(served.address, token)

        listed = pgvector_grpc("keys", "list", "--data-dir", data_dir)
        assert listed.returncode == 0, listed.stderr
        assert "Warning" not in listed.stderr  # e.g. platformdirs' XDG_RUNTIME_DIR one, as root
        header, *rows = listed.stdout.splitlines()
        assert header.split() == ["KEY_ID", "TENANT", "ROLE", "COLLECTIONS", "CREATED", "STATUS", "NAME"]
        row = next(line.split() for line in rows if line.startswith(key_id))
        assert row[1:4] == ["acme", "admin", "*"] and row[5] == "active"
        assert secret not in listed.stdout + listed.stderr

        revoked = pgvector_grpc("keys", "revoke", "--data-dir", data_dir, key_id)
        assert revoked.returncode == 0, revoked.stderr
        eventually(lambda: unauthenticated(served.address, token))
        assert pgvector_grpc("keys", "revoke", "--data-dir", data_dir, key_id).returncode == 1
        assert "revoked" in pgvector_grpc("keys", "list", "--data-dir", data_dir).stdout

        assert served.process.poll() is None  # the server and its PostgreSQL outlived every keys command
    finally:
        assert served.stop() == 0


def test_keys_json_output_parses_back(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "pgdata")
    served = Served("--data-dir", data_dir)
    try:

        def keys(*args: str) -> Any:
            done = pgvector_grpc("keys", *args, "--data-dir", data_dir, "--json")
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        created = keys("create", "--tenant", "acme", "--role", "reader", "--name", "dash", "--collections", "b,a")
        assert created["key"].startswith(f"pgv_{created['key_id']}_")
        expected = {"tenant": "acme", "role": "reader", "collections": ["a", "b"], "name": "dash"}
        assert {k: created[k] for k in expected} == expected
        eventually(lambda: unauthenticated(served.address, None))
        assert not unauthenticated(served.address, created["key"])  # the printed key is the one stored

        [listed] = keys("list")
        assert listed == {**expected, "key_id": created["key_id"], "created": listed["created"], "revoked": None}
        assert listed["created"].endswith("Z") and created["key"] not in json.dumps(listed)

        assert keys("revoke", created["key_id"]) == {"revoked": created["key_id"]}
        [after] = keys("list")
        assert after["revoked"] is not None and after["revoked"] >= after["created"]
        assert served.process.poll() is None  # the server and its PostgreSQL outlived every keys command
    finally:
        assert served.stop() == 0
