"""The README's code blocks run as written, each twice in a row, in README order, in a fresh
directory against one `pgvector-grpc serve` on an embedded PostgreSQL: as a reader who goes
through the README after `make serve` would run them.

Every block runs unless it is listed in NOT_RUNNABLE with the reason, so a block added to the
README is run by default. The runner follows the block's language: ``python`` (a fresh
interpreter), ``bash`` / ``sh`` (``bash -e``), ``sql`` (the wheel's psql on the server's database,
stopping at the first error); ``text`` blocks are sample output. A block in any other language
must be listed.

What differs from the reader's machine, and why:
- The server listens on a free port, not 127.0.0.1:50051: the blocks' ``127.0.0.1:50051`` is
  replaced by its address, and ``PGVECTOR_GRPC_ADDRESS`` names it (as the README suggests).
- ``XDG_DATA_HOME`` points into the temp dir, so the default data directory (that `serve`,
  `pgvector-grpc db` and the psql recipe use) is a fresh one.
- The reader stands in the checkout, where `make` made ``.venv``: the temp dir holds a link named
  ``.venv`` to this interpreter's environment, and nothing else of the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import Served

README = Path(__file__).resolve().parents[1] / "README.md"
DEFAULT_ADDRESS = "127.0.0.1:50051"
RUNNERS = ("python", "bash", "sh", "sql")
SAMPLE_OUTPUT = ("text",)

# A block that cannot run here: a text that occurs in that block only, and the reason.
NOT_RUNNABLE = {
    "make serve   #": "`make serve` serves until stopped, and `make test` is the whole suite (this test is in it)",
    "pgvector-grpc migrate --from-haystack store.yaml": "store.yaml is the reader's own serialised Haystack store",
    "pgvector-grpc migrate --from-chroma ./chroma_data --all": "the reader's Chroma data, and Chroma at chroma:8000",
    "pgvector-grpc keys create --tenant acme": (
        "a key turns authentication on for the server every later block uses, and revoke names an example id; "
        "tests/security/test_cli.py runs these commands"
    ),
    'tls="ca.crt") as client': "needs a TLS server and its CA, and a key in PGVECTOR_GRPC_API_KEY",
    "export PGVECTOR_GRPC_ADDRESS=vectors.internal:50051": "a remote TLS server with its CA and client certificates",
    'api_key=Secret.from_env_var("WRITER_KEY")': "needs a TLS server, its CA and a writer key",
    "createFromMetadataGenerator": "a fragment of a Node program (tests/node/client.mjs runs the whole)",
    "grpcurl -plaintext": "grpcurl is not installed here (buf curl, in .venv, runs in the block after it)",
    "--read-database-url postgresql://pgvector_grpc_app:…@replica-1/vectors": (
        "names the reader's primary and replica hosts; tests/server/test_replicas.py serves from a real streaming"
        " replica"
    ),
}

# What a block must print (on stdout), to tell "ran" from "ran and did what the README says".
PRINTS = {
    'hits = client.search("docs", [0.1, 0.2, 0.3], top_k=5, filter={"lang": "en"})': "[('a', ",
    "pgvector-grpc collections create cli_demo": "deleted collection cli_demo",
    "SELECT * FROM pgvector_grpc.search_documents('docs', '[0.1,0.2,0.3]', 5,": "hello",
    'PgvectorGrpcDocumentStore(collection="haystack_docs"': "[('h1', ",
    'buf convert "$PROTO" --type google.rpc.ErrorInfo': '"reason":"COLLECTION_NOT_FOUND"',
}


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # where its fence opens in README.md
    section: str

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.section}, {self.language or 'no language'})"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, with the heading it is under (a ``#`` inside a block is no heading)."""
    blocks: list[Block] = []
    body: list[str] = []
    section, fence, indent, language, start = "", "", "", "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if fence:
            if line.strip() == fence:
                blocks.append(Block(language, "\n".join(body) + "\n", start, section))
                fence = ""
            else:
                body.append(line.removeprefix(indent))
            continue
        opening = re.match(r"^(\s*)(```+)\s*(\S*)\s*$", line)
        if opening:
            indent, fence, language, body, start = opening[1], opening[2], opening[3].lower(), [], number
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
    assert not fence, f"README.md:{start}: a block is never closed"
    return blocks


def entry_for(block: Block, table: dict[str, str]) -> str | None:
    keys = [key for key in table if key in block.code]
    assert len(keys) <= 1, f"{block} matches several entries: {keys}"
    return keys[0] if keys else None


def test_every_block_has_a_runner_or_a_reason_and_every_reason_a_block() -> None:
    blocks = readme_blocks(README.read_text())
    for block in blocks:
        listed = entry_for(block, NOT_RUNNABLE)
        assert block.language in (*RUNNERS, *SAMPLE_OUTPUT) or listed, (
            f"{block}: no runner for this language; name the language (python, bash, sql, text) or list the block "
            "in NOT_RUNNABLE in tests/test_readme.py with the reason"
        )
    for table in (NOT_RUNNABLE, PRINTS):
        for key in table:
            matching = [block for block in blocks if key in block.code]
            assert len(matching) == 1, f"{key!r} should occur in exactly one README block, found {len(matching)}"


def run_block(block: Block, cwd: Path, env: dict[str, str], address: str) -> subprocess.CompletedProcess[str]:
    code = block.code.replace(DEFAULT_ADDRESS, address)
    if block.language == "python":
        script = cwd / "readme_block.py"
        script.write_text(code)
        command = [sys.executable, str(script)]
    elif block.language == "sql":
        script = cwd / "readme_block.sql"
        script.write_text(code)
        command = ["pgvector-grpc", "db", "--psql", "--", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(script)]
    else:
        command = ["bash", "-e", "-c", code]
    return subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.timeout(900)  # every block twice; the command-line block alone is some 40 CLI calls
def test_the_readme_blocks_run_as_written_twice(tmp_path: Path) -> None:
    blocks = [
        block
        for block in readme_blocks(README.read_text())
        if block.language in RUNNERS and entry_for(block, NOT_RUNNABLE) is None
    ]
    assert len(blocks) >= 6, [str(b) for b in blocks]  # the parser still finds the README's blocks
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGVECTOR_GRPC_") and k != "DATABASE_URL"}
    env |= {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "XDG_DATA_HOME": str(tmp_path)}
    served = Served(env={"XDG_DATA_HOME": str(tmp_path)})
    env["PGVECTOR_GRPC_ADDRESS"] = served.address
    try:
        for block in blocks:
            expected = PRINTS.get(entry_for(block, PRINTS) or "")
            for attempt in ("first", "second"):
                done = run_block(block, reader, env, served.address)
                assert done.returncode == 0, f"{block}, {attempt} run: exit {done.returncode}\n{done.stderr}"
                assert "Traceback" not in done.stderr, f"{block}, {attempt} run:\n{done.stderr}"
                if expected is not None:
                    assert expected in done.stdout, f"{block}, {attempt} run printed:\n{done.stdout}"
    finally:
        assert served.stop() == 0
