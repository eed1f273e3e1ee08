"""Statements seen from outside storage: each one may get a trace span, each failure is reported by SQLSTATE.

A cursor class set on every pooled connection (`open_pool(observer=...)`), so that every query
and COPY of the stores is covered without the stores knowing; the observer knows nothing of psycopg."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Protocol

import psycopg
from psycopg import AsyncCopy, AsyncCursor, sql


class StatementObserver(Protocol):
    """Told of every statement a pooled connection runs."""

    @property
    def traces(self) -> bool:
        """Whether :meth:`span` wants the statement's text (rendering it costs)."""

    def span(self, statement: str) -> AbstractContextManager[object]:
        """Entered around the statement (its text without parameters, "" when not ``traces``)."""

    def failed(self, sqlstate: str | None) -> None:
        """The statement failed with this SQLSTATE (None: no answer, e.g. the connection was lost)."""


def _text(query: Any, cursor: AsyncCursor[Any]) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(cursor)
    return query.decode(errors="replace") if isinstance(query, bytes) else str(query)


def observed_cursor_class(observer: StatementObserver) -> type[AsyncCursor[Any]]:
    """A cursor class that reports its statements to ``observer``."""

    class ObservedCursor(AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            with observer.span(_text(query, self) if observer.traces else ""):
                try:
                    return await super().execute(query, params, **kwargs)
                except psycopg.Error as exc:
                    observer.failed(exc.sqlstate)
                    raise

        async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            with observer.span(_text(query, self) if observer.traces else ""):
                try:
                    await super().executemany(query, params_seq, **kwargs)
                except psycopg.Error as exc:
                    observer.failed(exc.sqlstate)
                    raise

        @asynccontextmanager
        async def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[AsyncCopy]:
            with observer.span(_text(statement, self) if observer.traces else ""):
                try:
                    async with super().copy(statement, params, **kwargs) as copy:
                        yield copy
                except psycopg.Error as exc:
                    observer.failed(exc.sqlstate)
                    raise

    return ObservedCursor
