"""The client verbs the ``pgvector-grpc`` command mounts, and how they run."""

from __future__ import annotations

import argparse
from typing import Any

from pgvector_grpc.cli import collections, documents, export, ingest
from pgvector_grpc.cli.output import EXIT_STATUSES, run_reporting_errors

__all__ = ["EXIT_STATUSES", "mount", "run"]


def mount(commands: Any) -> None:
    """Add ``collections``, ``count``, ``get``, ``search``, ``delete``, ``ingest`` and ``export``."""
    collections.mount(commands)
    documents.mount(commands)
    ingest.mount(commands)
    export.mount(commands)


def run(args: argparse.Namespace) -> int:
    """Run the verb the arguments name; its exit status."""
    return run_reporting_errors(args.verb, args)
