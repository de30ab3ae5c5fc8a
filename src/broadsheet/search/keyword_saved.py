"""A large SQLite store's keyword index, saved beside it as a tantivy index.

FTS5 ranks by BM25 only after scoring every paper that holds a query term, so a query with a
common word costs time in proportion to the store (35–47 ms p50 at 1M papers). tantivy keeps
block-max scores and skips blocks that cannot reach the current top ``limit`` (block-max WAND):
a query costs about the same at any size. ``broadsheet index`` saves one for a store of
``SAVED_FROM`` papers or more, in ``<store>.keywords/``.

It holds the terms FTS5 makes of each paper (the same Porter stems, the title counted twice),
so both indexes find the same papers for the same words; tantivy's BM25 differs from FTS5's
only in its IDF (``ln(1 + (N - n + 0.5) / (n + 0.5))``) and in counting the title twice in a
paper's length too. ``keyword_saved`` records the last paper it holds and the last change it
took in; triggers log every edited or deleted paper in ``keyword_changes``. A search takes the
saved index's answer without the papers changed since, and asks FTS5 for the rest: papers
added since (a ``rowid`` range FTS5 seeks to) and the changed ones (by ``rowid``). So a search
sees every import and edit at once, and the next ``index`` takes them in.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy
from sqlalchemy import Connection, Engine

from broadsheet.search.saved_lag import SavedLag

log = logging.getLogger(__name__)

SAVED_FROM = 20_000  # papers; FTS5 alone answers smaller stores in a few milliseconds
READ_BATCH = 10_000  # papers read from the store and added at a time while saving
WRITER_MEMORY = 256_000_000  # bytes of tantivy's indexing buffer, shared by its threads
TOKENIZER = "stems"  # the text given to tantivy is already FTS5's terms, space-separated

STALE_MOST = 2_000  # papers changed since the save scored per search; more: FTS5 alone
K1, B = 1.2, 0.75  # tantivy's BM25

SeqScores = list[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class SavedState:
    """What the saved index holds: papers up to ``last_seq``, changes up to ``last_change``."""

    last_seq: int
    last_change: int
    generation: str  # changes with each save; "" while the first save runs
    documents: int = 0
    total_length: int = 0  # terms, title counted twice, as tantivy counts a paper's length

    @property
    def average_length(self) -> float:
        return self.total_length / self.documents if self.documents else 1.0


def keywords_dir(engine: Engine) -> Path | None:
    """Where a SQLite store keeps its saved keyword index; None for in-memory stores."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.keywords")


def saved_state(connection: Connection) -> SavedState | None:
    row = connection.exec_driver_sql(
        "SELECT last_seq, last_change, generation, documents, total_length FROM keyword_saved"
    ).first()
    return None if row is None else SavedState(*row)


def saved_lag(connection: Connection) -> SavedLag | None:
    """Papers the saved index holds, and those added or changed since it was saved; None for a
    store that has none and is too small to need one."""
    folder = keywords_dir(connection.engine)
    if folder is None:
        return None
    state = saved_state(connection)
    papers = connection.exec_driver_sql("SELECT count(*) FROM papers").scalar_one()
    if state is None or not state.generation or not tantivy.Index.exists(str(folder)):
        return SavedLag(0, papers, STALE_MOST) if papers >= SAVED_FROM else None
    added, changed = connection.exec_driver_sql(
        "SELECT (SELECT count(*) FROM papers WHERE seq > ?),"
        " (SELECT count(DISTINCT seq) FROM keyword_changes WHERE id > ?)",
        (state.last_seq, state.last_change),
    ).one()
    return SavedLag(state.documents, added + changed, STALE_MOST)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("seq", stored=True, indexed=True)
    builder.add_integer_field("length", stored=True)
    builder.add_text_field("terms", tokenizer_name=TOKENIZER, index_option="freq")
    return builder.build()


def _open(folder: Path, create: bool = False) -> tantivy.Index:
    if create:
        index = tantivy.Index(_schema(), path=str(folder), reuse=False)
    else:
        index = tantivy.Index.open(str(folder))
    index.register_tokenizer(
        TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    )
    return index


def _document_text(frequencies: dict[str, int]) -> str:
    """The terms of one paper, each repeated as often as FTS5 weighs it."""
    return " ".join(" ".join([term] * count) for term, count in frequencies.items())


def bm25(
    frequencies: dict[str, int],
    weights: dict[str, float],
    document_frequency: Callable[[str], int],
    documents: int,
    average_length: float,
) -> float:
    """tantivy's BM25 of one paper (its weighted term counts) for the weighted stems."""
    length = sum(frequencies.values())
    score = 0.0
    for stem, weight in weights.items():
        tf = frequencies.get(stem)
        if not tf:
            continue
        holding = document_frequency(stem)
        idf = math.log(1 + (documents - holding + 0.5) / (holding + 0.5))
        norm = K1 * (1 - B + B * length / average_length)
        score += weight * idf * tf * (K1 + 1) / (tf + norm)
    return score


