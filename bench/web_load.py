"""Requests/s and latency of ``/``, ``/papers/{id}`` and ``/search`` on a 10,000-paper store,
on SQLite and on PostgreSQL, each served by several ``serve`` processes at once.

The store holds N synthetic papers in the daily-papers JSON shape (so every one is on the feed,
40 a day up to today, with Zipf-distributed upvotes and an organisation on one in three),
imported with the real importer; text follows bench/snapshot_gen.py's Zipf vocabulary. Papers
get synthetic vectors as in bench/search.py (embedding 10,000 abstracts with the real model
takes minutes), so hybrid search runs fully; the query embedding is real.

The service runs as in production: S ``broadsheet serve --workers W --no-access-log``
processes on one store (two by default, as a public instance runs several behind a reverse
proxy), and the load is spread over them evenly. The load comes from wrk (``apt-get install
wrk``; one wrk per server, their figures summed, the slowest's percentiles shown) when it is
installed, else from an asyncio httpx client; both share the machine's cores with the servers,
so the figures are a floor. The same papers go into a SQLite file and a PostgreSQL database
(``bench/engines.py``), measured one after the other. ``/`` is measured twice: as visitors
see it (served from the page cache while the store is unchanged) and signed in (rendered
afresh from the store on every request). Each endpoint gets C connections for D seconds after
a short warm-up; paper pages and searches rotate over many ids and queries.

    python bench/web_load.py                        # temporary stores, 10,000 papers, both engines
    python bench/web_load.py --engines sqlite --store /tmp/http-10k.db --servers 1 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

from broadsheet.community.accounts import AccountError, create_member
from broadsheet.db.engine import open_store
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.vectors import coverage
from engines import ENGINES, LABELS, drop, scratch_url
from search import _cpu_name, paper_count, store_synthetic_vectors, topic_centroids
from snapshot_gen import ZipfVocabulary

PER_DAY = 40
BENCH_MEMBER, BENCH_PASSWORD = "bench-member", "bench member password"
ORGANISATIONS = 60


def daily_entries(count: int, vocabulary: ZipfVocabulary, seed: int) -> list[dict]:
    """``count`` entries in the daily-papers API shape, ``PER_DAY`` a day, newest day today."""
    rng = random.Random(seed)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    entries = []
    for index in range(count):
        day = today - timedelta(days=index // PER_DAY)
        published = day - timedelta(hours=rng.randint(1, 72))
        paper = {
            "id": f"{24 + index // 90000:02d}{1 + index // 7500 % 12:02d}.{index % 90000:05d}",
            "title": vocabulary.sentence(rng, 9).capitalize(),
            "summary": " ".join(vocabulary.sentence(rng, 12) for _ in range(rng.randint(8, 16))),
            "authors": [
                {"name": f"Author {rng.randint(1, 5000)}"} for _ in range(rng.randint(1, 9))
            ],
            "publishedAt": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "upvotes": int(rng.paretovariate(1.2)) - 1,
        }
        if rng.random() < 1 / 3:
            org = rng.randint(1, ORGANISATIONS)
            paper["organization"] = {"name": f"lab{org}", "fullname": f"Research Lab {org}"}
        entries.append({"paper": paper, "title": paper["title"], "publishedAt": day.isoformat()})
    return entries


def build_store(url: str, scratch: Path, count: int, seed: int) -> dict[str, float]:
    """Import ``count`` synthetic papers and give them vectors; seconds of each step."""
    engine = open_store(url)
    existing = paper_count(engine)
    built: dict[str, float] = {}
    if existing not in (0, count):
        raise SystemExit(f"{url} holds {existing:,} papers, not {count:,}")
    vocabulary = ZipfVocabulary()
    if existing == 0:
        started = time.perf_counter()
        source = scratch / "papers.daily.json"
        source.write_bytes(json.dumps(daily_entries(count, vocabulary, seed)).encode())
        summary = import_file(engine, source)
        source.unlink()
        if summary.added != count or summary.errors:
            raise SystemExit(f"import stored {summary.added:,} of {count:,} papers: {summary}")
        built["import"] = time.perf_counter() - started
    with engine.connect() as connection:
        embedded, total = coverage(connection, DEFAULT_MODEL)
    if embedded < total:
        started = time.perf_counter()
        store_synthetic_vectors(engine, DEFAULT_MODEL, topic_centroids(vocabulary, seed), seed)
        built["vectors"] = time.perf_counter() - started
    engine.dispose()
    return built


def sample_paths(url: str, seed: int) -> dict[str, list[str]]:
    """The URL paths each endpoint is driven with: the feed, 500 papers, 200 searches."""
    rng = random.Random(seed)
    engine = open_store(url)
    with engine.connect() as connection:
        ids = connection.exec_driver_sql("SELECT id FROM papers ORDER BY id").scalars().all()
    engine.dispose()
    vocabulary = ZipfVocabulary()
    queries = [" ".join(vocabulary.draw_content(rng, rng.randint(2, 4))) for _ in range(200)]
    return {
        "/": ["/"],
        "/papers/{id}": [f"/papers/{paper_id}" for paper_id in rng.sample(ids, min(500, len(ids)))],
        "/search?q=": [f"/search?q={quote(q)}" for q in queries],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, port: int, workers: int, *options: str) -> subprocess.Popen:
    """``broadsheet serve`` on the store at ``url``, once it answers; ``options`` go to serve."""
    env = {**os.environ, "BROADSHEET_DATABASE_URL": url}
    command = [
        sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port),
        "--workers", str(workers), "--no-access-log", *options,
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("the server did not start within 120 s")


def wait_for_search(base: str, path: str, budget: float = 180.0) -> None:
    """Until searches come back quickly: every worker has loaded the model (serve warms up)."""
    deadline = time.monotonic() + budget
    quick = 0
    while quick < 8 and time.monotonic() < deadline:
        started = time.perf_counter()
        httpx.get(base + path, timeout=budget).raise_for_status()
        quick = quick + 1 if time.perf_counter() - started < 0.5 else 0


WRK_SCRIPT = """
local paths = {%s}
local requests = {}
local counter = 0
init = function(args)
  for i, path in ipairs(paths) do requests[i] = wrk.format("GET", path) end
