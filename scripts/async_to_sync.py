"""Generate the blocking twins of asyncio sources (the way psycopg generates its sync pool).

Each source is parsed with ``ast``, rewritten, printed with ``ast.unparse`` and formatted with
ruff:

- ``async def`` -> ``def``; ``await x`` -> ``x``; ``Awaitable[T]`` -> ``T``; ``async for`` /
  ``async with`` and async comprehensions -> their plain forms;
- names: the explicit ``NAMES`` map (``AsyncClient`` -> ``Client``, ``acall`` -> ``call``,
  ``AsyncIterator`` -> ``Iterator``, ``__aenter__`` -> ``__enter__``, ...), then any name ending in
  ``_async`` loses the suffix (``ingest_requests_async`` -> ``ingest_requests``,
  ``count_documents_async`` -> ``count_documents``);
- a union whose members become equal collapses (``Iterable[T] | AsyncIterable[T]`` ->
  ``Iterable[T]``), and names imported twice are imported once;
- the module docstring is the one given in ``TARGETS``; every other docstring and string is kept.

A source must hold no comments (``ast`` drops them): the reasons they would carry go into
docstrings, which both twins then show. Usage: ``python scripts/async_to_sync.py`` writes the
twins; ``--out DIR`` writes them under DIR instead (the freshness test compares those).
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NAMES = {
    "AsyncClient": "Client",
    "AsyncIterable": "Iterable",
    "AsyncIterator": "Iterator",
    "AsyncGenerator": "Generator",
    "AsyncStoreOperations": "StoreOperations",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "acall": "call",
    "aio_channel": "sync_channel",
    "async_client": "connect",
    "close_aio_channel": "close_sync_channel",
}


@dataclass(frozen=True)
class Target:
    """An asyncio source and the blocking module generated from it."""

    source: str
    output: str
    docstring: str


TARGETS = [
    Target(
        "client/pgvector_grpc/aio.py",
        "client/pgvector_grpc/sync.py",
        "The blocking client, :class:`Client`: the same methods and docstrings as ``AsyncClient``.",
    ),
    Target(
        "client/haystack_integrations/document_stores/pgvector_grpc/_async_operations.py",
        "client/haystack_integrations/document_stores/pgvector_grpc/_sync_operations.py",
        "The DocumentStore operations, blocking flavour: the same code and docstrings as the ``*_async`` ones.",
    ),
]


def sync_name(name: str) -> str:
    """The blocking twin of a name."""
    name = NAMES.get(name, name)
    return name.removesuffix("_async") if name.endswith("_async") else name


class AsyncToSync(ast.NodeTransformer):
    """Rewrites an asyncio module into its blocking twin."""

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        function = ast.FunctionDef(**{field: getattr(node, field) for field in node._fields})
        function.name = sync_name(node.name)
        return ast.copy_location(function, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.name = sync_name(node.name)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self.generic_visit(node)
        node.name = sync_name(node.name)
        return node

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.For:
        self.generic_visit(node)
        return ast.copy_location(ast.For(**{field: getattr(node, field) for field in node._fields}), node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.With:
        self.generic_visit(node)
        return ast.copy_location(ast.With(**{field: getattr(node, field) for field in node._fields}), node)

    def visit_Await(self, node: ast.Await) -> ast.expr:
        value: ast.expr = self.visit(node.value)
        return value

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "Awaitable":
            return node.slice
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.is_async = 0
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = sync_name(node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.Attribute:
        self.generic_visit(node)
        node.attr = sync_name(node.attr)
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom | None:
        seen: dict[str, ast.alias] = {}
        for alias in node.names:
            if alias.name == "Awaitable":  # every use is unwrapped
                continue
            renamed = ast.alias(sync_name(alias.name), alias.asname and sync_name(alias.asname))
            seen.setdefault(renamed.asname or renamed.name, renamed)
        node.names = list(seen.values())
        return node if node.names else None

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.op, ast.BitOr):
            return node
        members: dict[str, ast.expr] = {}
        for member in _union_members(node):
            members.setdefault(ast.dump(member), member)
        result, *rest = members.values()
        for member in rest:
            result = ast.BinOp(result, ast.BitOr(), member)
        return result


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def check_no_comments(source: str, path: str) -> None:
    """Refuse a source with comments: the generated twin would silently lose them."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            raise SystemExit(f"{path}:{token.start[0]}: comments are lost in generation; say it in a docstring")


def generate(target: Target) -> str:
    """The formatted text of a target's blocking module."""
    source = (ROOT / target.source).read_text()
    check_no_comments(source, target.source)
    module = AsyncToSync().visit(ast.parse(source))
    first = module.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        first.value.value = target.docstring
    header = (
        f"# Generated from {Path(target.source).name} by scripts/async_to_sync.py: DO NOT EDIT.\n"
        f"# Change {Path(target.source).name} and run `make generate`.\n"
    )
    return _ruff(header + ast.unparse(ast.fix_missing_locations(module)) + "\n", target.output)


def _ruff(text: str, path: str) -> str:
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
        text = subprocess.run(
            [ruff, *command, "--stdin-filename", str(ROOT / path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: the repository)")
    out: Path = parser.parse_args().out
    for target in TARGETS:
        path = out / target.output
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate(target))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
