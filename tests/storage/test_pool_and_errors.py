"""The pool's deadline rules and the error table, against a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from pgvector_grpc_server.domain.deadline import set_remaining
from pgvector_grpc_server.domain.errors import DeadlineExceeded, InvalidArgument
from pgvector_grpc_server.storage.errors import translate
from pgvector_grpc_server.storage.pool import close_pool, fetch_all, fetch_one, open_pool, transaction_as
from pgvector_grpc_server.storage.schema import apply_schema


@pytest.fixture(scope="module")
async def schema(database: str) -> str:
    await apply_schema(database)
    return database


async def test_a_call_past_its_deadline_takes_no_connection(schema: str) -> None:
    pool = await open_pool(schema, min_size=1, max_size=1, max_waiting=0, timeout=5, statement_timeout_ms=60_000)
    try:
        set_remaining(0.0)
        with pytest.raises(DeadlineExceeded):
            await fetch_all(pool, None, "SELECT 1")
        assert pool.get_stats().get("requests_num", 0) == 0
        set_remaining(5.0)
        assert await fetch_all(pool, None, "SELECT 1") == [(1,)]
    finally:
        await close_pool(pool)


async def test_statements_run_with_the_time_left_and_the_setting_ends_with_them(schema: str) -> None:
    pool = await open_pool(schema, min_size=1, max_size=1, max_waiting=0, timeout=5, statement_timeout_ms=60_000)
    try:
        set_remaining(5.0)
        (limit,) = await fetch_one(pool, None, "SELECT current_setting('statement_timeout')") or ("",)
        assert limit.endswith("ms") and 4000 < int(limit.removesuffix("ms")) <= 5000
        async with transaction_as(pool, None) as conn:
            row = await (await conn.execute("SELECT current_setting('statement_timeout')")).fetchone()
            assert row is not None and row[0].endswith("ms")
        set_remaining(None)
        assert await fetch_one(pool, None, "SELECT current_setting('statement_timeout')") == ("1min",)
        set_remaining(0.3)
        with pytest.raises(psycopg.errors.QueryCanceled):
            await fetch_all(pool, None, "SELECT pg_sleep(5)")
        set_remaining(None)
        assert await fetch_one(pool, None, "SELECT current_setting('statement_timeout')") == ("1min",)
    finally:
        await close_pool(pool)


def test_stack_depth_exceeded_is_invalid_argument_not_unavailable(database: str) -> None:
    with psycopg.connect(database) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute("SELECT (repeat('[', 200000) || repeat(']', 200000))::jsonb")
    assert raised.value.sqlstate == "54001"
    error = translate(raised.value)
    assert isinstance(error, InvalidArgument)
    assert error.reason == "TOO_COMPLEX"


async def test_a_read_after_a_failed_one_sets_its_settings_again(schema: str) -> None:
    pool = await open_pool(schema, min_size=1, max_size=1, max_waiting=0, timeout=5, statement_timeout_ms=60_000)
    show = "SELECT current_setting('hnsw.ef_search', true)"
    try:
        assert await fetch_all(pool, None, show, settings={"hnsw.ef_search": "11"}) == [("11",)]
        # The failed statement's transaction takes its settings back with it: the session keeps 11.
        with pytest.raises(psycopg.errors.DivisionByZero):
            await fetch_all(pool, None, "SELECT 1 / 0", settings={"hnsw.ef_search": "12"})
        assert await fetch_one(pool, None, show) == ("11",)
        # So the next read that needs 12 must set it, not believe it set.
        assert await fetch_all(pool, None, show, settings={"hnsw.ef_search": "12"}) == [("12",)]
    finally:
        await close_pool(pool)


async def test_a_short_limit_left_on_the_session_never_reaches_a_later_call(schema: str) -> None:
    pool = await open_pool(schema, min_size=1, max_size=1, max_waiting=0, timeout=5, statement_timeout_ms=60_000)
    show = "SELECT current_setting('statement_timeout')"
    try:
        set_remaining(0.5)
        (limit,) = await fetch_one(pool, None, show) or ("",)
        assert 450 <= int(limit.removesuffix("ms")) <= 500
        set_remaining(None)
        async with transaction_as(pool, None) as conn:  # a transaction without a deadline: the server's limit
            assert await (await conn.execute(show)).fetchone() == ("1min",)
        set_remaining(0.5)
        await fetch_one(pool, None, show)
        async with pool.connection() as conn:  # what the session kept: the short limit
            assert (await (await conn.execute(show)).fetchone() or ("",))[0].endswith("ms")
        set_remaining(None)
        assert await fetch_one(pool, None, show) == ("1min",)
    finally:
        await close_pool(pool)
