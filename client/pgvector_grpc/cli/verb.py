"""The one shape of every client verb: connection options, ``--json``, the exit statuses in its
help, and a function of the parsed arguments returning the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pgvector_grpc.cli.connection import add_connection_arguments
from pgvector_grpc.cli.output import EXIT_STATUSES, add_json_argument, usage_error

Verb = Callable[[argparse.Namespace], int]


def _common_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    add_connection_arguments(parser)
    add_json_argument(parser)
    return parser


def add_verb(commands: Any, name: str, verb: Verb, help: str, *, connects: bool = True) -> argparse.ArgumentParser:
    """A subcommand running ``verb`` (``connects``: it takes the connection options; all take ``--json``)."""
    if connects:
        parents = [_common_options()]
    else:
        parents = [argparse.ArgumentParser(add_help=False)]
        add_json_argument(parents[0])
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        parents=parents,
        help=help,
        description=help,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(verb=verb)
    return parser


def confirm(question: str, yes: bool) -> None:
    """Go on with ``--yes`` or a "y" typed at a terminal; a usage error otherwise."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise usage_error(f"{question}: refusing without --yes (stdin is not a terminal)")
    answer = input(f"{question}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise usage_error("not confirmed; nothing was deleted")
