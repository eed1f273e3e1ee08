"""The README's "Command line" block runs as written, twice, against `serve` on an embedded PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.processes import Served

README = Path(__file__).resolve().parents[2] / "README.md"


def command_line_block() -> str:
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "no bash block in the Command line section"
    return match.group(1)


def test_command_line_examples_run_as_written_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    served = Served("--data-dir", str(data_dir))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGVECTOR_GRPC_")}
        env |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PGVECTOR_GRPC_ADDRESS": served.address,
            "PGVECTOR_GRPC_DATA_DIR": str(data_dir),
        }
        for _ in range(2):
            done = subprocess.run(
                ["bash", "-e", "-c", command_line_block()],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert "deleted collection cli_demo" in done.stdout
            assert "0.8" in done.stdout  # psql printed pgvector's version
    finally:
        assert served.stop() == 0
