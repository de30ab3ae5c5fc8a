"""``index --workers N``: N processes embed one store together, each paper exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.cli import app
from broadsheet.db.schema import paper_vectors
from broadsheet.ingest.runner import import_file
from broadsheet.search import index_workers
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.index_workers import IndexJob, index_in_processes, threads_per_worker

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"


def _vectors_per_paper(store: Engine) -> list[int]:
    with store.connect() as connection:
        return list(
            connection.execute(
                select(func.count()).select_from(paper_vectors).group_by(paper_vectors.c.paper_seq)
            ).scalars()
        )


def test_two_worker_processes_embed_every_paper_once(store: Engine, database_url: str) -> None:
    import_file(store, TOPICS)
    seen: list[int] = []
    job = IndexJob(database_url, DEFAULT_MODEL, part_size=3)  # 12 papers: parts 0-4
    summary = index_in_processes(job, workers=2, progress=seen.append)
    assert summary.embedded == summary.total == 12 and sum(seen) == 12
    assert _vectors_per_paper(store) == [1] * 12
    again = index_in_processes(job, workers=2)
    assert again.embedded == 0 and again.total == 12


def test_a_failing_worker_stops_the_run_with_its_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    job = IndexJob(f"sqlite:///{tmp_path}/store.db", missing, part_size=3)
    with pytest.raises(Exception, match="cannot load embedding model"):
        index_in_processes(job, workers=2)


def test_cores_are_shared_between_workers(monkeypatch) -> None:
    monkeypatch.setattr(index_workers.os, "cpu_count", lambda: 8)
    assert [threads_per_worker(n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_index_command_with_workers_and_a_missing_gpu(cli, database_url, store) -> None:
    import_file(store, TOPICS)
    done = cli.invoke(app, ["index", "--workers", "2", "--part-size", "4"])
    assert done.exit_code == 0, done.output
    assert "papers/s" in done.output and "embedded now" in done.output
    assert _vectors_per_paper(store) == [1] * 12
    import torch

    if not torch.cuda.is_available():
        no_gpu = cli.invoke(app, ["index", "--device", "cuda"])
        assert no_gpu.exit_code == 1 and "no CUDA GPU" in no_gpu.output
