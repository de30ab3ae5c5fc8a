"""Snapshot import speed and memory: generate N snapshot-format lines, import into fresh stores.

Each import runs in a child process (the real ``broadsheet import`` command) so that its peak
resident memory is measured on its own (the importer and its reader; a PostgreSQL server's own
memory is not counted). Several sizes show whether memory stays flat. Each size goes into a
new SQLite file and a new PostgreSQL database (``bench/engines.py``), one after the other.

    python bench/ingest.py                                   # 50,000 / 100,000 / 200,000 lines
    python bench/ingest.py --sizes 200000 --engines postgres  # one size, one engine
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from engines import ENGINES, LABELS, drop, scratch_url
from snapshot_gen import write_snapshot


def _tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (the reader process included)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_import(snapshot: Path, url: str) -> tuple[float, float, float]:
    """Wall seconds, the import's own seconds (from its summary, without process start-up),
    and peak resident memory (MiB, whole process tree) of one ``broadsheet import``."""
    env = {**os.environ, "BROADSHEET_DATABASE_URL": url, "COLUMNS": "120"}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "broadsheet.cli", "import", str(snapshot)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        watched = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss(watched))
            time.sleep(0.25)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"import failed:\n{output}")
    import_seconds = float(re.search(r"seconds\s*│\s*([\d.]+)", output).group(1))
    return seconds, import_seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{'engine':<11} {'lines':>9} {'file MB':>8} {'wall s':>7} {'papers/s':>9} {'import s':>9}"
        f" {'papers/s':>9} {'peak RSS MiB':>13}"
    )
    print(f"{'':<11} {'':>9} {'':>8} {'(whole command)':>17} {'(import itself)':>19}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in sorted(args.sizes):
            snapshot = write_snapshot(Path(scratch) / f"snapshot-{size}.jsonl", size)
            os.sync()  # let the generated file reach the disk before timing starts
            for engine in args.engines:
                url = scratch_url(engine, Path(scratch), f"store-{size}")
                for label in (f"{size:,}", "(again)"):  # the second finds everything unchanged
                    wall, own, peak_mib = run_import(snapshot, url)
                    megabytes = f"{snapshot.stat().st_size / 1e6:.0f}" if label != "(again)" else ""
                    print(
                        f"{LABELS[engine]:<11} {label:>9} {megabytes:>8} {wall:>7.1f}"
                        f" {size / wall:>9,.0f} {own:>9.1f} {size / own:>9,.0f} {peak_mib:>13.0f}"
                    )
                drop(url)
            snapshot.unlink()


if __name__ == "__main__":
    main()
