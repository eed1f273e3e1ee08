"""Where a database is, said without its credentials (for logs)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict


def describe_database(conninfo: str) -> str:
    """``database NAME on HOST:PORT as USER``; never a password (nor any other connection option)."""
    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        return "a database (its URL does not parse)"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    name = parts.get("dbname") or parts.get("user") or "?"
    where = f"{host}:{port}" if not host.startswith("/") else f"the unix socket in {host} (port {port})"
    user = f" as {parts['user']}" if parts.get("user") else ""
    return f"database {name} on {where}{user}"


def database_label(conninfo: str) -> str:
    """``HOST:PORT/NAME``: a database named for metrics and logs, without user or credentials."""
    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        return "?"
    host = str(parts.get("host") or "localhost")
    return f"{host}:{parts.get('port') or '5432'}/{parts.get('dbname') or parts.get('user') or '?'}"
