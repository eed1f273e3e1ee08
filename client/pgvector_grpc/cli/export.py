"""``pgvector-grpc export COLLECTION FILE``: every document with every field, page by page, into
JSON Lines or Parquet; ``ingest`` restores it exactly (a logical backup).

The file is written under a temporary name and renamed when complete, so a FILE that exists is
a whole export."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from pgvector_grpc.cli.connection import Connection
from pgvector_grpc.cli.documents import FILTER_HELP, parse_filter
from pgvector_grpc.cli.files import STDIO, DocumentWriter, JsonLinesWriter, ParquetWriter, file_format
from pgvector_grpc.cli.meter import Meter
from pgvector_grpc.cli.output import FAILED, OK, CliError, usage_error, write_json
from pgvector_grpc.cli.verb import add_verb
from pgvector_grpc.sync import Client


def mount(commands: Any) -> None:
    """Add ``export`` to the top-level subcommands."""
    export = add_verb(
        commands, "export", export_collection, "write every document to JSON Lines or Parquet (restore with ingest)"
    )
    export.add_argument("collection")
    export.add_argument("file", help="FILE.jsonl, FILE.parquet, or - for JSON Lines on stdout")
    export.add_argument("--format", choices=("jsonl", "parquet"), help="instead of the file's extension")
    export.add_argument("--filter", help=FILTER_HELP)
    export.add_argument("--page-size", type=int, default=500, metavar="N", help="documents per List call (500)")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")


def _copy(client: Client, args: argparse.Namespace, writer: DocumentWriter, meter: Meter) -> int:
    written = 0
    documents = client.list(
        args.collection,
        filter=parse_filter(args.filter),
        page_size=args.page_size,
        include_embedding=True,
        order="insertion",  # a restore then writes them in the order they were first written
    )
    for doc in documents:
        writer.write(doc)
        written += 1
        meter.advance(1)
    return written


def export_collection(args: argparse.Namespace) -> int:
    if args.page_size < 1:
        raise usage_error("--page-size must be at least 1")
    kind = file_format(args.file, args.format)
    if kind == "parquet" and args.file == STDIO:
        raise usage_error("Parquet cannot go to stdout; name a file")
    target = Path(args.file)
    if args.file != STDIO and target.exists() and not args.force:
        raise usage_error(f"{args.file} exists; use --force to replace it")
    with Connection.from_args(args).client() as client:
        total = client.get_collection(args.collection).document_count  # NOT_FOUND before creating a file
        meter = Meter(f"{args.collection}: export", None if args.filter else total)
        if args.file == STDIO:
            written = _copy(client, args, JsonLinesWriter(sys.stdout), meter)
        else:
            written = _export_to_file(client, args, target, kind, meter)
    meter.finish()
    result = {"collection": args.collection, "file": args.file, "documents": written}
    if args.json and args.file != STDIO:
        write_json(result)
    elif args.file != STDIO:
        print(f"exported {written:,} documents of {args.collection} to {args.file}")
    return OK


def _export_to_file(client: Client, args: argparse.Namespace, target: Path, kind: str, meter: Meter) -> int:
    partial = target.with_name(f".{target.name}.partial")
    try:
        if kind == "parquet":
            writer: DocumentWriter = ParquetWriter(partial)
            written = _copy(client, args, writer, meter)
            writer.close()
        else:
            with partial.open("w", encoding="utf-8") as file:
                written = _copy(client, args, JsonLinesWriter(file), meter)
        os.replace(partial, target)
    except BaseException as exc:
        meter.finish()
        with suppress(OSError):
            partial.unlink()
        if isinstance(exc, OSError):
            raise CliError("WRITE_FAILED", f"cannot write {str(target)!r}: {exc.strerror or exc}", FAILED) from None
        raise
    return written
