"""IVFFlat collections: the index is built from the loaded rows (BuildIndex), and searches visit the
square root of its lists unless a query asks for more or fewer."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document, IvfflatIndex

from tests.fix_server import ServerThread
from tests.vectors import clustered

DIM = 32
N = 4000
LISTS = 100
NAME = "ivf_lists"


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int = 10) -> list[str]:
    return [f"d{i}" for i in np.argsort(-(vectors @ query), kind="stable")[:k]]


@pytest.fixture(scope="module")
def corpus(server: ServerThread) -> np.ndarray:
    """Loaded into a collection created without defer_index, then indexed."""
    vectors = clustered(N, DIM, 31)
    with Client(server.address) as c:
        c.create_collection(NAME, DIM, index=IvfflatIndex(lists=LISTS))
        c.ingest(NAME, (Document(f"d{i}", None, {"i": i}, v) for i, v in enumerate(vectors)), batch_size=1000)
    return vectors


def test_the_index_waits_for_the_data_and_searches_meanwhile_are_exact(server: ServerThread, database: str) -> None:
    vectors = clustered(500, DIM, 32)
    with Client(server.address) as c, psycopg.connect(database) as conn:
        assert c.create_collection("ivf_waits", DIM, index=IvfflatIndex(lists=10)).index_pending
        index = "SELECT count(*) FROM pg_indexes WHERE tablename = 'ivf_waits' AND indexdef LIKE '%ivfflat%'"
        assert conn.execute(index).fetchone() == (0,)
        assert c.get_collection("ivf_waits").index_pending
        c.ingest("ivf_waits", (Document(f"d{i}", None, {}, v) for i, v in enumerate(vectors)))
        for query in clustered(5, DIM, 33):
            assert [h.id for h in c.search("ivf_waits", query, top_k=10)] == brute_force(vectors, query)
        c.build_index("ivf_waits")
        assert conn.execute(index).fetchone() == (1,)
        built = c.get_collection("ivf_waits")
        assert built.index == IvfflatIndex(lists=10) and not built.index_pending
        assert not {x.name: x for x in c.list_collections()}["ivf_waits"].index_pending


def test_built_after_the_load_with_the_default_probes_recall_is_high(
    client: Client, server: ServerThread, corpus: np.ndarray
) -> None:
    client.build_index(NAME)
    queries = clustered(40, DIM, 34)
    recall = np.mean(
        [len({h.id for h in client.search(NAME, q, top_k=10)} & set(brute_force(corpus, q))) / 10 for q in queries]
    )
    # 0.94-1.00 over builds (k-means starts from a sample); one probe gave 0.36 here, and an index
    # built on the empty collection less still.
    assert recall >= 0.85


def test_a_query_chooses_its_probes(client: Client, corpus: np.ndarray) -> None:
    client.build_index(NAME)
    queries = clustered(40, DIM, 35)
    every_list = [[h.id for h in client.search(NAME, q, top_k=10, probes=LISTS)] for q in queries]
    assert every_list == [brute_force(corpus, q) for q in queries]  # all lists visited: the exact answer
    one_list = [[h.id for h in client.search(NAME, q, top_k=10, probes=1)] for q in queries]
    assert one_list != every_list  # one list misses neighbours the others hold


def test_the_sql_function_visits_the_square_root_of_the_lists(
    corpus: np.ndarray, database: str, client: Client
) -> None:
    client.build_index(NAME)
    with psycopg.connect(database, autocommit=True) as conn:
        register_vector(conn)
        recalls = []
        for q in clustered(40, DIM, 36):
            rows = conn.execute("SELECT id FROM pgvector_grpc.search_documents(%s, %s, 10)", (NAME, q)).fetchall()
            recalls.append(len({r[0] for r in rows} & set(brute_force(corpus, q))) / 10)
    assert np.mean(recalls) >= 0.85  # as the server's default (above); one probe: 0.36
