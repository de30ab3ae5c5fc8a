"""The keyword index behind lexical search: one interface, one implementation per engine.

SQLite keeps FTS5 (``porter unicode61 remove_diacritics 2``, BM25 via ``bm25()``, kept in step
by triggers for edits and deletes); a large store also saves a copy beside it that answers
unfiltered searches in bounded time (``keyword_saved``). PostgreSQL keeps postings the same
tokenizer produces, in Python, and ranks them by the same BM25 in SQL: ``tf`` is twice the
title's count plus the abstract's (FTS5's column weights 2 and 1), a document's length is its
token count over both fields (FTS5 does not weight lengths), k1 = 1.2, b = 0.75 and FTS5's IDF
floor of 1e-6.

Collection totals live in ``keyword_stats``, a few rows each importer updates one of (chosen by
its server process id), so concurrent imports never queue on one row; a term's document
frequency is the count of its postings, read in the same scan that scores them.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)

from broadsheet.db.schema import papers
from broadsheet.search import keyword_saved
from broadsheet.search.filters import SearchFilters
from broadsheet.search.saved_lag import SavedLag

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

# unicode61 keeps letters and digits and folds case; on ASCII text that is exactly this
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Every other ASCII character separates words, so text splits at them into runs that FTS5
# tokenizes alike alone or in place; runs with non-ASCII characters are left to FTS5.
_RUN = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
_STEM_CACHE_LIMIT = 1_000_000

Terms = tuple[tuple[str, int], ...]  # (term, occurrences) of one word or run


class _StemCache(dict[str, Terms]):
    """What FTS5 makes of each word seen (its Porter stem; for a run with non-ASCII
    characters, its terms), asked of FTS5 once per word."""

    def of(self, words: set[str]) -> dict[str, Terms]:
        """The terms of each of ``words``."""
        found = {word: terms for word in words if (terms := self.get(word)) is not None}
        missing = [word for word in words if word not in found]
        if missing:
            if len(self) + len(missing) > _STEM_CACHE_LIMIT:
                self.clear()
            stemmed = _tokenizer.documents([(None, word) for word in missing])
            for word, (terms, _) in zip(missing, stemmed, strict=True):
                found[word] = self[word] = tuple(terms.items())  # abstract weight: 1
        return found


_stems = _StemCache()


def _words(text: str | None) -> list[str]:
    """``text``'s lower-cased ASCII words, and its runs with non-ASCII characters as they are."""
    if not text:
        return []
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    return [run.lower() if run.isascii() else run for run in _RUN.findall(text)]


def documents_terms(
    texts: Sequence[tuple[str | None, str | None]],
) -> list[tuple[dict[str, int], int]]:
    """Weighted term frequencies (title twice) and length in tokens of each (title, abstract),
    exactly as FTS5 indexes them.

    Text is split here and each distinct word stemmed by FTS5 once, then remembered: ten times
    faster than passing every document through FTS5.
    """
    split = [(_words(title), _words(abstract)) for title, abstract in texts]
    stems = _stems.of({word for pair in split for words in pair for word in words})
    results: list[tuple[dict[str, int], int]] = []
    for title_words, abstract_words in split:
        frequencies: dict[str, int] = {}
        length = 0
        for words, weight in ((title_words, TITLE_WEIGHT), (abstract_words, ABSTRACT_WEIGHT)):
            for word, count in Counter(words).items():  # counted in C, stemmed once per word
                for term, occurrences in stems[word]:
                    frequencies[term] = frequencies.get(term, 0) + count * occurrences * weight
                    length += count * occurrences
        results.append((frequencies, length))
    return results


def document_terms(title: str | None, abstract: str | None) -> tuple[dict[str, int], int]:
    """Weighted term frequencies of one paper (title twice) and its length in tokens."""
    return documents_terms([(title, abstract)])[0]


def tokens(text: str | None) -> list[str]:
    """The distinct index terms of ``text``."""
    return list(document_terms(text, None)[0])


def _stems_of(texts: Sequence[tuple[str | None, str | None]]) -> list[dict[str, int]]:
    return [frequencies for frequencies, _ in documents_terms(texts)]


