"""Checks that a store's keyword index holds exactly its papers, whichever engine keeps it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from broadsheet.search.keyword_index import document_terms


def _fts5_is_whole(connection: Connection) -> None:
    """FTS5's own check: it raises when the index and the papers disagree."""
    connection.exec_driver_sql(
        "INSERT INTO papers_fts(papers_fts, rank) VALUES ('integrity-check', 1)"
    )


# every posting of the PostgreSQL index, unpacked from its blocks: (term, seq, tf, length)
POSTINGS = (
    "keyword_blocks b JOIN keyword_terms t ON t.id = b.term_id"
    " CROSS JOIN LATERAL unnest(b.seqs, b.tfs, b.lengths) AS u(seq, tf, length)"
)


def _postings_are_whole(connection: Connection) -> None:
    """Postings, document lengths and collection totals, recomputed from the papers."""
    expected, lengths = set(), {}
    for seq, title, abstract in connection.exec_driver_sql(
        "SELECT seq, title, abstract FROM papers"
    ):
        frequencies, lengths[seq] = document_terms(title, abstract)
        expected |= {(term, seq, tf, lengths[seq]) for term, tf in frequencies.items()}
    stored = set(
        connection.exec_driver_sql(f"SELECT t.term, u.seq, u.tf, u.length FROM {POSTINGS}")
    )
    docs = dict(connection.exec_driver_sql("SELECT paper_seq, length FROM keyword_docs").all())
    totals = connection.exec_driver_sql(
        "SELECT sum(docs), sum(total_length) FROM keyword_stats"
    ).one()
    assert stored == expected, "postings differ from the papers"
    assert docs == lengths, "document lengths differ from the papers"
    assert tuple(totals) == (len(lengths), sum(lengths.values())), "collection totals are off"


_CHECKS: dict[str, Callable[[Connection], None]] = {
    "sqlite": _fts5_is_whole,
    "postgresql": _postings_are_whole,
}


def assert_keyword_index_whole(connection: Connection) -> None:
    _CHECKS[connection.dialect.name](connection)
