"""Memory and speed of SQLite's vector index in search processes: a private matrix or shared maps.

For a SQLite store that has vectors and a saved generation (``python bench/search.py --store
F`` builds one; ``broadsheet index`` saves one), starts P fresh processes at once for each
layout, and has each open the store's vector index and answer Q vector searches for the top
200. The layouts:

- ``matrix``: every float32 vector read from the table into the process (how every SQLite
  search process worked before the saved generation was memory-mapped; small stores still do);
- ``mapped``: the saved graph and float16 vectors memory-mapped (``broadsheet serve`` now), the
  candidates re-scored with their float32 vectors read from the table.

Each process reports the seconds to open the index, search p50/p99, and its memory once all P
are open: resident (RSS), anonymous (its own, not shared), and PSS (proportional set size:
each shared page divided among the processes that map it, so P processes sum to what they
occupy together), with its peak RSS. Queries are stored vectors with a little noise, the same
in every process and layout.

    python bench/vector_memory.py --store /tmp/search-1m.db               # 2 processes each
    python bench/vector_memory.py --store /tmp/s.db --processes 1 --queries 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODEL = "all-MiniLM-L6-v2"
LAYOUTS = ("matrix", "mapped")


def memory_mib() -> dict[str, float]:
    """This process's RSS, anonymous RSS and PSS in MiB, and its peak RSS."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    rollup = dict(
        line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]
    )

    def kib(value: str) -> float:
        return int(value.split()[0]) / 1024

    return {
        "rss": kib(status["VmRSS"]),
        "anon": kib(status["RssAnon"]),
        "pss": kib(rollup["Pss"]),
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(layout: str, store: Path, queries: int, seed: int) -> None:
    """One search process: open, search, report when told to (all processes open by then)."""
    from broadsheet.db.engine import make_engine
    from broadsheet.search import vector_sqlite
    from broadsheet.search.vectors import vector_index

    if layout == "matrix":
        vector_sqlite.pointer_path = lambda engine, model: None  # as if nothing were saved
    engine = make_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        newest = connection.exec_driver_sql("SELECT max(rowid) FROM paper_vectors").scalar()
        rng = np.random.default_rng(seed)
        picked = rng.integers(1, newest + 1, queries * 2).tolist()
        blobs = connection.exec_driver_sql(
            f"SELECT vector FROM paper_vectors WHERE rowid IN ({','.join(map(str, picked))})"
        ).scalars()
        vectors = np.vstack([np.frombuffer(blob, dtype=np.float32) for blob in blobs])[:queries]
    vectors = vectors + 0.03 * rng.standard_normal(vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    index = vector_index(engine, MODEL)
    opened = time.perf_counter() - started
    times = []
    for query in vectors:
        started = time.perf_counter()
        index.search(query, 200)
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"kind": type(index).__name__}), flush=True)
    sys.stdin.readline()  # every process has opened its index and searched
    print(
        json.dumps(
            {
                "open_s": opened,
                "p50": float(np.percentile(times, 50)),
                "p99": float(np.percentile(times, 99)),
                **memory_mib(),
            }
        ),
        flush=True,
    )


def run_layout(layout: str, args: argparse.Namespace) -> list[dict]:
    command = [sys.executable, __file__, "--child", layout, "--store", str(args.store)]
    command += ["--queries", str(args.queries), "--seed", str(args.seed)]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(args.processes)
    ]
    kinds = [json.loads(process.stdout.readline() or "{}").get("kind") for process in children]
    figures = []
    for process in children:
        process.stdin.write("\n")
        process.stdin.flush()
    for process, kind in zip(children, kinds, strict=True):
        figures.append({"kind": kind, **json.loads(process.stdout.readline())})
        process.wait()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="SQLite file with vectors")
    parser.add_argument("--processes", type=int, default=2, help="search processes per layout")
    parser.add_argument("--queries", type=int, default=100, help="searches per process")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--child", choices=LAYOUTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.store, args.queries, args.seed)
        return
    if not args.store.is_file():
        raise SystemExit(f"{args.store}: no such store (bench/search.py --store builds one)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}; store {args.store}"
        f" ({args.store.stat().st_size / 1e9:.2f} GB), {args.processes} processes per layout,"
        f" {args.queries} searches each (top 200)"
    )
    print(
        "| layout | index | open s | search p50 / p99 ms | RSS MiB | own (anon) MiB |"
        " PSS MiB | peak RSS MiB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for layout in args.layouts:
        for number, f in enumerate(run_layout(layout, args), start=1):
            print(
                f"| {layout} #{number} | {f['kind']} | {f['open_s']:.2f} |"
                f" {f['p50']:.1f} / {f['p99']:.1f} | {f['rss']:,.0f} | {f['anon']:,.0f} |"
                f" {f['pss']:,.0f} | {f['peak']:,.0f} |"
            )


if __name__ == "__main__":
    main()