def hold_every_term(texts: Sequence[str], wanted: frozenset[str]) -> list[bool]:
    """Whether each of ``texts`` holds every index term in ``wanted``, its words split and
    stemmed as the index does it (each distinct word once: far cheaper than ``documents_terms``).

    Porter rewrites only a word's ending, so a term less its last letter is part of every word
    it comes from: an ASCII text without that part cannot hold the term and is not split.
    """
    cues = [term[:-1] or term for term in wanted if term.isascii()]

    def may_hold(text: str) -> bool:
        lowered = text.lower()
        return not text.isascii() or all(cue in lowered for cue in cues)

    split = {at: set(_words(text)) for at, text in enumerate(texts) if may_hold(text)}
    forms: dict[str, set[str]] = {}  # a word of the texts -> the wanted terms it gives
    for word, terms in _stems.of(set().union(*split.values())).items():
        if given := {term for term, _ in terms if term in wanted}:
            forms[word] = given
    held = [False] * len(texts)
    for at, words in split.items():
        held[at] = {term for word in words & forms.keys() for term in forms[word]} == wanted
    return held


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

    def save(
        self,
        engine: Engine,
        progress: Callable[[int, int], bool] | None = None,
        start: bool = True,
    ) -> int | None:
        """Save what a large store searches besides itself; papers it holds, or None.
        ``start`` false: only bring up to date what is already saved."""

    def saved_lag(self, connection: Connection) -> SavedLag | None:
        """How far the index saved beside the store is behind it; None where none is due."""


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

    def save(
        self,
        engine: Engine,
        progress: Callable[[int, int], bool] | None = None,
        start: bool = True,
    ) -> int | None:
        """Save a large store's keyword index beside it (``keyword_saved``)."""
        return keyword_saved.save_keywords(engine, _stems_of, progress, start)

    def saved_lag(self, connection: Connection) -> SavedLag | None:
        return keyword_saved.saved_lag(connection)

    def search(
        self,
        connection: Connection,
        terms: Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        # the saved index knows nothing of filters: FTS5 answers filtered searches
        unfiltered = filters is None or filters.is_empty()
        saved = keyword_saved.opened(connection) if unfiltered else None
        if saved is None:
            return self._fts(connection, terms, limit, filters=filters)
        index, state = saved
        found = keyword_saved.search_saved(
            connection, index, state, terms, _stems_of, limit, self._fts_after
        )
        return self._fts(connection, terms, limit) if found is None else found

    def _fts_after(
        self, connection: Connection, terms: Sequence[str], limit: int, after_seq: int
    ) -> list[tuple[int, float]]:
        """FTS5's best among papers after ``after_seq`` (a range FTS5 seeks to)."""
        return self._fts(connection, terms, limit, among=self._FTS.c.rowid > after_seq)

    def _fts(
        self,
        connection: Connection,
        terms: Sequence[str],
        limit: int,
        filters: SearchFilters | None = None,
        among: ColumnElement[bool] | None = None,
    ) -> list[tuple[int, float]]:
        expression = " OR ".join(f'"{t}"' for t in terms)
        rank = func.bm25(literal_column("papers_fts"), float(TITLE_WEIGHT), float(ABSTRACT_WEIGHT))
        statement = select(self._FTS.c.rowid, -rank).where(
            text("papers_fts MATCH :expression").bindparams(expression=expression)
        )
        allowed = _filtered(filters)
        if allowed is not None:
            statement = statement.where(self._FTS.c.rowid.in_(allowed))
        if among is not None:
            statement = statement.where(among)
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
), blocks AS (
    SELECT term_id, seqs, tfs, lengths FROM keyword_blocks
    WHERE term_id = ANY(CAST(%(term_ids)s AS integer[]))
), frequency AS (
    SELECT term_id, sum(cardinality(seqs))::float8 AS docs FROM blocks GROUP BY term_id
), idf AS (
    SELECT frequency.term_id,
           query.weight * greatest(
               ln((totals.docs - frequency.docs + 0.5::float8) / (frequency.docs + 0.5::float8)),
               1e-6::float8
           ) AS idf
    FROM frequency JOIN query USING (term_id) CROSS JOIN totals
), hits AS (
    SELECT blocks.term_id, u.seq, u.tf, u.length
    FROM blocks CROSS JOIN LATERAL unnest(blocks.seqs, blocks.tfs, blocks.lengths)
        AS u(seq, tf, length)
)
SELECT hits.seq,
       sum(idf.idf * hits.tf * {K1 + 1}::float8 / (hits.tf + {K1}::float8 * ({1 - B}::float8
           + {B}::float8 * hits.length / totals.average_length))) AS score
FROM hits JOIN idf USING (term_id) CROSS JOIN totals
{{where}}
GROUP BY hits.seq
ORDER BY score DESC, hits.seq
LIMIT %(limit)s
"""


# A batch's documents arrive here (one row each, emptied at commit); PostgreSQL groups them
# into block rows, in the primary key's order so the batch walks the index's pages once.
_INCOMING = """
CREATE TEMPORARY TABLE IF NOT EXISTS keyword_incoming (
    paper_seq integer, block integer, length integer, term_ids integer[], tfs integer[]
) ON COMMIT DELETE ROWS
"""
_FROM_INCOMING = """
INSERT INTO keyword_docs (paper_seq, block, length, term_ids)
SELECT paper_seq, block, length, term_ids FROM keyword_incoming;
INSERT INTO keyword_blocks (term_id, block, seqs, tfs, lengths)
SELECT u.term_id, i.block, array_agg(i.paper_seq ORDER BY i.paper_seq),
       array_agg(u.tf ORDER BY i.paper_seq), array_agg(i.length ORDER BY i.paper_seq)