class SavedKeywords:
    """One opened saved index, searched by any number of threads."""

    def __init__(self, index: tantivy.Index, generation: str) -> None:
        self.index = index
        self.generation = generation
        self.schema = index.schema
        self.searcher = index.searcher()

    @classmethod
    def open(cls, folder: Path, generation: str) -> SavedKeywords | None:
        try:
            return cls(_open(folder), generation)
        except (OSError, ValueError) as exc:
            log.warning("saved keyword index %s not usable (%s); searching FTS5 alone", folder, exc)
            return None

    def top(self, weights: dict[str, float], limit: int) -> SeqScores:
        """The best ``limit`` (seq, BM25) for the stems OR-ed, each weighted."""
        clauses = [
            (
                tantivy.Occur.Should,
                tantivy.Query.boost_query(
                    tantivy.Query.term_query(self.schema, "terms", stem), weight
                ),
            )
            for stem, weight in weights.items()
        ]
        query = clauses[0][1] if len(clauses) == 1 else tantivy.Query.boolean_query(clauses)
        searcher = self.searcher
        found = searcher.search(query, limit, count=False).hits
        return [(searcher.doc(address).get_first("seq"), score) for score, address in found]

    def document_frequency(self, stem: str) -> int:
        return self.searcher.doc_freq("terms", stem)

    @property
    def documents(self) -> int:
        return self.searcher.num_docs


_opened: dict[str, SavedKeywords] = {}
_unusable: dict[str, str] = {}  # generations that would not open, not retried
_opened_lock = threading.Lock()


def opened(connection: Connection) -> tuple[SavedKeywords, SavedState] | None:
    """The saved index of ``connection``'s store as it is now, or None if it has none."""
    folder = keywords_dir(connection.engine)
    if folder is None:
        return None
    state = saved_state(connection)
    if state is None or not state.generation:
        return None
    key = str(connection.engine.url)
    with _opened_lock:
        saved = _opened.get(key)
        if saved is None or saved.generation != state.generation:
            if _unusable.get(key) == state.generation:
                return None
            saved = SavedKeywords.open(folder, state.generation)
            if saved is None:
                _unusable[key] = state.generation
                return None
            _opened[key] = saved
    return saved, state


FtsSearch = Callable[[Connection, Sequence[str], int, int], SeqScores]
StemsOf = Callable[[Sequence[tuple[str | None, str | None]]], list[dict[str, int]]]
Progress = Callable[[int, int], bool]


def search_saved(
    connection: Connection,
    saved: SavedKeywords,
    state: SavedState,
    terms: Sequence[str],
    stems_of: StemsOf,
    limit: int,
    fts: FtsSearch,
) -> SeqScores | None:
    """The best ``limit`` papers: the saved index's, less papers changed since it was saved;
    papers changed since, scored here as tantivy would; FTS5's best among papers added since.

    ``fts(connection, terms, limit, after_seq)`` searches FTS5 among papers after a seq.
    None when too many papers changed since the save to score them here.
    """
    stale = set(
        connection.exec_driver_sql(
            "SELECT seq FROM keyword_changes WHERE id > ?", (state.last_change,)
        ).scalars()
    )
    if len(stale) > STALE_MOST:
        return None
    stems = stems_of([(None, " ".join(terms))])[0]  # index forms, counted as FTS5 would
    weights = {stem: float(count) for stem, count in stems.items()}
    if not weights:
        return []
    wanted = limit + len(stale)
    while True:
        found = saved.top(weights, wanted)
        kept = [(seq, s) for seq, s in found if seq <= state.last_seq and seq not in stale]
        # a save that stopped between its commit and its record leaves papers the record
        # does not count yet: ask for more until ``limit`` are left or the index has no more
        if len(kept) >= limit or len(found) < wanted:
            break
        wanted *= 2
    if stale:
        changed = connection.exec_driver_sql(
            "SELECT seq, title, abstract FROM papers WHERE seq IN"
            f" ({','.join('?' * len(stale))}) AND seq <= ?",
            (*sorted(stale), state.last_seq),
        ).all()
        texts = stems_of([(title, abstract) for _, title, abstract in changed])
        average = state.average_length
        for (seq, _, _), frequencies in zip(changed, texts, strict=True):
            score = bm25(frequencies, weights, saved.document_frequency, saved.documents, average)
            if score > 0:
                kept.append((seq, score))
    newest = connection.exec_driver_sql("SELECT max(seq) FROM papers").scalar() or 0
    if newest > state.last_seq:
        kept += fts(connection, terms, limit, state.last_seq)
    kept.sort(key=lambda hit: (-hit[1], hit[0]))
    return kept[:limit]


