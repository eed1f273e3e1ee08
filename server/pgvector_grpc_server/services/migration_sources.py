"""Which Chroma sources a caller may make the server read: directories under the operator's roots,
URLs of allowlisted hosts; and how much a directory copy may take of the temp dir's disk."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pgvector_grpc_common.migration.sources.chroma import DEFAULT_HTTP_TIMEOUT_SECONDS
from pgvector_grpc_common.migration.sources.source_tree import is_within

from pgvector_grpc_server.domain.errors import (
    Aborted,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    PermissionDenied,
)

DEFAULT_PORTS = {"http": 8000, "https": 443}  # chromadb.HttpClient's own defaults
# Chroma may rewrite the copy while upgrading it to its own format.
COPY_GROWTH_ALLOWANCE = 0.1
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class AllowedHost:
    """One entry of the host allowlist: a host name or IP literal and a port."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        """``HOST`` or ``HOST:PORT`` (IPv6 literals in brackets)."""
        parts = urlsplit(f"//{entry.strip()}")
        if not parts.hostname:
            raise ValueError(f"not a HOST[:PORT]: {entry!r}")
        return cls(_normal_host(parts.hostname), parts.port)

    def allows(self, host: str, port: int, default_port: int) -> bool:
        """Without a port the entry allows the scheme's default port only."""
        return host == self.host and port == (self.port if self.port is not None else default_port)


def _normal_host(host: str) -> str:
    return host.lower().rstrip(".")


