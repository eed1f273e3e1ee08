"""`pgvector-grpc serve` as an operator sees it: JSON log lines, a startup line that says what is
served, where the data is and how it is secured (never a password), metrics over HTTP, and a
busy port or a bad flag refused in one line with exit status 2 before any data directory exists,
and `serve --help` naming the settings that have no flag."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_grpc import Client
from pgvector_grpc_server.__main__ import main
from pgvector_grpc_server.settings import Settings
from pgvector_grpc_server.storage.location import describe_database
from prometheus_client.parser import text_string_to_metric_families

from tests.fix_pg import PgCluster
from tests.processes import Served, free_port

PASSWORD = "never-log-me-7c1f"
SERVE = [str(Path(sys.executable).parent / "pgvector-grpc"), "serve"]


def serve_once(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60, env=env)


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def metric_samples(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("flag", ["--listen", "--metrics-listen"])
def test_a_busy_port_is_one_line_and_exit_2_before_the_data_dir_exists(
    tmp_path: Path, taken_port: int, flag: str
) -> None:
    data_dir = tmp_path / "pgdata"
    address = f"127.0.0.1:{taken_port}"
    args = ["--data-dir", str(data_dir), flag, address]
    if flag != "--listen":
        args += ["--listen", f"127.0.0.1:{free_port()}"]
    result = serve_once(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert flag in lines[0] and address in lines[0]
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--log-format", "xml"], "--log-format"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--listen", "nowhere"], "HOST:PORT"),
        (["--metrics-listen", "9090"], "--metrics-listen"),
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "no such file"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(tmp_path: Path, args: list[str], said: str) -> None:
    data_dir = tmp_path / "pgdata"
    result = serve_once("--data-dir", str(data_dir), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert said in lines[0]
    assert not data_dir.exists()


def test_json_logs_and_a_startup_line_without_the_password(pg_cluster: PgCluster) -> None:
    metrics_port = free_port()
    admin = f"{pg_cluster.admin_conninfo} password={PASSWORD}"  # the embedded cluster trusts its socket
    served = Served(
        "--admin-database-url", admin, "--log-format", "json", "--metrics-listen", f"127.0.0.1:{metrics_port}"
    )
    try:
        with Client(served.address) as c:
            c.list_collections()
        samples = metric_samples(f"http://127.0.0.1:{metrics_port}/metrics")
        assert "pgvector_grpc_pool_size" in samples
    finally:
        assert served.stop() == 0
    output = served.output()
    assert PASSWORD not in output
    entries = json_lines(output)  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    (startup,) = [e for e in entries if e["level"] == "INFO" and str(e["msg"]).startswith("serving gRPC")]
    assert startup["listen"] == served.address
    assert startup["tls"] is False and startup["mtls"] is False
    assert startup["auth"] == "none (loopback only; required once an API key exists)"
    assert str(startup["data"]).startswith("database ")
    assert startup["metrics"] == f"http://127.0.0.1:{metrics_port}/metrics"


def test_embedded_startup_is_quiet_and_counts_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    metrics_port = free_port()
    served = Served(
        "--data-dir", str(data_dir), "--log-format", "json", "--metrics-listen", f"127.0.0.1:{metrics_port}"
    )
    try:
        samples = metric_samples(f"http://127.0.0.1:{metrics_port}/metrics")
        assert samples["pgvector_grpc_embedded_postgres_restarts_total"] == 0
    finally:
        assert served.stop() == 0
    entries = json_lines(served.output())
    startup = [e for e in entries if str(e["msg"]).startswith("serving gRPC")]
    assert len(startup) == 1 and startup[0]["data"] == f"embedded PostgreSQL in {data_dir.resolve()}"
    text = "\n".join(str(e["msg"]) for e in entries)
    for noise in ("initdb", "pg_ctl", "fork", "Success. You can now start", "XDG_RUNTIME_DIR"):
        assert noise not in text
    root_warnings = [e for e in entries if e["level"] == "WARNING" and "running as root" in str(e["msg"])]
    assert len(root_warnings) == (1 if os.geteuid() == 0 else 0)


@pytest.mark.parametrize(
    ("conninfo", "described"),
    [
        (f"postgresql://app:{PASSWORD}@db.internal:6543/vectors", "database vectors on db.internal:6543 as app"),
        (
            f"host=/tmp/sock port=5433 dbname=x user=u password={PASSWORD}",
            "database x on the unix socket in /tmp/sock (port 5433) as u",
        ),
        ("not a conninfo ===", "a database (its URL does not parse)"),
    ],
)
def test_a_database_is_described_without_its_password(conninfo: str, described: str) -> None:
    assert describe_database(conninfo) == described


def test_serve_help_lists_the_settings_without_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    listed = dict(re.findall(r"^  PGVECTOR_GRPC_([A-Z_]+)=(.*)$", text, re.MULTILINE))
    assert listed["STATEMENT_TIMEOUT_MS"] == "60000" and listed["POOL_MIN_SIZE"] == "2"
    assert "POOL_MAX_SIZE" not in listed and "LISTEN" not in listed  # they have flags: --pool-max-size, --listen
    defaults = Settings()
    for name in listed:  # each is a variable the server reads
        assert getattr(Settings.from_env({f"PGVECTOR_GRPC_{name}": "7"}), name.lower()) != getattr(
            defaults, name.lower()
        ), name
