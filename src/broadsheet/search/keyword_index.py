"""The keyword index behind lexical search: one interface, one implementation per engine.

SQLite keeps FTS5 (``porter unicode61 remove_diacritics 2``, BM25 via ``bm25()``, kept in step
by triggers for edits and deletes). PostgreSQL keeps postings the same tokenizer produces, in
Python, and ranks them by the same BM25 in SQL: ``tf`` is twice the title's count plus the
abstract's (FTS5's column weights 2 and 1), a document's length is its token count over both
fields (FTS5 does not weight lengths), k1 = 1.2, b = 0.75 and FTS5's IDF floor of 1e-6.

Collection totals live in ``keyword_stats``, a few rows each importer updates one of (chosen by
its server process id), so concurrent imports never queue on one row; a term's document
frequency is the count of its postings, read in the same scan that scores them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, column, func, literal_column, select, table, text

from broadsheet.db.schema import papers
from broadsheet.search.filters import SearchFilters

TITLE_WEIGHT, ABSTRACT_WEIGHT = 2, 1
K1, B = 1.2, 0.75
STATS_SHARDS = 16  # rows of keyword_stats; an importer updates the one of its process id
TOKENIZER = "porter unicode61 remove_diacritics 2"


class _Fts5Tokenizer(threading.local):
    """FTS5's own tokenizer, run in a private in-memory SQLite database (one per thread).

    The PostgreSQL index must split, fold and stem words exactly as SQLite's index does, or the
    two engines would find different papers; FTS5's Porter stemmer is the original algorithm's
    C version, which other Porter stemmers differ from in small ways ("grokking", "flexibly").
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute(
            f"CREATE VIRTUAL TABLE t USING fts5(title, abstract, tokenize='{TOKENIZER}')"
        )
        self.db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")

    def documents(
        self, texts: Sequence[tuple[str | None, str | None]]
    ) -> list[tuple[dict[str, int], int]]:
        """Weighted term frequencies and length in tokens of each (title, abstract)."""
        frequencies: list[dict[str, int]] = [{} for _ in texts]
        lengths = [0] * len(texts)
        with self.db:
            self.db.execute("DELETE FROM t")
            self.db.executemany(
                "INSERT INTO t(rowid, title, abstract) VALUES (?, ?, ?)",
                [(i, title, abstract) for i, (title, abstract) in enumerate(texts)],
            )
            rows = self.db.execute(
                "SELECT doc, term, sum(CASE col WHEN 'title' THEN ? ELSE ? END), count(*)"
                " FROM v GROUP BY doc, term",
                (TITLE_WEIGHT, ABSTRACT_WEIGHT),
            )
            for doc, term, tf, count in rows:
                frequencies[doc][term] = tf
                lengths[doc] += count
            self.db.execute("DELETE FROM t")
        return list(zip(frequencies, lengths, strict=True))


_tokenizer = _Fts5Tokenizer()


def document_terms(title: str | None, abstract: str | None) -> tuple[dict[str, int], int]:
    """Weighted term frequencies of one paper (title twice) and its length in tokens."""
    return _tokenizer.documents([(title, abstract)])[0]


