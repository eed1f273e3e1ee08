"""Where a database is, said without its credentials (for logs)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict


def _where(conninfo: str) -> tuple[str, str, str, str | None] | None:
    """(host, port, database, user) with libpq's defaults, or None when ``conninfo`` does not parse."""
    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        return None
    user = str(parts["user"]) if parts.get("user") else None
    return (
        str(parts.get("host") or "localhost"),
        str(parts.get("port") or "5432"),
        str(parts.get("dbname") or user or "?"),
        user,
    )


def describe_database(conninfo: str) -> str:
    """``database NAME on HOST:PORT as USER``; never a password (nor any other connection option)."""
    where = _where(conninfo)
    if where is None:
        return "a database (its URL does not parse)"
    host, port, name, user = where
    place = f"{host}:{port}" if not host.startswith("/") else f"the unix socket in {host} (port {port})"
    return f"database {name} on {place}" + (f" as {user}" if user else "")


def database_label(conninfo: str) -> str:
    """``HOST:PORT/NAME``: a database named for metrics and logs, without user or credentials."""
    where = _where(conninfo)
    if where is None:
        return "?"
    host, port, name, _ = where
    return f"{host}:{port}/{name}"
