"""A directory tree confined to allowed roots: scanned (links checked, sizes summed) before anything
is copied, then copied without following any link that was not checked.

The scan records every regular file by its resolved path and its (device, inode); the copy opens
exactly those paths with O_NOFOLLOW and refuses a file that is no longer the one scanned, so a
link or file swapped in between the scan and the copy is never read."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from pgvector_grpc_common.migration.events import MigrationError

COPY_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class TreeFile:
    """One regular file of a scanned tree: where it goes in the copy and what is read."""

    relative: PurePath
    real: Path
    size: int
    identity: tuple[int, int]


@dataclass(frozen=True)
class SourceTree:
    """A directory as scanned: its subdirectories and regular files, every one inside the roots."""

    directory: Path
    directories: tuple[PurePath, ...]
    files: tuple[TreeFile, ...]

    @property
    def size(self) -> int:
        """The bytes a copy takes."""
        return sum(f.size for f in self.files)


def is_within(path: Path, roots: Sequence[Path]) -> bool:
    """``path`` is one of ``roots`` or below one (both already resolved)."""
    return any(path.is_relative_to(root) for root in roots)


def scan_source_tree(directory: Path, roots: Sequence[Path]) -> SourceTree:
    """Walk a resolved directory; links are followed only when they stay inside ``roots``.

    MigrationError SYMLINK_OUTSIDE_ROOTS for a link that leaves them, SOURCE_NOT_REGULAR for a
    broken link, a device, socket or FIFO, SOURCE_LOOP for a link back to a directory above it."""
    directories: list[PurePath] = []
    files: list[TreeFile] = []
    pending = [(directory, PurePath(), frozenset({_identity(os.stat(directory))}))]
    while pending:
        real_dir, relative_dir, ancestors = pending.pop()
        with os.scandir(real_dir) as entries:
            for entry in entries:
                relative = relative_dir / entry.name
                real = Path(entry.path)
                if entry.is_symlink():
                    real = Path(os.path.realpath(entry.path))
                    if not is_within(real, roots):
                        raise MigrationError(
                            f"{entry.path} is a symbolic link to outside the directories this server may read",
                            "SYMLINK_OUTSIDE_ROOTS",
                        )
                try:
                    info = os.stat(real, follow_symlinks=False)
                except FileNotFoundError:
                    raise MigrationError(f"{entry.path} is a broken symbolic link", "SOURCE_NOT_REGULAR") from None
                if stat.S_ISDIR(info.st_mode):
                    if _identity(info) in ancestors:
                        raise MigrationError(f"{entry.path} links back to a directory above it", "SOURCE_LOOP")
                    directories.append(relative)
                    pending.append((real, relative, ancestors | {_identity(info)}))
                elif stat.S_ISREG(info.st_mode):
                    files.append(TreeFile(relative, real, info.st_size, _identity(info)))
                else:
                    raise MigrationError(f"{entry.path} is not a regular file or directory", "SOURCE_NOT_REGULAR")
    return SourceTree(directory, tuple(directories), tuple(files))


def copy_source_tree(tree: SourceTree, into: Path) -> None:
    """Copy exactly the scanned files into a new directory ``into``; MigrationError SOURCE_CHANGED
    when a file is no longer the one scanned or has grown since."""
    into.mkdir(mode=0o700)
    for relative in sorted(tree.directories, key=lambda p: len(p.parts)):
        (into / relative).mkdir(mode=0o700)
    for file in tree.files:
        _copy_file(file, into / file.relative)


def _copy_file(file: TreeFile, destination: Path) -> None:
    # O_NONBLOCK: a FIFO swapped in after the scan must not block the open.
    source = os.open(file.real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode) or _identity(info) != file.identity:
            raise MigrationError(f"{file.real} changed while it was being copied", "SOURCE_CHANGED")
        with open(destination, "xb") as target:
            remaining = file.size
            while chunk := os.read(source, COPY_CHUNK_BYTES):
                remaining -= len(chunk)
                if remaining < 0:
                    raise MigrationError(
                        f"{file.real} grew while it was being copied: stop the application writing to it",
                        "SOURCE_CHANGED",
                    )
                target.write(chunk)
    finally:
        os.close(source)


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino
