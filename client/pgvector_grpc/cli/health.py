"""`pgvector-grpc health`: exit 0 when the server reports SERVING (the container healthcheck).

Health needs no credential, but a TLS server needs a TLS channel: the command takes the same
connection options as every client verb."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from pgvector_grpc.cli.connection import Connection, add_connection_arguments
from pgvector_grpc.cli.output import add_json_argument, report, write_json
from pgvector_grpc.errors import PgvectorGrpcError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the health command (``--address`` is the older name of ``--server``)."""
    add_connection_arguments(parser, address_aliases=["--address"])
    parser.add_argument("--service", default="", help="service name (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0)
    add_json_argument(parser)


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the serving status; the exit status (0 only for SERVING)."""
    with Connection.from_args(args).client(timeout=args.timeout, retries=0) as client:
        try:
            status = client.health(args.service)
        except PgvectorGrpcError as exc:
            report(exc.code.name, exc.message, err)
            return 1
    if args.json:
        write_json({"status": status}, out)
    else:
        print(status, file=out)
    return 0 if status == "SERVING" else 1
