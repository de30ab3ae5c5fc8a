"""Store timeouts: a statement over its limit is stopped by the server, a server that does not
answer at all is given up by the client, and SQLite's lock wait follows the same limit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, exc, text
from sqlalchemy.engine import make_url

from broadsheet.db.engine import make_engine
from broadsheet.db.outage import outage
from broadsheet.db.timeouts import ANSWER_MARGIN_S, SQLITE_BUSY_S, Timeouts
from databases import ON_POSTGRES
from tcp_proxy import postgres_proxy

LIMITS = Timeouts(connect=2, statement=1.0, pool=1.0)
SLACK_S = 3.0
on_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="a database server's own timeouts")
on_sqlite = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's busy timeout")


@pytest.fixture
def limited(store: Engine, database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, LIMITS)
    yield engine
    engine.dispose()


@on_postgres
def test_a_statement_over_its_limit_is_stopped_by_the_server(limited: Engine) -> None:
    with limited.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
        started = time.monotonic()
        with pytest.raises(exc.OperationalError) as raised:
            connection.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < LIMITS.statement + SLACK_S
    found = outage(raised.value)
    assert found is not None and found.busy


@on_postgres
def test_options_in_the_url_are_kept_beside_the_limit(store: Engine, database_url: str) -> None:
    url = f"{database_url}&options={quote('-c lock_timeout=700')}"
    engine = make_engine(url, LIMITS)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW lock_timeout")).scalar() == "700ms"
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
    finally:
        engine.dispose()


@on_postgres
def test_the_cli_keeps_no_statement_limit(store: Engine) -> None:
    with store.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"


@on_postgres
def test_a_server_that_stops_answering_mid_request_is_given_up(
    store: Engine, database_url: str
) -> None:
    with postgres_proxy(database_url) as (proxy, through):
        engine = make_engine(through, LIMITS)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT 1")).scalar() == 1
                proxy.freeze()  # the server stops: the statement gets no answer at all
                started = time.monotonic()
                with pytest.raises(exc.OperationalError) as raised:
                    connection.execute(text("SELECT 2"))
                waited = time.monotonic() - started
            assert LIMITS.statement + ANSWER_MARGIN_S - 0.5 < waited
            assert waited < LIMITS.statement + ANSWER_MARGIN_S + SLACK_S
            assert raised.value.connection_invalidated  # the pool drops that connection
            assert "did not answer within 3 s" in str(raised.value)
            found = outage(raised.value)
            assert found is not None and not found.busy
            proxy.thaw()
            with engine.connect() as connection:  # a new connection, the server back
                assert connection.execute(text("SELECT 3")).scalar() == 3
        finally:
            engine.dispose()


@on_postgres
def test_an_idle_connection_to_a_frozen_server_is_given_up_at_its_check(
    store: Engine, database_url: str
) -> None:
    with postgres_proxy(database_url) as (proxy, through):
        engine = make_engine(through, Timeouts(connect=2))  # the CLI's: no statement limit
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            proxy.freeze()
            started = time.monotonic()
            with pytest.raises(exc.OperationalError):
                engine.connect()  # the check before reuse, then a new connection: both time out
            assert time.monotonic() - started < 2 * LIMITS.connect + SLACK_S
        finally:
            engine.dispose()


@on_sqlite
def test_sqlite_waits_for_a_lock_as_long_as_the_statement_limit(
    store: Engine, limited: Engine, database_url: str
) -> None:
    with store.connect() as connection:
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_S * 1000
    with limited.connect() as connection:
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1000
    holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(exc.OperationalError) as raised, limited.begin() as connection:
            connection.execute(text("UPDATE store_version SET version = version + 1"))
        assert time.monotonic() - started < LIMITS.statement + SLACK_S
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    found = outage(raised.value)
    assert found is not None and found.busy
