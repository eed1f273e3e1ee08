"""Which session settings a read must set: the rules, exhaustively over small numbers."""

from __future__ import annotations

from pgvector_grpc_server.storage.sessions import SessionSettings, slack_ms, timeout_to_set

SERVER_LIMIT = 60_000


class _Connection:
    """Stands for a pooled connection: anything weakly referenceable."""


def test_a_kept_limit_is_never_longer_than_the_time_left_nor_shorter_by_more_than_the_slack() -> None:
    for wanted in [*range(1, 200), *range(200, 70_000, 97)]:
        for current in {wanted - slack_ms(wanted) - 1, wanted - slack_ms(wanted), wanted - 1, wanted, wanted + 1}:
            if current < 1:
                continue
            to_set = timeout_to_set(str(current), wanted, SERVER_LIMIT)
            fits = wanted - slack_ms(wanted) <= current <= wanted
            assert (to_set is None) == fits, (current, wanted)
            if to_set is not None:  # what is set fits the call it is set for
                assert timeout_to_set(to_set, wanted, SERVER_LIMIT) is None
                assert wanted - slack_ms(wanted) <= int(to_set) <= wanted


def test_the_server_limit_and_no_limit_are_set_exactly() -> None:
    assert timeout_to_set("59500", SERVER_LIMIT, SERVER_LIMIT) is None  # within the slack of 60 s
    assert timeout_to_set("30000", SERVER_LIMIT, SERVER_LIMIT) == "60000"
    assert timeout_to_set(None, SERVER_LIMIT, SERVER_LIMIT) == "60000"
    assert timeout_to_set("60000", 0, SERVER_LIMIT) == "0"
    assert timeout_to_set("0", 0, SERVER_LIMIT) is None
    assert timeout_to_set("0", 5000, SERVER_LIMIT) == str(5000 - slack_ms(5000) // 2)


def test_calls_with_the_same_deadline_share_one_setting() -> None:
    sessions, conn = SessionSettings(SERVER_LIMIT), _Connection()
    first = sessions.changes(conn, 30_000, {"hnsw.ef_search": "100"})
    assert dict(first) == {"hnsw.ef_search": "100", "statement_timeout": "29500"}
    sessions.applied(conn, first)
    for time_left in (29_999, 30_000, 29_600, 30_400):  # later and earlier arrivals of the same deadline
        assert sessions.changes(conn, time_left, {"hnsw.ef_search": "100"}) == []
    assert sessions.changes(conn, 30_000, {"hnsw.ef_search": "40"}) == [("hnsw.ef_search", "40")]
    assert sessions.changes(conn, 1_000, {}) == [("statement_timeout", "975")]
    sessions.forget(conn)
    assert dict(sessions.changes(conn, 30_000, {"hnsw.ef_search": "100"})) == dict(first)


def test_a_new_connection_has_the_server_limit() -> None:
    assert SessionSettings(SERVER_LIMIT).changes(_Connection(), SERVER_LIMIT, {}) == []
