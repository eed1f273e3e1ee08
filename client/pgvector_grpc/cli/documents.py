"""``pgvector-grpc count | get | search | delete``: documents of one collection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pgvector_grpc_common.tables import write_table

from pgvector_grpc.cli.connection import Connection
from pgvector_grpc.cli.output import (
    OK,
    document_record,
    hit_record,
    not_found,
    parse_json_option,
    usage_error,
    write_json,
)
from pgvector_grpc.cli.verb import add_verb, confirm
from pgvector_grpc.filters import to_filter_pb
from pgvector_grpc.sync import Client
from pgvector_grpc.v1 import document_pb2

FILTER_HELP = 'metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\' (Chroma-style operators)'


def mount(commands: Any) -> None:
    """Add ``count``, ``get``, ``search`` and ``delete`` to the top-level subcommands."""
    count = add_verb(commands, "count", count_documents, "the number of documents, all or matching a filter")
    count.add_argument("collection")
    count.add_argument("--filter", help=FILTER_HELP)

    get = add_verb(commands, "get", get_documents, "documents by id (exit 3 when one is missing)")
    get.add_argument("collection")
    get.add_argument("ids", nargs="+", metavar="ID")
    get.add_argument("--include-embedding", action="store_true")

    search = add_verb(
        commands, "search", search_documents, "the nearest documents to a vector or a document, and/or by keywords"
    )
    search.add_argument("collection")
    query = search.add_mutually_exclusive_group()
    query.add_argument("--vector", metavar="JSON", help="the query embedding as a JSON array ('-' reads stdin)")
    query.add_argument("--vector-file", type=Path, metavar="FILE", help="a file holding the JSON array ('-': stdin)")
    query.add_argument("--like", metavar="ID", help="documents nearest to this one (itself left out)")
    search.add_argument(
        "--text",
        metavar="QUERY",
        help='keywords ("quoted phrases", OR, -excluded) on a collection created with --text-search: alone, '
        "a keyword search; with a vector or --like, a hybrid search fusing both rankings",
    )
    search.add_argument("--top-k", type=int, default=10, metavar="K")
    search.add_argument("--filter", help=FILTER_HELP)
    search.add_argument("--min-similarity", type=float, help="leave out hits scoring below this")
    search.add_argument("--include-embedding", action="store_true")
    search.add_argument("--exact", action="store_true", help="scan every document: the true nearest, slowly")
    search.add_argument(
        "--rerank-factor",
        type=int,
        metavar="N",
        help="candidates per hit a halfvec or bit index returns for exact re-ranking (default: the collection's)",
    )
    search.add_argument(
        "--probes",
        type=int,
        metavar="N",
        help="lists of an IVFFlat index to visit first (default: the square root of its lists)",
    )
    search.add_argument(
        "--read-from-primary", action="store_true", help="read the primary, not a replica (see your own writes)"
    )

    delete = add_verb(commands, "delete", delete_documents, "delete documents by id, by filter, or all")
    delete.add_argument("collection")
    delete.add_argument("ids", nargs="*", metavar="ID")
    which = delete.add_mutually_exclusive_group()
    which.add_argument("--filter", help=FILTER_HELP + "; asks first, unless --yes")
    which.add_argument("--all", action="store_true", help="every document; asks first, unless --yes")
    delete.add_argument("--yes", action="store_true", help="do not ask (required when stdin is not a terminal)")


def parse_filter(text: str | None) -> document_pb2.Filter | None:
    """The ``--filter`` option, checked here so that a mistake is a usage error, not a server one."""
    if text is None:
        return None
    try:
        return to_filter_pb(parse_json_option(text, "--filter"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise usage_error(f"--filter: {exc}") from None


def count_documents(args: argparse.Namespace) -> int:
    selection = parse_filter(args.filter)
    with Connection.from_args(args).client() as client:
        count = client.count(args.collection, selection)
    if args.json:
        write_json({"collection": args.collection, "count": count})
    else:
        print(count)
    return OK


def get_documents(args: argparse.Namespace) -> int:
    with Connection.from_args(args).client() as client:
        documents = client.get(args.collection, args.ids, include_embedding=args.include_embedding)
    records = [document_record(d, with_embedding=args.include_embedding) for d in documents]
    if args.json:
        for record in records:
            write_json(record)
    elif records:
        headers = ["id", "content", "metadata", *(["embedding"] if args.include_embedding else [])]
        write_table(headers, [[r[h] for h in headers] for r in records])
    found = {r["id"] for r in records}
    missing = [doc_id for doc_id in args.ids if doc_id not in found]
    if missing:
        sys.stdout.flush()
        raise not_found(f"no document {', '.join(map(repr, missing))} in collection {args.collection!r}")
    return OK


def _read_vector(args: argparse.Namespace) -> Any:
    if args.vector_file is not None:
        option = "--vector-file"
        source = sys.stdin if str(args.vector_file) == "-" else None
        try:
            text = source.read() if source else args.vector_file.read_text()
        except OSError as exc:
            raise usage_error(f"--vector-file: cannot read {str(args.vector_file)!r}: {exc.strerror}") from None
    else:
        option = "--vector"
        text = sys.stdin.read() if args.vector == "-" else args.vector
    value = parse_json_option(text, option)
    if isinstance(value, dict) and "embedding" in value:  # a record of `get --json` or `export`
        value = value["embedding"]
    if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
        raise usage_error(f"{option}: expected a non-empty JSON array of numbers")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _like(client: Client, collection: str, doc_id: str) -> Any:
    documents = client.get(collection, [doc_id], include_embedding=True)
    if not documents:
        raise not_found(f"no document {doc_id!r} in collection {collection!r}")
    if documents[0].embedding is None:
        raise usage_error(f"document {doc_id!r} has no embedding to search with")
    return documents[0].embedding


def search_documents(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise usage_error("--top-k must be at least 1")
    if not (args.vector or args.vector_file or args.like or args.text):
        raise usage_error("give the query: --vector, --vector-file, --like and/or --text")
    selection = parse_filter(args.filter)
    vector = None if args.like or not (args.vector or args.vector_file) else _read_vector(args)
    with Connection.from_args(args).client() as client:
        if args.like:
            vector = _like(client, args.collection, args.like)
        hits = client.search(
            args.collection,
            vector,
            top_k=args.top_k + (1 if args.like else 0),
            filter=selection,
            min_similarity=args.min_similarity,
            include_embedding=args.include_embedding,
            query_text=args.text,
            exact=args.exact,
            rerank_factor=args.rerank_factor,
            probes=args.probes,
            read_from_primary=args.read_from_primary,
        )
    shown = [h for h in hits if h.id != args.like][: args.top_k] if args.like else hits
    with_text = args.text is not None
    records = [hit_record(h, with_embedding=args.include_embedding, with_text=with_text) for h in shown]
    if args.json:
        write_json(records)
    else:
        headers = ["id", "score", "vector_score", "keyword_rank"] if with_text else ["id", "score", "distance"]
        headers += ["content", "metadata"]
        write_table(headers, [[r[h] for h in headers] for r in records])
    return OK


def delete_documents(args: argparse.Namespace) -> int:
    selection = parse_filter(args.filter)
    if not (args.ids or selection or args.all):
        raise usage_error("name the documents: IDs, --filter JSON or --all")
    if args.ids and args.all:
        raise usage_error("IDs and --all exclude each other")
    with Connection.from_args(args).client() as client:
        if not args.ids:  # a bulk delete: say how many first
            count = client.count(args.collection, selection)  # NOT_FOUND before asking
            what = "all" if args.all else "the matching"
            confirm(f"delete {what} {count:,} documents of {args.collection!r}", args.yes)
        deleted = client.delete(args.collection, args.ids or None, filter=selection, all_documents=args.all)
    if args.json:
        write_json({"collection": args.collection, "deleted": deleted})
    else:
        print(f"deleted {deleted:,} documents")
    return OK
