"""The README's hybrid search examples run as written: the SQL block (on a fresh collection), then
the Python block twice (a reader runs it again), whose rare code comes first."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import psycopg

from tests.fix_server import ServerThread

README = Path(__file__).resolve().parents[2] / "README.md"


def block(language: str) -> str:
    section = README.read_text().split("\n## Hybrid search (keywords + vectors)\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block in the Hybrid search section"
    return match.group(1)


def test_the_hybrid_search_examples_run(server: ServerThread, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        for statement in block("sql").split(";\n"):
            if statement.strip():
                conn.execute(statement)
    code = block("python").replace("127.0.0.1:50051", server.address)
    for _ in range(2):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), {})
        first, second = printed.getvalue().splitlines()
        assert first.startswith("e4711 ") and first.split()[2] == "1"  # keyword rank 1
        assert second.startswith("pump ") and second.split()[2] == "None"
