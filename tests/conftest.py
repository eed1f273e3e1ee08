"""Fixture plugins: a real PostgreSQL (embedded, or DATABASE_URL) and a real server on a real socket."""

import os

# Tests start initdb, pg_ctl and servers as subprocesses while gRPC threads run in this process:
# gRPC's fork handlers then skip themselves and a forked child crashed before exec (initdb died
# with SIGSEGV once in a full run). No child here uses gRPC across a fork, so they are turned off,
# as `serve` does.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

pytest_plugins = ["tests.fix_pg", "tests.fix_server"]
