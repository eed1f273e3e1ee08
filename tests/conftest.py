"""Fixture plugins: a real PostgreSQL (embedded, or DATABASE_URL) and a real server on a real socket."""

pytest_plugins = ["tests.fix_pg", "tests.fix_server"]
