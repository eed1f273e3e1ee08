"""The migration tests' server may read Chroma directories under the test run's temp dir and the
committed fixtures (the roots an operator would configure with --migrate-root)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fix_server import ServerThread
from tests.migration.chroma_stores import FIXTURES


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = ServerThread(database, migrate_roots=(tmp_path_factory.getbasetemp(), FIXTURES))
    yield running
    running.stop()
