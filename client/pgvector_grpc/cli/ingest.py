"""``pgvector-grpc ingest COLLECTION FILE``: JSON Lines or Parquet through the Ingest stream.

Without ``--checkpoint-key`` the whole file goes through one stream, batches in flight. With it,
each batch is its own call carrying the number of records read so far as its checkpoint, which
the server commits with the batch: a re-run asks for the checkpoint and skips exactly the
acknowledged prefix (so even ``--on-conflict fail`` can resume)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from pgvector_grpc.cli.connection import Connection
from pgvector_grpc.cli.files import STDIO, DocumentReader, open_reader
from pgvector_grpc.cli.meter import Meter
from pgvector_grpc.cli.output import OK, CliError, usage_error, write_json
from pgvector_grpc.cli.verb import add_verb
from pgvector_grpc.errors import DeadlineExceededError, PgvectorGrpcError, UnavailableError
from pgvector_grpc.sync import Client
from pgvector_grpc.types import Document, IngestAck, IngestSummary


def mount(commands: Any) -> None:
    """Add ``ingest`` to the top-level subcommands."""
    ingest = add_verb(
        commands, "ingest", ingest_file, "load documents from a JSON Lines or Parquet file (e.g. an export)"
    )
    ingest.add_argument("collection", help="an existing collection")
    ingest.add_argument("file", help="FILE.jsonl, FILE.parquet, or - for JSON Lines on stdin")
    ingest.add_argument("--format", choices=("jsonl", "parquet"), help="instead of the file's extension")
    ingest.add_argument("--batch-size", type=int, default=500, metavar="N", help="documents per batch (500)")
    ingest.add_argument("--on-conflict", choices=("upsert", "skip", "fail"), default="upsert")
    ingest.add_argument(
        "--checkpoint-key",
        metavar="KEY",
        help="save progress under KEY with every batch; a re-run with the same KEY skips what was acknowledged",
    )
    ingest.add_argument("--restart", action="store_true", help="with --checkpoint-key: ignore saved progress")


def _documents(reader: DocumentReader, skip: int, failure: list[CliError]) -> Iterator[Document]:
    """The documents of the file; a bad record ends them, kept in ``failure`` (raising inside the
    request stream would only cancel it, losing the reason)."""
    try:
        for doc, _ in reader.documents(skip):
            yield doc
    except CliError as exc:
        failure.append(exc)


def _saved_position(client: Client, args: argparse.Namespace) -> int:
    if not args.checkpoint_key or args.restart:
        return 0
    value = client.get_checkpoint(args.collection, args.checkpoint_key)
    if value is None:
        return 0
    try:
        return int(json.loads(value)["records"])
    except (ValueError, KeyError, TypeError):
        raise usage_error(f"checkpoint {args.checkpoint_key!r} was not saved by `ingest`; use another key") from None


def _stream_all(client: Client, args: argparse.Namespace, reader: DocumentReader, meter: Meter) -> IngestSummary:
    failure: list[CliError] = []

    def acknowledged(ack: IngestAck) -> None:
        meter.advance(ack.inserted + ack.updated + ack.skipped)

    try:
        summary = client.ingest(
            args.collection,
            _documents(reader, 0, failure),
            batch_size=args.batch_size,
            on_conflict=args.on_conflict,
            on_ack=acknowledged,
        )
    except PgvectorGrpcError as exc:
        if exc.acknowledged is not None:
            exc.message += f" ({exc.acknowledged.documents:,} documents were acknowledged before it)"
        raise
    if failure:
        raise CliError(
            failure[0].code,
            f"{failure[0].message}; the {summary.documents:,} documents before it were ingested",
            failure[0].status,
        )
    return summary


def _batches_with_checkpoints(
    client: Client, args: argparse.Namespace, reader: DocumentReader, start: int, meter: Meter
) -> IngestSummary:
    summary = IngestSummary()
    position = start
    records = reader.documents(start)
    name = "stdin" if args.file == STDIO else Path(args.file).name
    while batch := list(islice(records, args.batch_size)):
        documents = [doc for doc, _ in batch]
        checkpoint = json.dumps({"records": position + len(documents), "file": name})
        try:
            done = client.ingest(
                args.collection,
                documents,
                batch_size=len(documents),
                on_conflict=args.on_conflict,
                checkpoint=(args.checkpoint_key, checkpoint),
            )
        except PgvectorGrpcError as exc:
            exc.message += f" (in the batch of {batch[0][1]} to {batch[-1][1]}; {position:,} records acknowledged)"
            raise
        summary = IngestSummary(
            summary.batches + done.batches,
            summary.inserted + done.inserted,
            summary.updated + done.updated,
            summary.skipped + done.skipped,
        )
        position += len(documents)
        meter.advance(len(documents))
    return summary


def ingest_file(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise usage_error("--batch-size must be at least 1")
    if args.restart and not args.checkpoint_key:
        raise usage_error("--restart goes with --checkpoint-key")
    reader = open_reader(args.file, args.format)
    with Connection.from_args(args).client(timeout=120.0) as client:
        client.get_collection(args.collection)  # NOT_FOUND before reading anything
        start = _saved_position(client, args)
        meter = Meter(f"{args.collection}: ingest", reader.total, resumed_from=start)
        try:
            if args.checkpoint_key:
                summary = _batches_with_checkpoints(client, args, reader, start, meter)
            else:
                summary = _stream_all(client, args, reader, meter)
        except (CliError, PgvectorGrpcError) as exc:
            meter.finish()
            if args.checkpoint_key:
                # A refused record needs fixing; a lost server or an expired call needs only a re-run.
                transient = isinstance(exc, UnavailableError | DeadlineExceededError)
                advice = "re-run" if transient else "fix it and re-run"
                exc.message += f"; {advice} with --checkpoint-key {args.checkpoint_key} to resume"
            raise
    meter.finish()
    result = {
        "collection": args.collection,
        "file": args.file,
        "resumed_from": start,
        "documents": summary.documents,
        "inserted": summary.inserted,
        "updated": summary.updated,
        "skipped": summary.skipped,
        "batches": summary.batches,
    }
    if args.json:
        write_json(result)
    else:
        resumed = f" after the first {start:,} (checkpoint {args.checkpoint_key})" if start else ""
        print(
            f"ingested {summary.documents:,} documents into {args.collection}{resumed}: "
            f"{summary.inserted:,} inserted, {summary.updated:,} updated, {summary.skipped:,} skipped"
        )
    return OK
