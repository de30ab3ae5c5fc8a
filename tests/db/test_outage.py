"""Which database errors mean "the store cannot answer now" (503) and which are bugs (500)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, insert, text

from broadsheet.db.engine import make_engine
from broadsheet.db.outage import outage
from broadsheet.db.schema import store_version
from broadsheet.db.timeouts import Timeouts
from databases import ON_POSTGRES
from tcp_proxy import postgres_proxy


def test_bugs_are_not_outages(store: Engine) -> None:
    with pytest.raises(exc.IntegrityError) as duplicate, store.begin() as connection:
        connection.execute(insert(store_version).values(id=1, version=1))  # row 1 exists
    assert outage(duplicate.value) is None
    with pytest.raises(exc.DBAPIError) as missing, store.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))  # OperationalError on SQLite
    assert outage(missing.value) is None
    assert outage(ValueError("not from the store")) is None


def test_all_connections_in_use_is_busy(database_url: str) -> None:
    engine = make_engine(database_url, Timeouts(connect=2, pool=0.2))
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
    try:
        with pytest.raises(exc.TimeoutError) as raised:
            engine.connect()
    finally:
        for connection in held:
            connection.close()
        engine.dispose()
    found = outage(raised.value)
    assert found is not None and found.busy
    assert "Background on this error" not in found.reason


@pytest.mark.skipif(not ON_POSTGRES, reason="a database server that refuses connections")
def test_a_refused_connection_is_down_and_its_reason_keeps_the_password_out(
    store: Engine, database_url: str
) -> None:
    with postgres_proxy(database_url, password="pw-secret") as (proxy, through):
        proxy.cut()
        engine = make_engine(through, Timeouts(connect=2))
        with pytest.raises(exc.OperationalError) as raised:
            engine.connect()
        engine.dispose()
    found = outage(raised.value)
    assert found is not None and not found.busy
    assert "refused" in found.reason.lower()
    assert "pw-secret" not in found.reason and "\n" not in found.reason


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's files")
def test_a_store_file_that_cannot_be_opened_is_down(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'store.db'}")
    with pytest.raises(exc.OperationalError) as raised:
        engine.connect()
    engine.dispose()
    found = outage(raised.value)
    assert found is not None and not found.busy
    assert "unable to open database file" in found.reason
