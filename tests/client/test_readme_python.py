"""The README's Python example runs as written, twice in a row (a reader runs it again)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tests.fix_server import ServerThread

README = Path(__file__).resolve().parents[2] / "README.md"


def python_block() -> str:
    section = README.read_text().split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the Python section"
    return match.group(1)


def test_the_python_example_runs_twice(server: ServerThread) -> None:
    code = python_block().replace("127.0.0.1:50051", server.address)
    for _ in range(2):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), {})
        assert printed.getvalue().startswith("[('a', ")