def tokens(text: str | None) -> list[str]:
    """The distinct index terms of ``text``."""
    return list(document_terms(text, None)[0])


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The index form of one query word (its first term; the word itself if it has none)."""
    found = tokens(word)
    return found[0] if found else word


class KeywordIndex(Protocol):
    """What lexical search, imports and spelling need from a store's keyword index."""

    def number_new(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Give new papers their ``seq`` before they are inserted, where that saves a read."""

    def add(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Index new papers (``id``, ``title``, ``abstract``, and ``seq`` if numbered) in the
        caller's transaction."""

    def replace(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Index papers again whose title or abstract may have changed."""

    def search(
        self,
        connection: Connection,
        terms: Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
    ) -> list[tuple[int, float]]:
        """The best ``limit`` (seq, BM25 score) for ``terms`` OR-ed, higher scores first."""

    def document_counts(self, connection: Connection, stems: Iterable[str]) -> dict[str, int]:
        """How many papers hold each stem."""

    def rebuild(self, connection: Connection) -> None:
        """Index every stored paper afresh (after rows arrived without it: ``db copy``)."""


def _filtered(filters: SearchFilters | None):
    if filters is None or filters.is_empty():
        return None
    return select(papers.c.seq).where(*filters.conditions())


class SqliteKeywordIndex:
    """FTS5: an external-content table over papers; edits and deletes reindex by trigger."""

    _FTS = table("papers_fts", column("rowid"))

    def number_new(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Number rows up front, so FTS5 needs no read-back; safe because the caller's
        transaction already holds SQLite's single write lock."""
        if not rows:
            return
        last = connection.execute(select(func.coalesce(func.max(papers.c.seq), 0))).scalar_one()
        for number, row in enumerate(rows, start=last + 1):
            row["seq"] = number

    def add(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        connection.exec_driver_sql(
            "INSERT INTO papers_fts(rowid, title, abstract) VALUES (?, ?, ?)",
            [(row["seq"], row["title"], row["abstract"]) for row in rows],
        )

    def replace(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Nothing to do: the papers_fts_update trigger reindexes edited papers."""

    def rebuild(self, connection: Connection) -> None:
        connection.exec_driver_sql("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")

    def search(
        self,
        connection: Connection,
        terms: Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        expression = " OR ".join(f'"{t}"' for t in terms)
        rank = func.bm25(literal_column("papers_fts"), float(TITLE_WEIGHT), float(ABSTRACT_WEIGHT))
        statement = select(self._FTS.c.rowid, -rank).where(
            text("papers_fts MATCH :expression").bindparams(expression=expression)
        )
        allowed = _filtered(filters)
        if allowed is not None:
            statement = statement.where(self._FTS.c.rowid.in_(allowed))
        rows = connection.execute(statement.order_by(rank).limit(limit))
        return [(seq, score) for seq, score in rows]

    def document_counts(self, connection: Connection, stems: Iterable[str]) -> dict[str, int]:
        found = {}
        for term in dict.fromkeys(stems):
            row = connection.exec_driver_sql(
                "SELECT doc FROM papers_fts_vocab WHERE term = ?", (term,)
            ).first()
            found[term] = row[0] if row else 0
        return found


_SCORE = f"""
WITH query(term_id, weight) AS (
    SELECT * FROM unnest(CAST(%(term_ids)s AS integer[]), CAST(%(weights)s AS float8[]))
), totals AS (
    SELECT greatest(sum(docs), 1)::float8 AS docs,
           greatest(sum(total_length)::float8 / greatest(sum(docs), 1), 1) AS average_length
    FROM keyword_stats
), frequency AS (
    SELECT term_id, count(*)::float8 AS docs FROM keyword_postings
    WHERE term_id = ANY(CAST(%(term_ids)s AS integer[])) GROUP BY term_id
), idf AS (
    SELECT frequency.term_id,
           query.weight * greatest(
               ln((totals.docs - frequency.docs + 0.5::float8) / (frequency.docs + 0.5::float8)),
               1e-6::float8
           ) AS idf
    FROM frequency JOIN query USING (term_id) CROSS JOIN totals
)
SELECT p.paper_seq,
       sum(idf.idf * p.tf * {K1 + 1}::float8 / (p.tf + {K1}::float8 * ({1 - B}::float8
           + {B}::float8 * p.length / totals.average_length))) AS score
FROM keyword_postings p JOIN idf USING (term_id) CROSS JOIN totals
{{where}}
GROUP BY p.paper_seq
ORDER BY score DESC, p.paper_seq
LIMIT %(limit)s
"""


class PostgresKeywordIndex:
    """BM25 postings in plain tables: keyword_terms, keyword_postings, keyword_docs, stats.

    A paper's postings carry its length, so scoring reads nothing but the query terms'
    postings; keyword_docs remembers which terms a paper has, so it can be forgotten (the
    ``keyword_forget`` function, also run by a trigger when a paper is deleted).
    """

    def number_new(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Nothing to do: the identity column numbers papers as they are inserted."""

    def add(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        seqs = self._seqs(connection, rows)
        terms = _tokenizer.documents([(row["title"], row["abstract"]) for row in rows])
        documents = [
            (row["seq"] if "seq" in row else seqs[row["id"]], frequencies, length)
            for row, (frequencies, length) in zip(rows, terms, strict=True)
        ]
        term_ids = self._term_ids(connection, {t for _, tf, _ in documents for t in tf})
        raw = connection.connection.driver_connection
        # in the primary key's order, each batch walks the index's pages once
        postings = sorted(
            (term_ids[term], seq, tf, length)
            for seq, frequencies, length in documents
            for term, tf in frequencies.items()
        )
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY keyword_postings (term_id, paper_seq, tf, length) FROM STDIN"
            ) as copy:
                copy.write("".join(f"{t}\t{p}\t{f}\t{n}\n" for t, p, f, n in postings))
            with cursor.copy("COPY keyword_docs (paper_seq, length, term_ids) FROM STDIN") as copy:
                for seq, frequencies, length in documents:
                    copy.write_row((seq, length, [term_ids[t] for t in frequencies]))
        self._count(connection, len(documents), sum(length for _, _, length in documents))

    def rebuild(self, connection: Connection, batch: int = 1_000) -> None:
        connection.exec_driver_sql(
            "TRUNCATE keyword_postings, keyword_docs, keyword_terms RESTART IDENTITY"
        )
        connection.exec_driver_sql("UPDATE keyword_stats SET docs = 0, total_length = 0")
        last = 0
        query = text(
            "SELECT seq, id, title, abstract FROM papers"
            " WHERE seq > :last ORDER BY seq LIMIT :batch"
        )
        while rows := connection.execute(query, {"last": last, "batch": batch}).mappings().all():
            self.add(connection, rows)
            last = rows[-1]["seq"]

    def replace(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        seqs = self._seqs(connection, rows)
        connection.execute(
            text("SELECT keyword_forget(CAST(:seqs AS integer[]))"),
            {"seqs": sorted(seqs.values())},
        )
        self.add(connection, [{**row, "seq": seqs[row["id"]]} for row in rows])

    def search(
        self,
        connection: Connection,
        terms: Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
    ) -> list[tuple[int, float]]:
        weights = Counter(stem(t) for t in terms)  # FTS5 scores each OR-ed phrase on its own
        known = dict(
            connection.execute(
                text("SELECT term, id FROM keyword_terms WHERE term = ANY(:terms)"),
                {"terms": list(weights)},
            ).all()
        )
        if not known:
            return []
        parameters: dict[str, Any] = {
            "term_ids": [known[t] for t in weights if t in known],
            "weights": [float(weights[t]) for t in weights if t in known],
            "limit": limit,
        }
        where = ""
        allowed = _filtered(filters)
        if allowed is not None:
            compiled = allowed.compile(dialect=connection.dialect)
            where = f"WHERE p.paper_seq IN ({compiled.string})"
            parameters.update(compiled.params)
        rows = connection.exec_driver_sql(_SCORE.format(where=where), parameters)
        return [(seq, float(score)) for seq, score in rows]

    def document_counts(self, connection: Connection, stems: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(stems))
        found = dict(
            connection.execute(
                text(
                    "SELECT t.term, (SELECT count(*) FROM keyword_postings p"
                    " WHERE p.term_id = t.id) FROM keyword_terms t WHERE t.term = ANY(:terms)"
                ),
                {"terms": wanted},
            ).all()
        )
        return {term: found.get(term, 0) for term in wanted}

    @staticmethod
    def _seqs(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """seq by paper id for rows that lack it (PostgreSQL numbers papers on insert)."""
        missing = [row["id"] for row in rows if "seq" not in row]
        if not missing:
            return {row["id"]: row["seq"] for row in rows}
        found = connection.execute(
            text("SELECT id, seq FROM papers WHERE id = ANY(:ids)"), {"ids": missing}
        ).all()
        return {**{row["id"]: row["seq"] for row in rows if "seq" in row}, **dict(found)}

    @staticmethod
    def _term_ids(connection: Connection, terms: set[str]) -> dict[str, int]:
        """Ids of ``terms``, adding the new ones (sorted, so two importers never deadlock)."""
        wanted = sorted(terms)
        query = text("SELECT term, id FROM keyword_terms WHERE term = ANY(:terms)")
        ids = dict(connection.execute(query, {"terms": wanted}).all())
        missing = [t for t in wanted if t not in ids]
        if missing:
            connection.execute(
                text(
                    "INSERT INTO keyword_terms (term) SELECT unnest(CAST(:terms AS text[]))"
                    " ON CONFLICT (term) DO NOTHING"
                ),
                {"terms": missing},
            )
            ids.update(connection.execute(query, {"terms": missing}).all())
        return ids

    @staticmethod
    def _count(connection: Connection, docs: int, length: int) -> None:
        connection.execute(
            text(
                "UPDATE keyword_stats SET docs = docs + :docs,"
                " total_length = total_length + :length"
                f" WHERE shard = pg_backend_pid() % {STATS_SHARDS}"
            ),
            {"docs": docs, "length": length},
        )


_IMPLEMENTATIONS: dict[str, KeywordIndex] = {
    "sqlite": SqliteKeywordIndex(),
    "postgresql": PostgresKeywordIndex(),
}


def for_engine(bind: Connection) -> KeywordIndex:
    """The keyword index of the store ``bind`` is connected to."""
    return _IMPLEMENTATIONS[bind.dialect.name]
