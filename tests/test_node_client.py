"""A Node client that loads only the .proto files ingests, searches (hybrid keyword + vector too),
updates metadata and reads its aggregates: the proto is the contract. Also over TLS against a server
that requires an API key, sent with @grpc/grpc-js call credentials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fix_pg import PgCluster, create_database, drop_database
from tests.fix_server import ServerThread
from tests.security.certs import CertificateAuthority, Pem
from tests.security.keys import create_key

NODE_DIR = Path(__file__).parent / "node"


def run_node(address: str, *args: str, api_key: str | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is required (see the README)"
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `make test` to install the npm packages"
    env = {k: v for k, v in os.environ.items() if k != "PGVECTOR_GRPC_API_KEY"}
    if api_key:
        env["PGVECTOR_GRPC_API_KEY"] = api_key
    result = subprocess.run(
        [node, str(NODE_DIR / "client.mjs"), address, *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="module")
def tls_auth_server(
    pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, Pem, str]]:
    """A TLS server requiring authentication, its CA and an admin key; on a database of its own."""
    conninfo = create_database(pg_cluster, "t_node_tls_auth")
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"), "node-ca")
    certificate = ca.issue("server", server=True)
    running = ServerThread(conninfo, tls_cert_file=certificate.cert, tls_key_file=certificate.key, require_auth=True)
    yield running, ca.pem, create_key(conninfo, "admin")
    running.stop()
    drop_database(pg_cluster, "t_node_tls_auth")


def test_node_client_ingests_and_searches(server: ServerThread) -> None:
    check_the_whole_run(run_node(server.address, "from_node"))


def test_node_client_over_tls_with_an_api_key(tls_auth_server: tuple[ServerThread, Pem, str]) -> None:
    running, ca, key = tls_auth_server
    out = run_node(running.address, "from_node", str(ca.cert), api_key=key)
    check_the_whole_run(out)
    assert out["withoutKey"] == {"code": 16}  # UNAUTHENTICATED


def check_the_whole_run(out: dict[str, Any]) -> None:
    assert out["created"] == "from_node"
    assert out["acks"] == [{"sequence": "0", "inserted": "5"}, {"sequence": "1", "inserted": "5"}]
    assert [h["id"] for h in out["hits"]] == ["node-4", "node-6", "node-2"]
    assert all(h["metadata"]["parity"] == "even" for h in out["hits"])
    assert out["hits"][0]["content"] == "document 4"
    assert out["hits"][0]["score"] == pytest.approx(1.0)
    assert out["textSearch"] == {"configuration": "simple"}
    hybrid = out["hybrid"]
    assert [h["id"] for h in hybrid] == ["node-7", "node-4", "node-5"]
    assert [h["keywordRank"] for h in hybrid] == [1, None, None]
    assert all(h["score"] == h["fused"] and h["vectorScore"] is not None for h in hybrid)
    assert hybrid[1]["fused"] == pytest.approx(1 / 61)  # node-4: first of the vector ranking only
    assert out["updated"] == "2"  # int64 arrives as a string in JavaScript
    assert out["seenBefore9Utc"] == "2", "10:00+02:00 is 08:00 UTC"
    assert out["values"] == {"values": ["even", "odd"], "total": "2"}
    assert out["range"] == [0, 9]
    assert out["error"]["code"] == 3  # INVALID_ARGUMENT
    assert "embedding" in out["error"]["details"]
    assert out["error"]["hasDetailsTrailer"]