@dataclass(frozen=True)
class SourcePolicy:
    """What the operator allows Migrate to read.

    ``roots``: directories (resolved) under which a Chroma directory may be; none = no directories.
    ``allowed_hosts``: hosts a Chroma URL may name; none = no URLs. ``max_bytes`` caps one
    directory (0 = only the disk limit); ``min_free_bytes`` must stay free in the temp dir after
    every copy in flight; ``http_timeout`` bounds each request to a Chroma server."""

    roots: tuple[Path, ...] = ()
    allowed_hosts: tuple[AllowedHost, ...] = ()
    max_bytes: int = 0
    min_free_bytes: int = 512 * 2**20
    http_timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS

    @classmethod
    def of(
        cls,
        roots: Sequence[Path],
        allowed_hosts: Sequence[str],
        max_bytes: int,
        min_free_bytes: int,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
    ) -> SourcePolicy:
        """A policy from settings: roots are resolved now (a root that is a link is its target)."""
        return cls(
            tuple(Path(os.path.realpath(root.expanduser())) for root in roots),
            tuple(AllowedHost.parse(entry) for entry in allowed_hosts),
            max_bytes,
            min_free_bytes,
            http_timeout,
        )

    def check_url(self, url: str, headers: Mapping[str, str]) -> None:
        """Refuse a URL this server may not fetch, before any name lookup or connection."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise InvalidArgument.of("chroma.url", "only http:// and https:// URLs", "URL_SCHEME")
        try:
            port = parts.port
        except ValueError:
            raise InvalidArgument.of("chroma.url", "the port is not a number from 0 to 65535", "URL_INVALID") from None
        host = _normal_host(parts.hostname or "")
        if parts.username is not None or parts.password is not None:
            raise InvalidArgument.of("chroma.url", "put credentials in headers, not in the URL", "URL_INVALID")
        if not (_HOST_NAME.fullmatch(host) or _is_ip_literal(host)):
            raise InvalidArgument.of("chroma.url", "the host is not a DNS name or an IP address", "URL_INVALID")
        for name in headers:
            if not _HEADER_NAME.fullmatch(name) or name.lower() in _FORBIDDEN_HEADERS:
                raise InvalidArgument.of("chroma.headers", f"header {name!r} may not be set", "HEADER_NOT_ALLOWED")
        if not self.allowed_hosts:
            raise PermissionDenied(
                "this server migrates from no Chroma URL (its operator allows hosts with --migrate-allow-host); "
                "run the migration with --client-side instead",
                "HOST_NOT_ALLOWED",
            )
        default_port = DEFAULT_PORTS[parts.scheme]
        effective_port = default_port if port is None else port
        if not any(entry.allows(host, effective_port, default_port) for entry in self.allowed_hosts):
            raise PermissionDenied(
                f"{host}:{effective_port} is not a Chroma host this server may connect to (--migrate-allow-host)",
                "HOST_NOT_ALLOWED",
            )

    def directory(self, requested: str) -> Path:
        """The resolved Chroma directory a caller names, if it lies under a root.

        A path outside every root gets the same error whether or not it exists."""
        if "\0" in requested:
            raise InvalidArgument.of("chroma.path", "the path contains a NUL character", "PATH_INVALID")
        if not os.path.isabs(requested):
            raise InvalidArgument.of(
                "chroma.path", "give an absolute path (the migrate command resolves relative ones)", "PATH_RELATIVE"
            )
        resolved = Path(os.path.realpath(requested))
        if not is_within(resolved, self.roots):
            where = ", ".join(map(str, self.roots)) or "none are configured"
            raise PermissionDenied(
                f"{requested} is outside the directories this server may read ({where}; --migrate-root)",
                "PATH_NOT_ALLOWED",
            )
        try:
            is_directory = resolved.is_dir()
        except OSError as exc:  # e.g. a name longer than the file system allows (ENAMETOOLONG)
            raise InvalidArgument.of(
                "chroma.path", f"the server cannot look the path up: {exc.strerror}", "PATH_INVALID"
            ) from None
        if not is_directory:
            raise NotFound(f"Chroma directory {resolved} does not exist on the server", "CHROMA_SOURCE_NOT_FOUND")
        return resolved


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class DirectoryCopies:
    """One copy per source directory at a time, and only copies that fit the temp dir's free disk.

    A request for a directory being copied waits up to ``wait_seconds`` for it, then is ABORTED."""

    def __init__(self, policy: SourcePolicy, wait_seconds: float) -> None:
        self._policy = policy
        self._wait_seconds = wait_seconds
        self._in_use: dict[Path, asyncio.Event] = {}
        self._reserved: dict[Path, int] = {}

    @contextlib.asynccontextmanager
    async def claim(self, directory: Path) -> AsyncIterator[None]:
        """Hold ``directory`` for one copy: its snapshot's whole life."""
        while (holder := self._in_use.get(directory)) is not None:
            try:
                await asyncio.wait_for(holder.wait(), timeout=self._wait_seconds)
            except TimeoutError:
                raise Aborted(
                    f"{directory} is being read by another migration; retry when it has finished", "SOURCE_BUSY"
                ) from None
        self._in_use[directory] = asyncio.Event()
        try:
            yield
        finally:
            self._reserved.pop(directory, None)
            self._in_use.pop(directory).set()

    def reserve(self, directory: Path, size: int) -> None:
        """Count a claimed directory's copy against the disk, or refuse it when it would not fit."""
        limit = self._policy.max_bytes
        if limit and size > limit:
            raise LimitExceeded(
                f"{directory} holds {size} bytes, more than this server copies ({limit}; --migrate-max-bytes)",
                "SOURCE_TOO_LARGE",
            )
        temp = tempfile.gettempdir()
        free = shutil.disk_usage(temp).free - sum(self._reserved.values())
        needed = size + int(size * COPY_GROWTH_ALLOWANCE) + self._policy.min_free_bytes
        if needed > free:
            raise LimitExceeded(
                f"copying {directory} ({size} bytes) would leave less than {self._policy.min_free_bytes} bytes "
                f"free in {temp} (--migrate-min-free-bytes); free space there or migrate with --client-side",
                "NOT_ENOUGH_DISK",
            )
        self._reserved[directory] = int(size * (1 + COPY_GROWTH_ALLOWANCE))
