"""`pgvector-grpc migrate --from-haystack STORE_FILE --to NAME`: copy a Haystack DocumentStore.

STORE_FILE is a YAML (or JSON) file holding a document store as Haystack serialises it, the
``document_store`` block of a pipeline file: ``{"type": "...PgvectorDocumentStore",
"init_parameters": {...}}``. Its secrets are read from the environment as usual.
Exit status: 0 when every document verified, 1 when verification found differences (including
target documents the source does not hold, which ``--mirror`` deletes), 2 when the copy could not
run, reported as a migration from Chroma is: ``pgvector-grpc: CODE: TARGET: message`` on stderr.
With ``--json``, one JSON document on stdout: the source, the target, the report (null on a dry
run) and the error (null unless the copy failed)."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import yaml
from haystack.core.errors import DeserializationError
from haystack.core.serialization import import_class_by_name
from haystack.document_stores.types import DocumentStore
from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from haystack_integrations.document_stores.pgvector_grpc.copy import CopyProgress, CopyReport, copy_documents
from pgvector_grpc_common.migration.events import MigrationError
from pgvector_grpc_common.migration.sources.haystack import HaystackSource

from pgvector_grpc.cli.connection import Connection
from pgvector_grpc.cli.migrate_failure import error_record, report_failure
from pgvector_grpc.cli.output import usage_error, write_json
from pgvector_grpc.cli.progress import reconciliation
from pgvector_grpc.errors import PgvectorGrpcError

# the reasons of failures found on this side, where a server's refusal has its status code
STORE_UNREADABLE = "HAYSTACK_STORE_UNREADABLE"
COPY_FAILED = "HAYSTACK_COPY_FAILED"


def load_store(path: Path) -> DocumentStore:
    """The document store a serialised file describes; a MigrationError (``HAYSTACK_STORE_UNREADABLE``)
    when the file cannot be read or does not describe a store Haystack can build."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise MigrationError(f"cannot read {str(path)!r}: {exc.strerror}", STORE_UNREADABLE) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MigrationError(f"{path} is not YAML or JSON: {exc}", STORE_UNREADABLE) from None
    if isinstance(data, dict) and "document_store" in data.get("init_parameters", {}):
        data = data["init_parameters"]["document_store"]  # a component's block works too
    if not isinstance(data, dict) or "type" not in data:
        raise MigrationError(
            f"{path} does not describe a document store (expected 'type' and 'init_parameters')", STORE_UNREADABLE
        )
    try:
        cls: Any = import_class_by_name(data["type"])
        return cls.from_dict(data)  # type: ignore[no-any-return]
    except (ImportError, DeserializationError, ValueError, TypeError) as exc:
        raise MigrationError(f"{path}: cannot build {data['type']}: {exc}", STORE_UNREADABLE) from None


def render(report: CopyReport) -> str:
    """The final report."""
    status = "OK" if report.ok else "DIFFERENCES FOUND"
    lines = [
        f"verification: {status}",
        f"  source documents: {report.source_count:,}  copied: {report.copied - report.resumed_from:,}"
        f" (resumed at {report.resumed_from:,})  in target: {report.target_count:,}",
        f"  compared field by field: {report.compared:,}  differing: {report.mismatch_count:,}",
    ]
    lines += [f"  differs: {m}" for m in report.mismatches]
    lines += reconciliation(report.extra_count, report.extra_ids, report.deleted_count)
    return "\n".join(lines)


def _store_connection(args: argparse.Namespace) -> dict[str, Any]:
    """The target store's connection arguments from the command line's connection options."""
    connection = Connection.from_args(args)  # checks the options as for every verb
    if connection.tls_server_name:
        raise usage_error("--tls-server-name is not supported with --from-haystack")
    arguments: dict[str, Any] = {
        "address": Secret.from_token(connection.address),
        "tls": connection.uses_tls,
        "tls_ca_file": str(args.tls_ca) if args.tls_ca else None,
        "tls_client_cert_file": str(args.tls_cert) if args.tls_cert else None,
        "tls_client_key_file": str(args.tls_key) if args.tls_key else None,
    }
    credential = connection.api_key or connection.token
    if credential:
        arguments["api_key"] = Secret.from_token(credential)
    return arguments


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the copy; the exit status."""
    if not args.to:
        raise usage_error("--from-haystack needs --to NAME (the target collection)")
    store_connection = _store_connection(args)
    document: dict[str, Any] = {"source": None, "target": args.to, "report": None, "error": None}
    try:
        source = load_store(Path(args.from_haystack))
        with HaystackSource(source, dimension=args.dimension or None) as reader:
            described = reader.describe()
        dimension, metric = described.dimension, described.metric
        about = {"type": type(source).__name__, "count": described.count, "dimension": dimension, "metric": metric}
        document["source"] = about
        if not args.json:
            print(
                f"source: {type(source).__name__}, {described.count:,} documents, dimension {dimension}, "
                f"metric {metric} -> collection {args.to!r} on {store_connection['address'].resolve_value()}",
                file=out,
                flush=True,
            )
        if args.dry_run:
            if args.json:
                write_json(document, out)
            return 0
        target = PgvectorGrpcDocumentStore(
            **store_connection, collection=args.to, embedding_dimension=dimension, metric=metric
        )
        last = [0.0]

        def show(p: CopyProgress) -> None:
            if time.monotonic() - last[0] >= 1.0 or p.copied >= p.total:
                last[0] = time.monotonic()
                print(f"{args.to}: {p.copied:,}/{p.total:,} {p.rate:,.0f}/s", file=err, flush=True)

        report = copy_documents(
            source, target, batch_size=args.batch_size, restart=args.restart, mirror=args.mirror, on_progress=show
        )
    except (ValueError, OSError, ImportError) as exc:  # the stores' own, e.g. for a document with a blob
        return _failed(MigrationError(str(exc), COPY_FAILED), document, args, out, err)
    except (MigrationError, PgvectorGrpcError) as exc:
        return _failed(exc, document, args, out, err)
    if args.json:
        write_json({**document, "report": {"ok": report.ok, **asdict(report)}}, out)
    else:
        print(render(report), file=out, flush=True)
    return 0 if report.ok else 1


def _failed(
    error: MigrationError | PgvectorGrpcError,
    document: dict[str, Any],
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> int:
    """Report a copy that could not run, as a migration from Chroma does; its exit status."""
    report_failure(error, err, args.to)
    if args.json:
        write_json({**document, "error": error_record(error)}, out)
    return 2
