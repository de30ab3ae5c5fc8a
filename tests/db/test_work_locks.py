"""Parts of a job held by one process at a time on PostgreSQL; always granted on SQLite."""

from __future__ import annotations

from pathlib import Path

from broadsheet.db.engine import make_engine
from broadsheet.db.work_locks import holding_part
from databases import drop_database, new_postgres_url


def test_a_part_is_held_by_one_process_at_a_time_on_postgresql() -> None:
    url = new_postgres_url()
    first, second = make_engine(url), make_engine(url)  # two pools: two processes' sessions
    try:
        with holding_part(first, "index:m", 7) as held:
            assert held
            with holding_part(second, "index:m", 7) as also:
                assert not also, "a part another session holds is refused at once"
            with holding_part(second, "index:m", 8) as other_part:
                assert other_part
            with holding_part(second, "index:other-model", 7) as other_job:
                assert other_job
        with holding_part(second, "index:m", 7) as later:
            assert later, "a part let go is free again"
    finally:
        first.dispose()
        second.dispose()
        drop_database(url)


def test_every_part_is_granted_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with holding_part(engine, "index:m", 1) as held, holding_part(engine, "index:m", 1) as again:
        assert held and again
    engine.dispose()
