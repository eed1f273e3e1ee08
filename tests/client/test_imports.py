"""What importing a part of the client loads, checked in a fresh interpreter (run time, not only
import-linter's static graph)."""

from __future__ import annotations

import json
import subprocess
import sys

import pgvector_grpc
import pytest

CLIENTS = ("pgvector_grpc.aio", "pgvector_grpc.sync", "pgvector_grpc._convert")


def loaded_after(statement: str) -> set[str]:
    """The modules of ``sys.modules`` after running ``statement`` in a new interpreter."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    [
        "import pgvector_grpc_server.app",
        "import pgvector_grpc_server.transport.document_servicer",
        "import pgvector_grpc.v1.document_service_pb2_grpc",
        "from pgvector_grpc.filters import Field",
        "from pgvector_grpc import Field, Document, NotFoundError",
    ],
)
def test_importing_a_part_does_not_load_the_clients(statement: str) -> None:
    loaded = loaded_after(statement)
    assert not {m for m in loaded if m.startswith(CLIENTS)}, statement


def test_the_server_loads_only_generated_code_of_the_client_root() -> None:
    client_modules = {m for m in loaded_after("import pgvector_grpc_server.app") if m.startswith("pgvector_grpc.")}
    assert {m for m in client_modules if not m.startswith("pgvector_grpc.v1")} == set()


def test_public_names_resolve_to_their_modules() -> None:
    for name in pgvector_grpc.__all__:
        assert getattr(pgvector_grpc, name) is not None
    assert pgvector_grpc.Client.__module__ == "pgvector_grpc.sync"
    assert pgvector_grpc.AsyncClient.__module__ == "pgvector_grpc.aio"
    with pytest.raises(AttributeError):
        pgvector_grpc.NoSuchName  # noqa: B018
