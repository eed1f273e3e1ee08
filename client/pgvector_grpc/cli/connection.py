"""The connection options every client verb takes (`health`, `migrate`): where the server is, the
credential to send, and TLS. One definition, so that every verb reaches a locked-down server alike."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pgvector_grpc._base import ADDRESS_ENV, API_KEY_ENV, DEFAULT_ADDRESS, default_address
from pgvector_grpc.aio import AsyncClient
from pgvector_grpc.cli.output import usage_error
from pgvector_grpc.errors import PlaintextCredentialWarning
from pgvector_grpc.sync import Client

T = TypeVar("T")


def add_connection_arguments(parser: argparse.ArgumentParser, *, address_aliases: Sequence[str] = ()) -> None:
    """``--server`` (and ``address_aliases``), ``--api-key`` / ``--token``, ``--tls`` / ``--tls-ca``,
    ``--tls-cert`` / ``--tls-key`` and ``--tls-server-name``."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        *address_aliases,
        dest="server",
        metavar="HOST:PORT",
        help=f"the server (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
    )
    credential = group.add_mutually_exclusive_group()
    credential.add_argument(
        "--api-key",
        help=f"API key (default: ${API_KEY_ENV}; prefer the variable, other users can see a command's arguments)",
    )
    credential.add_argument("--token", help="a JWT to send instead of an API key")
    group.add_argument("--tls", action="store_true", help="use TLS, trusting the system's root certificates")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", help="use TLS, trusting the CA certificates in FILE")
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="client certificate (mTLS, with --tls-key)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="private key of --tls-cert (PEM)")
    group.add_argument(
        "--tls-server-name", metavar="NAME", help="the name in the server's certificate, when the address differs"
    )


@dataclass(frozen=True)
class Connection:
    """The connection options of a command line, ready for a client (files already read)."""

    address: str
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    tls: bool | bytes = False
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    tls_server_name: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connection:
        """The options of ``args``; a usage error when they are unusable."""
        try:
            return cls._from_args(args)
        except ValueError as exc:
            raise usage_error(str(exc)) from None

    @classmethod
    def _from_args(cls, args: argparse.Namespace) -> Connection:
        if (args.tls_cert is None) != (args.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if args.tls_server_name and not (args.tls or args.tls_ca or args.tls_cert):
            raise ValueError("--tls-server-name needs --tls, --tls-ca or --tls-cert")
        return cls(
            address=default_address(args.server),
            api_key=args.api_key,
            token=args.token,
            tls=_read(args.tls_ca, "--tls-ca") if args.tls_ca else bool(args.tls),
            client_cert=_read(args.tls_cert, "--tls-cert") if args.tls_cert else None,
            client_key=_read(args.tls_key, "--tls-key") if args.tls_key else None,
            tls_server_name=args.tls_server_name,
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls is not False or self.client_cert is not None

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments of Client / AsyncClient for this connection."""
        return {
            "api_key": self.api_key,
            "token": self.token,
            "tls": self.tls,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "tls_server_name": self.tls_server_name,
        }

    def client(self, **options: Any) -> Client:
        """A blocking client (``options``: timeout, retries, ...)."""
        return _warning_in_one_line(lambda: Client(self.address, **self.client_arguments(), **options))

    def async_client(self, **options: Any) -> AsyncClient:
        """An asyncio client (``options``: timeout, retries, ...)."""
        return _warning_in_one_line(lambda: AsyncClient(self.address, **self.client_arguments(), **options))


def _warning_in_one_line(create: Callable[[], T]) -> T:
    """``create()``, printing a plaintext-credential warning as one line of the command's own."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlaintextCredentialWarning)
        created = create()
    for warning in caught:
        print(f"pgvector-grpc: warning: {warning.message}", file=sys.stderr)
    return created


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{option}: cannot read {str(path)!r}: {exc.strerror}") from None
