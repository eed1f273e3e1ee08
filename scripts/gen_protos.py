"""Generate the Python code of protos/ into client/pgvector_grpc/v1 (or into --out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = Path("pgvector_grpc") / "v1"


def generate(out: Path) -> list[Path]:
    """Run protoc on every .proto file and write the package __init__; return the files written."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PACKAGE).glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent  # the mypy-protobuf plugins live next to this interpreter
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        *sources,
    ]
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    init = out / PACKAGE / "__init__.py"
    init.write_text('"""Generated from protos/pgvector_grpc/v1 by scripts/gen_protos.py. Do not edit."""\n')
    return sorted((out / PACKAGE).iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "client", help="output root (default: client/)")
    written = generate(parser.parse_args().out)
    print(f"wrote {len(written)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
