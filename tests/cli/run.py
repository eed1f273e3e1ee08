"""The `pgvector-grpc` console script in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = str(Path(sys.executable).parent / "pgvector-grpc")


def cli(*args: str, server: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``pgvector-grpc ARGS`` (``server`` through $PGVECTOR_GRPC_ADDRESS, as a user would set it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGVECTOR_GRPC_")}
    if server is not None:
        env["PGVECTOR_GRPC_ADDRESS"] = server
    return subprocess.run(
        [SCRIPT, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def ok(*args: str, server: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run and insist on exit status 0."""
    done = cli(*args, server=server, stdin=stdin)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done


def json_of(*args: str, server: str | None = None, stdin: str | None = None) -> Any:
    """Run with --json and parse the one document it prints."""
    return json.loads(ok(*args, "--json", server=server, stdin=stdin).stdout)


def json_lines_of(*args: str, server: str | None = None) -> list[Any]:
    """Run with --json and parse the JSON Lines it prints."""
    return [json.loads(line) for line in ok(*args, "--json", server=server).stdout.splitlines()]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed run prints on stderr (progress lines aside)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("pgvector-grpc: ")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return lines[0]
