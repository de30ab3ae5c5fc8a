"""Snapshot import speed and memory: generate N snapshot-format lines, import into a fresh SQLite.

Each import runs in a child process (the real ``broadsheet import`` command) so that its peak
resident memory is measured on its own. Several sizes show whether memory stays flat.

    python bench/ingest.py                 # 50,000 / 100,000 / 200,000 lines
    python bench/ingest.py --sizes 200000  # one size
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from snapshot_gen import write_snapshot


def _tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (the reader process included)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_import(snapshot: Path, database: Path) -> tuple[float, float]:
    """Seconds and peak resident memory (MiB, whole process tree) of one ``broadsheet import``."""
    env = {**os.environ, "BROADSHEET_DATABASE_URL": f"sqlite:///{database}", "COLUMNS": "120"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "broadsheet.cli", "import", str(snapshot)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss(watched))
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed:\n{child.stderr.read().decode()}")
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'lines':>9} {'file MB':>8} {'seconds':>8} {'papers/s':>9} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in sorted(args.sizes):
            snapshot = write_snapshot(Path(scratch) / f"snapshot-{size}.jsonl", size)
            database = Path(scratch) / f"store-{size}.db"
            seconds, peak_mib = run_import(snapshot, database)
            megabytes = snapshot.stat().st_size / 1e6
            rate = size / seconds
            print(f"{size:>9,} {megabytes:>8.0f} {seconds:>8.1f} {rate:>9,.0f} {peak_mib:>13.0f}")
            # a second import of the same file: everything is unchanged
            seconds, _ = run_import(snapshot, database)
            print(f"{'(again)':>9} {'':>8} {seconds:>8.1f} {size / seconds:>9,.0f}")
            snapshot.unlink()


if __name__ == "__main__":
    main()
