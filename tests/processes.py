"""The server as a user runs it: `pgvector-grpc serve` in a subprocess, checked with `pgvector-grpc health`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgvector_grpc_server", "health", "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
    )


class Served:
    """`pgvector-grpc serve` with these arguments (and ``env`` added to the environment), on a free
    port, once healthy."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | (env or {})
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "pgvector-grpc"),
                "serve",
                "--listen",
                self.address,
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while health(self.address).returncode != 0:
            assert self.process.poll() is None, self.process.stdout.read() if self.process.stdout else ""
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no drain, no clean shutdown."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        """What the process printed and logged (read once it has exited)."""
        assert self.process.stdout is not None and self.process.poll() is not None
        return self.process.stdout.read()
