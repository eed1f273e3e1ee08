"""`pgvector-grpc collections create --text-search` and `search --text`: keyword and hybrid search from
the command line."""

from __future__ import annotations

from pgvector_grpc import Client, Document

from tests.cli.run import cli, error_line, json_of, ok
from tests.fix_server import ServerThread


def test_keyword_and_hybrid_search_from_the_command_line(server: ServerThread) -> None:
    at = server.address
    created = json_of("collections", "create", "manuals", "--dimension", "3", "--text-search", "english", server=at)
    assert created["text_search"] == "english"
    with Client(at) as client:
        client.ingest(
            "manuals",
            [
                Document("pump", "pumping station manual", {}, [1, 0, 0]),
                Document("code", "error E4711 on the valve", {}, [0, 0, 1]),
            ],
        )
    keyword = json_of("search", "manuals", "--text", "pumps", server=at)
    assert [(h["id"], h["keyword_rank"], h["vector_score"]) for h in keyword] == [("pump", 1, None)]

    hybrid = json_of("search", "manuals", "--vector", "[1, 0, 0]", "--text", "E4711", server=at)
    assert [(h["id"], h["keyword_rank"]) for h in hybrid] == [("code", 1), ("pump", None)]
    assert hybrid[0]["score"] > hybrid[1]["score"] and hybrid[1]["vector_score"] == 1.0

    table = ok("search", "manuals", "--like", "pump", "--text", "valve", server=at).stdout.splitlines()
    assert table[0].split() == ["ID", "SCORE", "VECTOR_SCORE", "KEYWORD_RANK", "CONTENT", "METADATA"]
    assert table[1].split()[0] == "code"

    nothing = cli("search", "manuals", server=at)
    assert nothing.returncode == 2 and "--text" in error_line(nothing)