FROM keyword_incoming AS i CROSS JOIN LATERAL unnest(i.term_ids, i.tfs) AS u(term_id, tf)
GROUP BY u.term_id, i.block
ORDER BY u.term_id, i.block;
TRUNCATE keyword_incoming
"""


def _array(values: Iterable[int]) -> str:
    """An integer array in COPY's text format."""
    return "{" + ",".join(map(str, values)) + "}"


class PostgresKeywordIndex:
    """BM25 postings in plain tables: keyword_terms, keyword_blocks, keyword_docs, stats.

    A block is one term's postings among a run of at most ``BLOCK_SIZE`` papers indexed
    together: their sequence numbers, term frequencies and lengths as three arrays, so
    scoring reads nothing but the query terms' blocks and an import writes one row where it
    would write dozens. keyword_docs remembers each paper's block and terms, so it can be
    forgotten (the ``keyword_forget`` function, also run by a trigger when a paper is deleted)
    by rewriting only its own blocks.
    """

    BLOCK_SIZE = 1024

    def number_new(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Nothing to do: the identity column numbers papers as they are inserted."""

    def add(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        seqs = self._seqs(connection, rows)
        terms = documents_terms([(row["title"], row["abstract"]) for row in rows])
        documents = sorted(
            (row["seq"] if "seq" in row else seqs[row["id"]], frequencies, length)
            for row, (frequencies, length) in zip(rows, terms, strict=True)
        )
        term_ids = self._term_ids(connection, {t for _, tf, _ in documents for t in tf})
        runs = len(range(0, len(documents), self.BLOCK_SIZE))
        block_ids = (
            connection.execute(
                text("SELECT nextval('keyword_block_ids') FROM generate_series(1, :n)"),
                {"n": runs},
            )
            .scalars()
            .all()
        )
        connection.exec_driver_sql(_INCOMING)
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY keyword_incoming (paper_seq, block, length, term_ids, tfs) FROM STDIN"
            ) as copy:
                copy.write(
                    "".join(
                        f"{seq}\t{block_ids[number // self.BLOCK_SIZE]}\t{length}"
                        f"\t{_array(map(term_ids.__getitem__, frequencies))}"
                        f"\t{_array(frequencies.values())}\n"
                        for number, (seq, frequencies, length) in enumerate(documents)
                    )
                )
            cursor.execute(_FROM_INCOMING)
        self._count(connection, len(documents), sum(length for _, _, length in documents))

    def rebuild(self, connection: Connection, batch: int = 10_000) -> None:
        connection.exec_driver_sql(
            "TRUNCATE keyword_blocks, keyword_docs, keyword_terms RESTART IDENTITY"
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

    def save(
        self,
        engine: Engine,
        progress: Callable[[int, int], bool] | None = None,
        start: bool = True,
    ) -> int | None:
        """Nothing to save: the postings are in the store."""
        return None

    def saved_lag(self, connection: Connection) -> SavedLag | None:
        """Nothing saved: the postings are in the store."""
        return None

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
            where = f"WHERE hits.seq IN ({compiled.string})"
            parameters.update(compiled.params)
        rows = connection.exec_driver_sql(_SCORE.format(where=where), parameters)
        return [(seq, float(score)) for seq, score in rows]

    def document_counts(self, connection: Connection, stems: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(stems))
        found = dict(
            connection.execute(
                text(
                    "SELECT t.term, (SELECT coalesce(sum(cardinality(b.seqs)), 0)"
                    " FROM keyword_blocks b WHERE b.term_id = t.id)"
                    " FROM keyword_terms t WHERE t.term = ANY(:terms)"
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


def for_engine(bind: Connection | Engine) -> KeywordIndex:
    """The keyword index of the store ``bind`` is connected to."""
    return _IMPLEMENTATIONS[bind.dialect.name]


def save_keyword_index(
    engine: Engine, progress: Callable[[int, int], bool] | None = None, start: bool = True
) -> int | None:
    """Save what the store's keyword search reads besides the store (``broadsheet index``);
    how many papers that holds, or None where there is nothing to save. ``start`` false
    (after an import): only bring up to date what is already saved."""
    return for_engine(engine).save(engine, progress, start)
