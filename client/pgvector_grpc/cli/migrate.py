"""`pgvector-grpc migrate`: ChromaDB collections (or a Haystack DocumentStore, with
``--from-haystack``) into pgvector-grpc, with progress and a report.

Exit status: 0 when every collection verified, 1 when a verification found differences (a
document missing, differing, or in the target but not in the source: ``--mirror`` deletes the
latter), 2 when a migration could not run (bad source, server error). With ``--json`` the
progress stays on stderr and each collection ends with one JSON Lines record on stdout: the source
summary, the verification report (null on a dry run) and the error (null unless it failed)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from typing import Any, TextIO

from pgvector_grpc_common.migration.events import Event, MigrationError, Progress, Report, SourceSummary
from pgvector_grpc_common.migration.options import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLE_SIZE, MigrationOptions
from pgvector_grpc_common.migration.sources.chroma import ChromaLocation, ChromaSource

from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.cli.client_target import migrate_locally
from pgvector_grpc.cli.connection import Connection, add_connection_arguments
from pgvector_grpc.cli.migrate_failure import error_record, report_failure
from pgvector_grpc.cli.output import add_json_argument, index_record, usage_error, write_json
from pgvector_grpc.cli.progress import ProgressView, describe, render
from pgvector_grpc.errors import PgvectorGrpcError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the migrate command."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-chroma", metavar="PATH_OR_URL", help="Chroma directory or server URL")
    source.add_argument(
        "--from-haystack",
        metavar="STORE_FILE",
        help="YAML file of a serialised Haystack DocumentStore (e.g. a PgvectorDocumentStore); needs --to",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--collection", action="append", metavar="NAME", help="a collection to migrate (repeatable)")
    which.add_argument("--all", action="store_true", help="every collection of the source")
    parser.add_argument("--to", default="", metavar="NAME", help="target collection (default: the source's name)")
    parser.add_argument(
        "--client-side",
        action="store_true",
        help="read Chroma on this machine and write through Ingest (when the server cannot see the source)",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be migrated; write nothing")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from the checkpoint (the default)")
    again.add_argument("--restart", action="store_true", help="ignore the checkpoint and copy everything again")
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="after the copy, delete the target documents whose ids are not in the source (whoever wrote them)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--verify-sample", type=int, default=DEFAULT_SAMPLE_SIZE, metavar="N")
    parser.add_argument("--tenant", default="")
    parser.add_argument("--database", default="")
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="HTTP header for Chroma")
    parser.add_argument("--dimension", type=int, default=0, help="with --from-haystack: the embedding dimension")
    add_connection_arguments(parser)
    add_json_argument(parser)


def source_record(summary: SourceSummary) -> dict[str, Any]:
    """The source summary as a JSON object."""
    return {**asdict(summary), "index": index_record(summary.index)}


def report_record(report: Report) -> dict[str, Any]:
    """The verification report as a JSON object, with its verdict as ``ok``."""
    return {"ok": report.ok, **asdict(report)}


def _headers(pairs: list[str]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise usage_error(f"--header must be NAME=VALUE, got {pair!r}")
        headers[name.strip()] = value.strip()
    return headers


async def _events(
    client: AsyncClient, args: argparse.Namespace, location: ChromaLocation, name: str
) -> AsyncIterator[Event]:
    options = MigrationOptions(
        target=args.to,
        dry_run=args.dry_run,
        restart=args.restart,
        batch_size=args.batch_size,
        verify_sample_size=args.verify_sample,
        mirror=args.mirror,
    )
    if args.client_side:
        async for event in migrate_locally(client, location, name, options):
            yield event
        return
    async for event in client.migrate(
        location.path or str(location.url),
        name,
        target=args.to,
        tenant=args.tenant,
        database=args.database,
        headers=location.headers,
        dry_run=args.dry_run,
        restart=args.restart,
        batch_size=args.batch_size,
        verify_sample_size=args.verify_sample,
        mirror=args.mirror,
    ):
        yield event


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    location = ChromaLocation.parse(
        args.from_chroma, tenant=args.tenant, database=args.database, headers=_headers(args.header)
    )
    if location.path is not None:
        # The server resolves nothing against its own working directory: send where the path is here.
        location = replace(location, path=os.path.abspath(os.path.expanduser(location.path)))
    names = args.collection
    if args.all:
        with ChromaSource(location) as source:  # listing needs the source on this machine too
            names = source.collection_names()
    if args.to and len(names) > 1:
        raise usage_error("--to names one target: use it with a single --collection")
    status = 0
    view = ProgressView(err)
    async with Connection.from_args(args).async_client(timeout=60.0) as client:
        for name in names:
            record: dict[str, Any] = {"collection": name, "source": None, "report": None, "error": None}
            try:
                async for event in _events(client, args, location, name):
                    if isinstance(event, SourceSummary):
                        record["source"] = source_record(event)
                        if not args.json:
                            print(describe(event), file=out, flush=True)
                    elif isinstance(event, Progress):
                        view.show(name, event)
                    else:
                        record["report"] = report_record(event)
                        if not args.json:
                            print(render(event), file=out, flush=True)
                        status = max(status, 0 if event.ok else 1)
            except (MigrationError, PgvectorGrpcError) as exc:
                report_failure(exc, err, name)
                record["error"] = error_record(exc)
                status = 2
            if args.json:
                write_json(record, out)
                out.flush()
    return status


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the migrate command; the exit status (usage errors and interruptions are reported by
    output.run_reporting_errors, which runs it)."""
    if args.from_haystack:
        from pgvector_grpc.cli.haystack import run as copy_from_haystack

        return copy_from_haystack(args, out, err)
    if not (args.collection or args.all):
        raise usage_error("--from-chroma needs --collection NAME (repeatable) or --all")
    try:
        return asyncio.run(_run(args, out, err))
    except MigrationError as exc:
        report_failure(exc, err)
        return 2