end
request = function()
  counter = counter %% #requests + 1
  return requests[counter]
end
"""  # requests are formatted once: formatting each one costs wrk CPU the server then lacks


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(
    bases: list[str], paths: list[str], connections: int, duration: int, cookie: str | None = None
) -> dict:
    """One wrk per server at once, each with its share of the connections."""
    shares = [connections // len(bases) + (i < connections % len(bases)) for i in range(len(bases))]
    with ThreadPoolExecutor(len(bases)) as pool:
        runs = list(
            pool.map(
                lambda pair: _run_one_wrk(pair[0], paths, pair[1], duration, cookie),
                zip(bases, shares, strict=True),
            )
        )
    summed = {key: sum(run[key] for run in runs) for key in ("requests", "rps", "errors")}
    return {**summed, **{key: max(run[key] for run in runs) for key in ("p50", "p90", "p99")}}


def _run_one_wrk(
    base: str, paths: list[str], connections: int, duration: int, cookie: str | None
) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout"]
        if cookie:
            command[1:1] = ["-H", f"Cookie: {cookie}"]
        command += ["10s", base + paths[0]] if len(paths) == 1 else ["10s", "-s", script.name, base]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    latency = dict(re.findall(r"^\s*(50|90|99)(?:\.0+)?%\s+(\S+)\s*$", output, re.MULTILINE))
    if len(latency) != 3:
        raise SystemExit(f"could not read wrk's latency distribution:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _seconds(latency["50"]) * 1000,
        "p90": _seconds(latency["90"]) * 1000,
        "p99": _seconds(latency["99"]) * 1000,
        "errors": errors,
    }


async def _python_load(
    bases: list[str], paths: list[str], connections: int, duration: int, cookie: str | None = None
) -> dict:
    times: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Cookie": cookie} if cookie else {}
    async with httpx.AsyncClient(limits=limits, timeout=10, headers=headers) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            counter, base = offset, bases[offset % len(bases)]  # connections spread evenly
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(base + paths[counter % len(paths)])
                    errors += response.status_code >= 400
                except httpx.HTTPError:
                    errors += 1
                times.append(time.perf_counter() - started)
                counter += connections

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - began
    times.sort()

    def pick(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))] * 1000

    return {
        "requests": len(times),
        "rps": len(times) / elapsed,
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "errors": errors,
    }


def run_python(
    bases: list[str], paths: list[str], connections: int, duration: int, cookie: str | None = None
) -> dict:
    return asyncio.run(_python_load(bases, paths, connections, duration, cookie))


def member_cookie(url: str, base: str) -> str:
    """A signed-in session (a bench member): its pages skip the visitors' page cache; the
    session is signed with the store's secret, so every server accepts it."""
    engine = open_store(url)
    with contextlib.suppress(AccountError):  # made by an earlier run
        create_member(engine, BENCH_MEMBER, BENCH_PASSWORD)
    engine.dispose()
    with httpx.Client(base_url=base) as client:
        form = client.get("/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = {"username": BENCH_MEMBER, "password": BENCH_PASSWORD, "csrf_token": token}
        if client.post("/signin", data=data).status_code != 303:
            raise SystemExit("the bench member could not sign in")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def measure_engine(engine_name: str, url: str, scratch: Path, args, load) -> None:
    """Build the store at ``url``, start the servers, and print one table."""
    built = build_store(url, scratch, args.papers, args.seed)
    print(f"\n{LABELS[engine_name]}: " + ", ".join(f"{k} {v:.1f} s" for k, v in built.items()))
    paths = sample_paths(url, args.seed)
    ports = [free_port() for _ in range(args.servers)]
    servers: list[subprocess.Popen] = []
    try:
        with ThreadPoolExecutor(len(ports)) as pool:  # they warm up side by side
            servers.extend(pool.map(lambda port: start_server(url, port, args.workers), ports))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            wait_for_search(base, paths["/search?q="][0])
        print(f"{'endpoint':<14} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'errors':>7}")  # fmt: skip
        runs = [(name, endpoint_paths, None) for name, endpoint_paths in paths.items()]
        runs.insert(1, ("/ signed in", paths["/"], member_cookie(url, bases[0])))
        for name, endpoint_paths, cookie in runs:
            load(bases, endpoint_paths, args.connections, 3, cookie)  # warm-up
            figures = load(bases, endpoint_paths, args.connections, args.duration, cookie)
            print(
                f"{name:<14} {figures['requests']:>9,} {figures['rps']:>8.1f} "
                f"{figures['p50']:>8.1f} {figures['p90']:>8.1f} {figures['p99']:>8.1f} "
                f"{figures['errors']:>7}"
            )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse if it has N")
    parser.add_argument("--servers", type=int, default=2, help="serve processes on one store")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--client", choices=["wrk", "python"], default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    client = args.client or ("wrk" if shutil.which("wrk") else "python")
    load = run_wrk if client == "wrk" else run_python

    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.machine()}, {_cpu_name()}, {cores} cores, "
        f"Python {platform.python_version()}; {args.servers} server(s) of {args.workers} "
        f"worker(s); client: {client}, {args.connections} connections, "
        f"{args.duration} s per endpoint"
    )
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for engine_name in args.engines:
            url = scratch_url(engine_name, scratch, "http")
            if engine_name == "sqlite" and args.store:
                url = f"sqlite:///{args.store}"
            try:
                measure_engine(engine_name, url, scratch, args, load)
            finally:
                drop(url)


if __name__ == "__main__":
    main()
