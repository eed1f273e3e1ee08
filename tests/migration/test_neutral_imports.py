"""The migration package imports neither the client, the server nor gRPC: checked in a fresh
interpreter, at run time, not only by import-linter."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "pgvector_grpc_common.migration.engine",
    "pgvector_grpc_common.migration.verify",
    "pgvector_grpc_common.migration.sources.chroma",
    "pgvector_grpc_common.migration.sources.haystack",
]
FORBIDDEN = ["pgvector_grpc", "pgvector_grpc_server", "grpc"]


def test_the_engine_and_its_sources_load_no_client_server_or_grpc() -> None:
    program = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in MODULES)
        + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]"