def save_keywords(
    engine: Engine, stems_of: StemsOf, progress: Progress | None = None, start: bool = True
) -> int | None:
    """Bring the saved keyword index up to date with the store; how many papers it holds.

    None (and nothing saved) for stores under ``SAVED_FROM`` papers, in-memory stores, while
    another process is saving, or (``start`` false) where no index is saved yet. The first
    save reads every paper; later ones only the papers added or changed since. ``stems_of``
    gives each (title, abstract)'s weighted terms.
    """
    folder = keywords_dir(engine)
    if folder is None:
        return None
    with engine.connect() as connection:
        state = saved_state(connection)
        if state is not None and state.generation and not tantivy.Index.exists(str(folder)):
            state = None  # its files are gone: start again
        if state is None or not state.generation:
            if not start:
                return None
            papers = connection.exec_driver_sql("SELECT count(*) FROM papers").scalar_one()
            if papers < SAVED_FROM:
                return None
    if state is None or not state.generation:
        # from here on edits are logged; searches keep to FTS5 until the first save ends
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO keyword_saved (id, last_seq, last_change, generation)"
                " VALUES (1, 0, 0, '') ON CONFLICT (id) DO UPDATE SET"
                " last_seq = 0, last_change = 0, generation = '', documents = 0,"
                " total_length = 0"
            )
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        index = _open(folder, create=True)
        state = SavedState(0, 0, "")
    else:
        index = _open(folder)
    try:
        writer = index.writer(heap_size=WRITER_MEMORY)
    except ValueError as exc:  # tantivy's lock: another process is saving
        log.warning("keyword index not saved: %s", exc)
        return None
    with engine.connect() as connection:
        last_change, top = connection.exec_driver_sql(
            "SELECT (SELECT coalesce(max(id), 0) FROM keyword_changes),"
            " (SELECT coalesce(max(seq), 0) FROM papers)"
        ).one()
        changed = sorted(
            connection.exec_driver_sql(
                "SELECT DISTINCT seq FROM keyword_changes WHERE id > ? AND id <= ? AND seq <= ?",
                (state.last_change, last_change, state.last_seq),
            ).scalars()
        )
        total_length = state.total_length - _lengths(index, changed, state.last_seq)
        for seq in changed:
            writer.delete_documents_by_term("seq", seq)
        # papers after the record are added again below; a save stopped between its commit
        # and its record may have left some
        newer = tantivy.Query.range_query(
            index.schema,
            "seq",
            tantivy.FieldType.Integer,
            state.last_seq,
            None,
            include_lower=False,
            use_inverted_index=True,
        )
        writer.delete_documents_by_query(newer)
        total = len(changed) + max(top - state.last_seq, 0)
        done = 0
        for start_at in range(0, len(changed), READ_BATCH):
            chunk = changed[start_at : start_at + READ_BATCH]
            rows = connection.exec_driver_sql(
                "SELECT seq, title, abstract FROM papers WHERE seq IN"
                f" ({','.join('?' * len(chunk))})",
                tuple(chunk),
            ).all()
            total_length += _add(writer, rows, stems_of)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        after = state.last_seq
        while True:
            rows = connection.exec_driver_sql(
                "SELECT seq, title, abstract FROM papers WHERE seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?",
                (after, top, READ_BATCH),
            ).all()
            if not rows:
                break
            total_length += _add(writer, rows, stems_of)
            after = rows[-1][0]
            done += len(rows)
            if progress is not None:
                progress(min(done, total), total)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    documents = index.searcher().num_docs
    generation = uuid.uuid4().hex[:12]
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE keyword_saved SET last_seq = ?, last_change = ?, generation = ?,"
            " documents = ?, total_length = ?",
            (top, last_change, generation, documents, total_length),
        )
        connection.exec_driver_sql("DELETE FROM keyword_changes WHERE id <= ?", (last_change,))
    return documents


def _lengths(index: tantivy.Index, seqs: Sequence[int], last_seq: int) -> int:
    """The summed lengths of the saved papers among ``seqs`` (and of any saved after
    ``last_seq``, by a save that stopped before its record)."""
    searcher = index.searcher()
    queries = [tantivy.Query.term_query(index.schema, "seq", seq) for seq in seqs]
    queries.append(
        tantivy.Query.range_query(
            index.schema,
            "seq",
            tantivy.FieldType.Integer,
            last_seq,
            None,
            include_lower=False,
            use_inverted_index=True,
        )
    )
    length = 0
    for query in queries:
        holding = searcher.search(query, 1, count=True).count
        if holding:
            for _, address in searcher.search(query, holding, count=False).hits:
                length += searcher.doc(address).get_first("length") or 0
    return length


def _add(
    writer: tantivy.IndexWriter,
    rows: Sequence[tuple[int, str | None, str | None]],
    stems_of: StemsOf,
) -> int:
    """Add the papers; their summed lengths."""
    added = 0
    for (seq, _, _), frequencies in zip(
        rows, stems_of([(title, abstract) for _, title, abstract in rows]), strict=True
    ):
        length = sum(frequencies.values())
        writer.add_document(
            tantivy.Document(seq=seq, length=length, terms=_document_text(frequencies))
        )
        added += length
    return added
