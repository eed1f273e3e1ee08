"""``pgvector-grpc collections list | create | info | delete | build-index``."""

from __future__ import annotations

import argparse
from typing import Any

from pgvector_grpc_common.tables import write_table
from pgvector_grpc_common.vocabulary import METRICS, VECTOR_STORAGES, index_of

from pgvector_grpc.cli.connection import Connection
from pgvector_grpc.cli.output import (
    OK,
    collection_record,
    index_text,
    usage_error,
    write_fields,
    write_json,
)
from pgvector_grpc.cli.verb import add_verb, confirm
from pgvector_grpc.types import Collection, Index


def mount(commands: Any) -> None:
    """Add the ``collections`` verb group to the top-level subcommands."""
    group = commands.add_parser("collections", help="list, create, inspect and delete collections; build indexes")
    verbs = group.add_subparsers(dest="collections_command", required=True, metavar="VERB")

    add_verb(verbs, "list", list_collections, "every collection with its size")

    create = add_verb(verbs, "create", create_collection, "create a collection")
    create.add_argument("name")
    create.add_argument("--dimension", type=int, required=True, help="length of every embedding")
    create.add_argument("--metric", choices=METRICS, default="cosine")
    create.add_argument("--index", choices=("hnsw", "ivfflat", "none"), default="hnsw", help="vector index")
    create.add_argument("--m", type=int, help="HNSW links per node (default 16)")
    create.add_argument("--ef-construction", type=int, help="HNSW build candidates (default 64)")
    create.add_argument("--lists", type=int, help="IVFFlat inverted lists (default 100)")
    create.add_argument(
        "--storage",
        choices=VECTOR_STORAGES,
        help="what the index stores: vector (default), halfvec (half the size) or bit (sign bits, cosine only);"
        " the table keeps the full vectors to re-rank by",
    )
    create.add_argument(
        "--rerank-factor", type=int, help="candidates per result a halfvec or bit index returns (default 2 / 10)"
    )
    create.add_argument(
        "--if-not-exists", action="store_true", help="succeed when an identical collection exists already"
    )
    create.add_argument(
        "--defer-index", action="store_true", help="build the index later (`collections build-index`), after a load"
    )
    create.add_argument(
        "--text-search",
        metavar="CONFIG",
        help="index the content for keyword search (`search --text`) with this PostgreSQL text-search "
        "configuration: simple (every word, lowercased) or a language's, e.g. english",
    )

    info = add_verb(verbs, "info", collection_info, "one collection: dimension, metric, index, size")
    info.add_argument("name")

    delete = add_verb(verbs, "delete", delete_collection, "drop a collection and all its documents")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask (required when stdin is not a terminal)")

    build = add_verb(verbs, "build-index", build_index, "build the index of a collection created with --defer-index")
    build.add_argument("name")


def _show(collection: Collection, args: argparse.Namespace) -> None:
    record = collection_record(collection)
    if args.json:
        write_json(record)
        return
    write_fields(
        [
            ("name", record["name"]),
            ("dimension", record["dimension"]),
            ("metric", record["metric"]),
            (
                "index",
                index_text(record["index"])
                + (" - not built yet: run build-index" if "index_pending" in record else ""),
            ),
            ("documents", f"{record['documents']:,}"),
            *([("text search", record["text_search"])] if "text_search" in record else []),
        ]
    )


def list_collections(args: argparse.Namespace) -> int:
    with Connection.from_args(args).client() as client:
        records = [collection_record(c) for c in client.list_collections()]
    if args.json:
        write_json(records)
    else:
        rows = [[r["name"], r["dimension"], r["metric"], index_text(r["index"]), r["documents"]] for r in records]
        write_table(["name", "dimension", "metric", "index", "documents"], rows)
    return OK


def _index(args: argparse.Namespace) -> Index:
    given = {
        "--m": args.m,
        "--ef-construction": args.ef_construction,
        "--lists": args.lists,
        "--storage": args.storage,
        "--rerank-factor": args.rerank_factor,
    }
    compact = {"--storage", "--rerank-factor"}
    allowed = {"hnsw": {"--m", "--ef-construction", *compact}, "ivfflat": {"--lists", *compact}, "none": set()}
    misplaced = sorted(o for o, value in given.items() if value is not None and o not in allowed[args.index])
    if misplaced:
        raise usage_error(f"{', '.join(misplaced)} do(es) not apply to --index {args.index}")
    return index_of(
        args.index,
        m=args.m,
        ef_construction=args.ef_construction,
        lists=args.lists,
        storage=args.storage,
        rerank_factor=args.rerank_factor,
    )


def create_collection(args: argparse.Namespace) -> int:
    index = _index(args)
    with Connection.from_args(args).client() as client:
        collection = client.create_collection(
            args.name,
            args.dimension,
            metric=args.metric,
            index=index,
            if_not_exists=args.if_not_exists,
            defer_index=args.defer_index,
            text_search=args.text_search,
        )
    _show(collection, args)
    return OK


def collection_info(args: argparse.Namespace) -> int:
    with Connection.from_args(args).client() as client:
        collection = client.get_collection(args.name)
    _show(collection, args)
    return OK


def delete_collection(args: argparse.Namespace) -> int:
    with Connection.from_args(args).client() as client:
        if not args.yes:
            count = client.get_collection(args.name).document_count  # NOT_FOUND before asking
            confirm(f"delete collection {args.name!r} and its {count:,} documents", yes=False)
        client.delete_collection(args.name)
    if args.json:
        write_json({"deleted": args.name})
    else:
        print(f"deleted collection {args.name}")
    return OK


def build_index(args: argparse.Namespace) -> int:
    with Connection.from_args(args).client(timeout=None) as client:
        collection = client.build_index(args.name)
    _show(collection, args)
    return OK
