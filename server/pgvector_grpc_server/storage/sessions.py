"""What each pooled connection's session is known to be set to, so that a read whose settings its
session already has runs as one statement.

A read needs settings: its statement time limit (the caller's deadline) and, for a search, pgvector's
hnsw.ef_search and iterative scan. Sent with the read, they make a pipeline (settings, statement,
Sync): four waits on the socket where a statement alone needs one, about 0.6 ms of a 1-2 ms search
on this kind of machine. So they are set on the session (set_config(..., false)) and remembered;
the next read with the same needs runs alone.

The time limit may be kept when it is up to a small slack shorter than the time left: callers with
the same deadline then share one setting, and a statement still never outlives its caller's
deadline. The tenant is never kept on a session (see pool.TENANT_SETTING).

Every session setting a read needs is named in the read's own needs, so a value another read left
behind never decides anything; and since a transaction that fails takes its settings with it, a
session whose read failed is forgotten (set again in full next time)."""

from __future__ import annotations

from collections.abc import Mapping
from weakref import WeakKeyDictionary

STATEMENT_TIMEOUT = "statement_timeout"
# How much shorter than the time left a kept time limit may be: this share of it, at most the cap.
SLACK_SHARE = 0.05
SLACK_MAX_MS = 1000


def slack_ms(time_left_ms: int) -> int:
    """How much earlier than its deadline a statement with ``time_left_ms`` may be stopped."""
    return min(int(time_left_ms * SLACK_SHARE), SLACK_MAX_MS)


def timeout_to_set(current: str | None, wanted_ms: int, server_limit_ms: int) -> str | None:
    """The statement time limit to set on a session whose limit is ``current`` (None: unknown), for
    a statement that must end within ``wanted_ms`` (0: no limit); None when ``current`` will do.

    The server's own limit is set exactly. A deadline's is set half the slack short, so that the
    next calls with the same deadline, arriving a little earlier or later, find that it fits."""
    if current is not None and current.isdigit():
        limit = int(current)
        if limit == wanted_ms or (0 < wanted_ms - slack_ms(wanted_ms) <= limit <= wanted_ms):
            return None
    if wanted_ms in (0, server_limit_ms):
        return str(wanted_ms)
    return str(max(1, wanted_ms - slack_ms(wanted_ms) // 2))


class SessionSettings:
    """The session settings known to be in force on each pooled connection."""

    def __init__(self, server_limit_ms: int) -> None:
        self._server_limit_ms = server_limit_ms
        self._known: WeakKeyDictionary[object, dict[str, str]] = WeakKeyDictionary()

    def _of(self, conn: object) -> dict[str, str]:
        # A new connection has the server's limit from its configuration (pool._configure).
        return self._known.setdefault(conn, {STATEMENT_TIMEOUT: str(self._server_limit_ms)})

    def timeout_ms(self, conn: object) -> str | None:
        """The statement time limit known on ``conn``'s session, or None."""
        return self._of(conn).get(STATEMENT_TIMEOUT)

    def changes(self, conn: object, wanted_timeout_ms: int, settings: Mapping[str, str]) -> list[tuple[str, str]]:
        """The (name, value) pairs to set on ``conn``'s session before a statement that must end within
        ``wanted_timeout_ms`` (0: no limit) and run with ``settings``; empty when it has them all."""
        known = self._of(conn)
        pairs = [(name, value) for name, value in settings.items() if known.get(name) != value]
        timeout = timeout_to_set(known.get(STATEMENT_TIMEOUT), wanted_timeout_ms, self._server_limit_ms)
        if timeout is not None:
            pairs.append((STATEMENT_TIMEOUT, timeout))
        return pairs

    def applied(self, conn: object, pairs: list[tuple[str, str]]) -> None:
        """``pairs`` are now in force on ``conn``'s session (their statement committed)."""
        self._of(conn).update(pairs)

    def forget(self, conn: object) -> None:
        """Nothing is known of ``conn``'s session any more (a read on it failed)."""
        self._known[conn] = {}
