"""Build the Chroma fixture stores of tests/data/chroma with old Chroma releases.

Each release runs in a throwaway virtual environment (created with uv), writes a small persistent
directory with explicit embeddings and an ``expected.json`` of exactly what was written. The
directories are committed; run this again only to add a release:

    python scripts/make_chroma_fixtures.py [--versions 0.4.24 0.5.23 0.6.3 0.3.29]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "chroma"
VERSIONS = ["0.3.29", "0.4.24", "0.5.23", "0.6.3"]

# Runs inside the old release's environment; only numpy and chromadb are available there.
WRITER = r"""
import json, sys
import numpy as np
import chromadb

version, path = sys.argv[1], sys.argv[2]
legacy = version.startswith("0.3.")
if legacy:
    from chromadb.config import Settings
    client = chromadb.Client(Settings(chroma_db_impl="duckdb+parquet", persist_directory=path, anonymized_telemetry=False))
else:
    client = chromadb.PersistentClient(path=path)

rng = np.random.default_rng(7)
expected = {"version": version, "collections": {}}
for name, space, dim, count in [("articles", "cosine", 8, 300), ("places-l2", "l2", 5, 120), ("scores_ip", "ip", 3, 60)]:
    collection = client.create_collection(name, metadata={"hnsw:space": space, "hnsw:M": 12, "hnsw:construction_ef": 80})
    ids = [f"{name}-{i:04d}" for i in range(count)]
    ids[1] = "ünïcødé-🙂-" + name
    ids[2] = "long-" + "x" * 300 + "-" + name
    embeddings = rng.standard_normal((count, dim)).astype(np.float32)
    documents = [None if i % 7 == 3 else f"document {i} of {name} — ✓" for i in range(count)]
    metadatas = []
    for i in range(count):
        meta = {"i": i, "ratio": i / 8 + 0.5, "even": i % 2 == 0, "tag": ["red", "green", "blue"][i % 3]}
        if i % 5 == 0:
            meta["whole_float"] = 2.0
        if i % 11 == 0:
            meta = {"only": "key"}
        elif legacy:  # 0.3 has no bool metadata
            meta["even"] = int(meta["even"])
        metadatas.append(meta)
    if legacy:  # 0.3 rejects None documents in a batch with others
        documents = [d if d is not None else "" for d in documents]
    for start in range(0, count, 50):
        end = start + 50
        collection.add(ids=ids[start:end], embeddings=embeddings[start:end].tolist(),
                       documents=documents[start:end], metadatas=metadatas[start:end])
    expected["collections"][name] = {
        "space": space, "dimension": dim, "ids": ids, "documents": documents, "metadatas": metadatas,
        "embeddings": embeddings.tolist(),
    }
if legacy:
    client.persist()
with open(path + "/expected.json", "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False)
"""


def build(version: str, workdir: Path) -> None:
    venv = workdir / f"venv-{version}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"chromadb=={version}"] + (["numpy<2"] if version < "0.6" else [])
    if version.startswith("0.3."):
        pins.append("duckdb==0.7.1")  # later duckdb releases break 0.3's queries
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *pins], check=True)
    target = OUT / version
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    subprocess.run([str(venv / "bin" / "python"), "-c", WRITER, version, str(target)], check=True, env=env)
    print(f"{version}: {sum(f.stat().st_size for f in target.rglob('*') if f.is_file()) // 1024} KiB in {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", nargs="+", default=VERSIONS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.versions:
            build(version, Path(tmp))


if __name__ == "__main__":
    main()
