"""`python -m benchmarks` (= `make bench`): every figure next to its reference, as a ratio."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from benchmarks import (
    auth,
    compact,
    haystack_store,
    hybrid,
    indexed_ingest,
    ingest,
    migrate,
    replicas,
    search,
    soak,
    tenants,
    transport,
    workers,
)
from benchmarks.chart import write_chart
from benchmarks.harness import environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest-docs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--search-docs", type=int, default=50_000)
    parser.add_argument("--search-dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--migrate-docs", type=int, default=100_000)
    parser.add_argument("--migrate-dim", type=int, default=384)
    parser.add_argument("--haystack-docs", type=int, default=20_000)
    parser.add_argument("--haystack-dim", type=int, default=384)
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--soak-ingest-docs", type=int, default=1_000_000)
    parser.add_argument("--hybrid-docs", type=int, default=20_000)
    parser.add_argument("--hybrid-dim", type=int, default=384)
    parser.add_argument("--indexed-docs", type=int, default=20_000)
    parser.add_argument("--indexed-dim", type=int, default=384)
    parser.add_argument("--indexed-batch", type=int, default=500)
    parser.add_argument(
        "--indexed-windows", type=int, nargs="*", default=[1], help="batches in flight to compare with the default"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the queries/s comparison")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--qps-seconds", type=float, default=5.0)
    parser.add_argument("--replica-docs", type=int, default=20_000, help="documents of the replicas comparison")
    parser.add_argument("--replica-clients", type=int, default=16, help="concurrent callers of the replicas comparison")
    parser.add_argument("--compact-docs", type=int, default=100_000)
    parser.add_argument("--compact-dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument("--compact-queries", type=int, default=500)
    parser.add_argument("--transport-docs", type=int, default=20_000)
    parser.add_argument("--transport-callers", type=int, default=8, help="closed-loop callers of the CPU comparison")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--chart", type=Path, default=Path("bench-ratios.png"), help="where to draw the ratios (PNG)")
    parser.add_argument("--no-chart", action="store_true", help="print the table only")
    parser.add_argument(
        "--only",
        choices=[
            "ingest",
            "indexed",
            "workers",
            "search",
            "hybrid",
            "migrate",
            "haystack",
            "auth",
            "tenants",
            "soak",
            "replicas",
            "compact",
            "transport",
        ],
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    results = []
    with environment() as (conninfo, address):
        if args.only in (None, "ingest"):
            results += ingest.run(conninfo, address, args.ingest_docs, tuple(args.dims), args.repeats)
        if args.only in (None, "indexed"):
            results += indexed_ingest.run(
                conninfo,
                address,
                args.indexed_docs,
                args.indexed_dim,
                args.indexed_batch,
                args.repeats,
                tuple(args.indexed_windows),
            )
        if args.only in (None, "workers"):
            results += workers.run(
                conninfo,
                address,
                args.search_docs,
                args.search_dim,
                args.workers,
                tuple(args.clients),
                args.qps_seconds,
            )
        if args.only in (None, "search"):
            results += search.run(conninfo, address, args.search_docs, args.search_dim, args.queries)
        if args.only in (None, "transport"):
            results += transport.run(
                conninfo,
                address,
                args.transport_docs,
                args.search_dim,
                min(args.queries, 1500),
                args.transport_callers,
                args.qps_seconds,
            )
        if args.only in (None, "hybrid"):
            results += hybrid.run(address, args.hybrid_docs, args.hybrid_dim, min(args.queries, 500))
        if args.only in (None, "migrate"):
            results += migrate.run(conninfo, args.migrate_docs, args.migrate_dim)
        if args.only in (None, "haystack"):
            results += haystack_store.run(conninfo, address, args.haystack_docs, args.haystack_dim, args.queries)
        if args.only in (None, "auth"):
            results += auth.run(conninfo)
        if args.only in (None, "soak"):
            results += soak.run(address, args.soak_clients, args.soak_seconds, args.soak_ingest_docs)
        if args.only in (None, "replicas"):
            results += replicas.run(args.replica_docs, args.search_dim, args.replica_clients, args.qps_seconds)
        if args.only in (None, "tenants"):
            results += tenants.run(
                conninfo, args.search_docs, args.search_dim, args.queries, args.ingest_docs, args.repeats
            )
        if args.only in (None, "compact"):
            results += compact.run(conninfo, address, args.compact_docs, tuple(args.compact_dims), args.compact_queries)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            extra = f"  (+{r['overhead_ms']:.2f} ms)" if "overhead_ms" in r else ""
            print(f"{r['what']:<52} {r['ours']:>32}  vs {r['reference']:<36} ratio {r['ratio']:.2f}{extra}")
    if results and not args.no_chart:
        print(f"chart of the ratios: {write_chart(results, args.chart)}", file=sys.stderr)


if __name__ == "__main__":
    main()
