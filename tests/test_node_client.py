"""A Node client that loads only the .proto files ingests, searches, updates metadata and reads its
aggregates: the proto is the contract."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fix_server import ServerThread

NODE_DIR = Path(__file__).parent / "node"


def test_node_client_ingests_and_searches(server: ServerThread) -> None:
    node = shutil.which("node")
    assert node, "node is required (see the README)"
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `make test` to install the npm packages"
    result = subprocess.run(
        [node, str(NODE_DIR / "client.mjs"), server.address, "from_node"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["created"] == "from_node"
    assert out["acks"] == [{"sequence": "0", "inserted": "5"}, {"sequence": "1", "inserted": "5"}]
    assert [h["id"] for h in out["hits"]] == ["node-4", "node-6", "node-2"]
    assert all(h["metadata"]["parity"] == "even" for h in out["hits"])
    assert out["hits"][0]["content"] == "document 4"
    assert out["hits"][0]["score"] == pytest.approx(1.0)
    assert out["updated"] == "2"  # int64 arrives as a string in JavaScript
    assert out["seenBefore9Utc"] == "2", "10:00+02:00 is 08:00 UTC"
    assert out["values"] == {"values": ["even", "odd"], "total": "2"}
    assert out["range"] == [0, 9]
    assert out["error"]["code"] == 3  # INVALID_ARGUMENT
    assert "embedding" in out["error"]["details"]
    assert out["error"]["hasDetailsTrailer"]
