"""The ``broadsheet`` command: one entry point for serving, importing, harvesting and more."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from broadsheet.config import get_settings
from broadsheet.db.engine import open_store
from broadsheet.ingest.runner import (
    ImportAborted,
    ImportBusy,
    ImportStopped,
    ImportSummary,
    OnError,
    import_file,
)
from broadsheet.sources.detect import FORMATS, UnknownFormat

app = typer.Typer(
    help="Broadsheet: a self-hosted daily research-papers service.", no_args_is_help=True
)
harvest_app = typer.Typer(help="Harvest new papers from live sources.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
users_app = typer.Typer(help="Manage member accounts.", no_args_is_help=True)
digest_app = typer.Typer(help="The email digest.", no_args_is_help=True)
app.add_typer(digest_app, name="digest")
app.add_typer(harvest_app, name="harvest")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
console = Console(stderr=True)


def _store():
    return open_store(get_settings().database_url)


def _shown_url(url: str) -> str:
    """A database URL fit to print: its password masked."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def _summary_table(title: str, rows: list[tuple[str, object]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def _print_import_summary(summary: ImportSummary) -> None:
    rows: list[tuple[str, object]] = [
        ("format", summary.format),
        ("read", summary.read),
        ("added", summary.added),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("skipped (bad records)", summary.skipped),
        ("errors", summary.errors),
        ("seconds", f"{summary.seconds:.1f}"),
        ("papers/s", f"{summary.papers_per_second:,.0f}"),
    ]
    if summary.resumed_from_line:
        rows.insert(1, ("resumed after record", summary.resumed_from_line))
    if summary.closed_stale_run:
        rows.insert(1, ("closed as failed", f"run {summary.closed_stale_run}, left running"))
    console.print(_summary_table(f"Imported {Path(summary.path).name}", rows))
    for message in summary.error_messages[:20]:
        console.print(f"[red]error[/red] {message}", highlight=False)
    if summary.errors > 20:
        console.print(f"... and {summary.errors - 20} more errors")


@app.command("import")
def import_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="Files to import (format detected)."
        ),
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")
    ] = None,
    on_error: Annotated[
        OnError, typer.Option(help="On a bad record: skip it, or stop.")
    ] = OnError.abort,
    restart: Annotated[
        bool, typer.Option(help="Ignore a checkpoint and read from the start.")
    ] = False,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Records per transaction.")] = None,
) -> None:
    """Import daily-papers JSON, the arXiv metadata snapshot, or a BEIR corpus.jsonl."""
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    engine = _store()
    failed = False
    for path in files:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task(path.name, total=path.stat().st_size)
            try:
                summary = import_file(
                    engine,
                    path,
                    fmt=fmt,
                    on_error=on_error,
                    batch_size=batch_size or get_settings().import_batch_size,
                    restart=restart,
                    position=lambda done, p=progress, t=task: p.update(t, completed=done),
                )
            except (UnknownFormat, ImportBusy) as exc:
                progress.stop()
                console.print(f"[red]error[/red] {exc}")
                failed = True
                continue
            except ImportStopped as exc:
                progress.stop()
                again = f" to resume after record {exc.resume_line}" if exc.resume_line else ""
                console.print(
                    f"[red]import stopped[/red]: {escape(exc.cause)}; "
                    f"run the same command again{again}",
                    highlight=False,
                )
                raise typer.Exit(1) from None
            except ImportAborted as exc:
                progress.stop()
                _print_import_summary(exc.summary)
                console.print(
                    f"[red]stopped[/red] at the bad record above; the {exc.summary.read} records "
                    "before it are stored. Fix it and run again, or pass --on-error skip."
                )
                raise typer.Exit(1) from exc
        _print_import_summary(summary)
        failed = failed or summary.errors > 0
    if failed:
        raise typer.Exit(1)


@harvest_app.command("arxiv")
def harvest_arxiv_command(
    category: Annotated[str, typer.Option(help="arXiv category, e.g. cs.LG.")],
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First submission day.")],
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day (default today).")
    ] = None,
) -> None:
    """Harvest a category from the arXiv API (one request per 3 s, paged, retried)."""
    from broadsheet.ingest.harvest import HarvestError, harvest_arxiv

    settings = get_settings()
    engine = _store()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(f"arXiv {category}", total=None)

        def on_page(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            summary = harvest_arxiv(
                engine,
                category=category,
                since=since.date(),
                until=until.date() if until else None,
                settings=settings,
                on_page=on_page,
            )
        except HarvestError as exc:
            progress.stop()
            console.print(f"[red]error[/red] {exc}")
            raise typer.Exit(1) from exc
    console.print(
        _summary_table(
            f"Harvested {category} since {since.date()}",
            [
                ("requests", summary.requests),
                ("retries", summary.retries),
                ("read", summary.read),
                ("added", summary.added),
                ("updated", summary.updated),
                ("unchanged", summary.unchanged),
                ("seconds", f"{summary.seconds:.1f}"),
            ],
        )
    )


@app.command()
def stats() -> None:
    """Print what the store holds."""
    from broadsheet.papers.repository import store_stats

    with _store().connect() as connection:
        s = store_stats(connection)
    rows: list[tuple[str, object]] = [
        ("database", _shown_url(get_settings().database_url)),
        ("papers", f"{s.papers:,}"),
        ("authors", f"{s.authors:,}"),
        ("organisations", f"{s.organisations:,}"),
        ("feed entries", f"{s.feed_entries:,} on {s.feed_days:,} days"),
        (
            "published",
            f"{s.first_published:%Y-%m-%d} to {s.last_published:%Y-%m-%d}"
            if s.first_published
            else "-",
        ),
        ("sources", ", ".join(f"{name} {n:,}" for name, n in s.sources) or "-"),
        ("top categories", ", ".join(f"{c} {n:,}" for c, n in s.top_categories) or "-"),
    ]
    Console().print(_summary_table("Broadsheet store", rows))


class _RateColumn(ProgressColumn):
    """Papers per second since the start ("-" until there is a measure), then the summary's
    rate once it is known (rich's own speed, over the last 30 s only, ran well above it)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.fields.get("rate") or (task.completed / elapsed if elapsed else None)
        shown = f"{speed:,.1f} papers/s" if speed else "- papers/s"
        return Text(shown, style="progress.data.speed")


def _embedding_progress(transient: bool = False, rate: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *([_RateColumn()] if rate else []),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


@app.command()
def index(
    model: Annotated[
        str | None, typer.Option(help="Embedding model (default from settings).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model batch.")] = 64,
    part_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Papers embedded and committed together; index runs on other machines take "
            "other parts.",
        ),
    ] = 256,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Processes on this machine, each with its own copy of the model and its share "
            "of the cores.",
        ),
    ] = 1,
    device: Annotated[
        str, typer.Option(help='"cpu", or "cuda" (or "cuda:1") to embed on a GPU with PyTorch.')
    ] = "cpu",
) -> None:
    """Embed every paper that lacks a vector for the model (or whose text changed)."""
    from broadsheet.search.embed import EmbedderUnavailable, load_embedder
    from broadsheet.search.index_workers import IndexJob, index_in_processes
    from broadsheet.search.indexing import count_pending, index_papers
    from broadsheet.search.keyword_index import save_keyword_index
    from broadsheet.search.vectors import save_graph, vectors_unavailable

    engine = _store()
    problem = vectors_unavailable(engine)
    if problem is not None:
        console.print(f"[red]error[/red] nothing indexed: {escape(problem)}")
        raise typer.Exit(1)
    name = model or get_settings().embedding_model
    try:
        embedder = load_embedder(name, device=device)
    except EmbedderUnavailable as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from exc
    passages = get_settings().embed_passages
    pending = count_pending(engine, embedder.name, passages)
    with _embedding_progress(rate=True) as progress:
        task = progress.add_task(f"embedding ({embedder.name})", total=pending)

        def advance(papers: int) -> None:
            progress.advance(task, papers)

        if workers > 1:
            settings = get_settings()
            job = IndexJob(settings.database_url, name, device, batch_size, part_size, passages)
            summary = index_in_processes(job, workers, progress=advance)
        else:
            summary = index_papers(
                engine,
                embedder,
                batch_size=batch_size,
                progress=advance,
                part_size=part_size,
                passages=passages,
            )
        progress.update(task, rate=summary.papers_per_second)  # over the whole run, at last
    with _embedding_progress(transient=True) as progress:
        task = progress.add_task("vector graph", total=None)

        def graph_progress(done: int, total: int) -> bool:
            progress.update(task, completed=done, total=total)
            return True

        graph_size = save_graph(engine, embedder.name, progress=graph_progress)
        progress.update(task, description="keyword index", completed=0, total=None)
        saved_keywords = save_keyword_index(engine, progress=graph_progress)
    rows = [
        ("embedded now", summary.embedded),
        ("papers in store", summary.total),
        ("seconds", f"{summary.seconds:.1f}"),
        ("papers/s", f"{summary.papers_per_second:.1f}"),
        ("vector search", f"HNSW graph of {graph_size:,}" if graph_size else "exact"),
        ("abstract sentences", "embedded, for reranking" if passages else "off (settings)"),
        (
            "keyword search",
            f"saved index of {saved_keywords:,}" if saved_keywords is not None else "in the store",
        ),
    ]
    console.print(_summary_table(f"Indexed with {summary.model}", rows))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    since: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Published on or after.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Published on or before.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="arXiv category or archive (cs.LG, cs).")
    ] = None,
    organisation: Annotated[str | None, typer.Option(help="Organisation short name.")] = None,
    min_upvotes: Annotated[
        int | None, typer.Option(min=0, help="At least this many upvotes.")
    ] = None,
    sort: Annotated[str, typer.Option(help="relevance, date or upvotes.")] = "relevance",
    mode: Annotated[str, typer.Option(help="hybrid, lexical or dense.")] = "hybrid",
    limit: Annotated[int, typer.Option(min=1, max=500, help="Results per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Results to skip.")] = 0,
    no_cutoff: Annotated[
        bool, typer.Option("--no-cutoff", help="Keep results below the relevance cut-off.")
    ] = False,
    more: Annotated[
        bool, typer.Option("--more", help="List the less close results after the others.")
    ] = False,
    exact: Annotated[
        bool, typer.Option("--exact", help="Search the words as typed, uncorrected.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Show each result's keyword, meaning, fused and reranked scores."
        ),
    ] = False,
) -> None:
    """Search every paper by meaning and keywords."""
    import orjson

    from broadsheet.papers.present import paper_json
    from broadsheet.search.filters import SearchFilters
    from broadsheet.search.hybrid import Mode, SearchRequest, Sort, search_papers

    try:
        request = SearchRequest(
            query=query,
            filters=SearchFilters(
                since=since.date() if since else None,
                until=until.date() if until else None,
                category=category,
                organisation=organisation,
                min_upvotes=min_upvotes,
            ),
            sort=Sort(sort),
            mode=Mode(mode),
            limit=limit,
            offset=offset,
            cutoff=not no_cutoff,
            more=more,
            spell=not exact,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    results = search_papers(_store(), request, model=get_settings().embedding_model)
    if as_json:
        payload = {
            "query": results.query,
            "mode": results.mode,
            "corrected_query": results.corrected_query,
            "total": results.total,
            "less_close": results.less_close,
            "notice": results.notice,
            "results": [
                {
                    **paper_json(h.paper),
                    "score": round(h.score, 4),
                    "lexical": h.lexical,
                    "dense": h.dense,
                    "less_close": h.less_close,
                    **({"explain": h.explanation.as_dict()} if explain and h.explanation else {}),
                }
                for h in results.hits
            ],
        }
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        return
    if results.notice:
        console.print(f"[yellow]{results.notice}[/yellow]")
    out = Console()
    if results.corrected_query:  # as the site says it
        out.print(
            f"Showing results for [bold]{escape(results.corrected_query)}[/bold]. "
            f"Search instead for {escape(results.query)} with --exact.",
            highlight=False,
        )
    out.print(f"{results.total} results ({results.mode})", style="bold")
    for rank, hit in enumerate(results.hits, start=offset + 1):
        paper = hit.paper
        when = paper["published_at"].strftime("%Y-%m-%d") if paper["published_at"] else "-"
        out.print(f"{rank:>3}. [bold]{paper['title']}[/bold]", highlight=False)
        out.print(
            f"     {paper['id']} · {when} · ▲ {paper['upvotes']} · score {hit.score:.3f}",
            style="dim",
            highlight=False,
        )
        if explain and hit.explanation:
            out.print(f"     {hit.explanation.summary()}", style="dim", highlight=False)
    if results.less_close:
        told = "listed last" if more else "add --more to list them"
        out.print(f"{results.less_close} more, less close ({told})", highlight=False)


@app.command()
def similar(
    paper_id: Annotated[str, typer.Argument(help="arXiv id (any spelling) or stored id.")],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Papers closest in meaning to a paper."""
    import orjson

    from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id
    from broadsheet.papers.present import paper_json
    from broadsheet.search.embed import EmbedderUnavailable
    from broadsheet.search.similar import UnknownPaper, similar_papers

    with contextlib.suppress(InvalidArxivId):  # else a stored non-arXiv id (scifact:4983)
        paper_id = parse_arxiv_id(paper_id).id
    try:
        found = similar_papers(_store(), paper_id, limit, get_settings().embedding_model)
    except (UnknownPaper, EmbedderUnavailable) as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from exc
    if not found and not as_json:
        console.print(
            f"no similar papers: {paper_id} has no vector for this model yet "
            "(`broadsheet index` embeds it)"
        )
    if as_json:
        payload = [{**paper_json(s.paper), "similarity": round(s.similarity, 4)} for s in found]
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        return
    for item in found:
        Console().print(
            f"{item.similarity:.3f}  {item.paper['id']}  {item.paper['title']}", highlight=False
        )


class CitationFormat(StrEnum):
    bibtex = "bibtex"
    ris = "ris"


@app.command()
def cite(
    paper_ids: Annotated[
        list[str], typer.Argument(help="arXiv ids (any spelling) or stored ids, in order.")
    ],
    format: Annotated[CitationFormat, typer.Option("--format", "-f")] = CitationFormat.bibtex,
) -> None:
    """Papers as BibTeX (arXiv's eprint fields) or RIS, for LaTeX or a reference manager."""
    from broadsheet.papers.citations import bibtex, ris
    from broadsheet.papers.ids import canonical_id
    from broadsheet.papers.repository import get_paper

    with _store().connect() as connection:
        found = [
            (paper_id, get_paper(connection, canonical_id(paper_id))) for paper_id in paper_ids
        ]
    missing = [paper_id for paper_id, paper in found if paper is None]
    if missing:
        console.print(f"[red]error[/red] not in this store: {', '.join(missing)}")
        raise typer.Exit(1)
    write = bibtex if format == CitationFormat.bibtex else ris
    typer.echo(write([paper for _, paper in found], get_settings().base_url), nl=False)


@eval_app.command("beir")
def eval_beir(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A BEIR data set folder.")
    ],
    split: Annotated[str, typer.Option(help="qrels split: test, train or dev.")] = "test",
    model: Annotated[
        str | None, typer.Option(help="Embedding model (default from settings).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Scratch store: a SQLite file or a database URL (default: a cache)."),
    ] = None,
    tune: Annotated[
        bool, typer.Option(help="Also search for the best hybrid weight on this split.")
    ] = False,
) -> None:
    """Import a BEIR corpus into a scratch store and report nDCG@10, R@100, MRR@10."""
    from broadsheet.search import evaluate
    from broadsheet.search.fusion import DENSE_WEIGHT

    name = model or get_settings().embedding_model
    qrels_split = evaluate.load_split(directory, split)
    store_path = store or evaluate.default_store_path(directory, name)
    with _embedding_progress() as progress:
        task = progress.add_task(f"embedding corpus ({name})", total=None)
        engine, _, indexed = evaluate.prepare_store(
            directory, name, store_path, progress=lambda n: progress.advance(task, n)
        )
        progress.update(task, total=indexed.embedded, completed=indexed.embedded)
        queries = progress.add_task("running queries", total=len(qrels_split.queries))
        candidates = evaluate.collect_candidates(
            engine, qrels_split, name, progress=lambda n: progress.advance(queries, n)
        )
    shown = engine.url.render_as_string() if "://" in str(store_path) else store_path  # no password
    console.print(f"store {shown}: {indexed.total:,} documents, {indexed.embedded:,} embedded now")
    scores = evaluate.evaluate(engine, qrels_split, candidates, DENSE_WEIGHT, name)
    table = Table(title=f"{directory.name} · {split} · {len(qrels_split.queries)} queries · {name}")
    table.add_column("method")
    for measure in evaluate.MEASURE_NAMES.values():
        table.add_column(measure, justify="right")
    for run, values in scores.items():
        label = f"hybrid (dense weight {DENSE_WEIGHT}, reranked)" if run == "hybrid" else run
        table.add_row(label, *(f"{v:.4f}" for v in values.values()))
    Console().print(table)
    if tune:
        weights = [round(w * 0.05, 2) for w in range(21)]
        ranked = evaluate.tune_dense_weight(engine, qrels_split, candidates, weights, name)
        Console().print(
            "best dense weights (hybrid nDCG@10): "
            + ", ".join(f"{w:.2f}→{s:.4f}" for w, s in ranked[:5])
        )


@app.command()
def doctor(
    url: Annotated[
        str | None,
        typer.Option(help="The address the site is reached at: its /healthz is fetched there."),
    ] = None,
    mail_to: Annotated[
        str | None, typer.Option(help="Send a test mail here (else only connect to the server).")
    ] = None,
) -> None:
    """Check the settings, the store and its indexes, and say what to fix (exit 1 on a fail)."""
    from broadsheet.ops.doctor import as_table, failed, run_checks

    checks = run_checks(get_settings(), url=url, mail_to=mail_to)
    Console().print(as_table(checks))
    if failed(checks):
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (also done automatically on every command)."""
    from broadsheet.db.engine import make_engine
    from broadsheet.db.migrating import upgrade

    url = get_settings().database_url
    engine = make_engine(url)
    try:
        done = upgrade(engine)
    finally:
        engine.dispose()
    if done.created:
        said = f"created the schema (revision {done.now})"
    elif done.changed:
        said = f"migrated the schema from revision {done.found} to {done.now}"
    else:
        said = f"the schema is up to date (revision {done.now})"
    console.print(f"{said} in {_shown_url(url)}", markup=False, highlight=False)


@db_app.command("copy")
def db_copy(
    source: Annotated[str, typer.Argument(help="The store to copy from (a database URL).")],
    target: Annotated[str, typer.Argument(help="The store to copy into (migrated first).")],
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 2_000,
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty a target that holds rows, then copy.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish a copy that was stopped: keep the target's rows, copy those after them.",
        ),
    ] = False,
) -> None:
    """Copy a whole store, as of one moment, to another (SQLite to PostgreSQL and back).

    A target that holds rows is refused unless --replace or --resume says what to do with them.
    A SQLite target ends checkpointed: its .db file alone is the copy.
    """
    from broadsheet.db.copy import CountMismatch, TargetNotEmpty, copy_store

    if replace and resume:
        console.print("[red]error[/red] --replace and --resume exclude each other")
        raise typer.Exit(2)

    progress = Progress(
        TextColumn("[bold]{task.description:<20}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,} of {task.total:,} rows"),
        TimeRemainingColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def show(table: str, done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=total)
        progress.update(tasks[table], completed=done)

    try:
        with progress:
            summary = copy_store(
                source,
                target,
                batch_rows=batch_rows,
                progress=show,
                existing="replace" if replace else "resume" if resume else "refuse",
            )
    except TargetNotEmpty as exc:
        console.print(
            f"[red]error[/red] {escape(_shown_url(target))} is not empty: it holds rows in "
            f"{', '.join(exc.tables)}. Nothing was copied. --replace empties it and copies "
            "anew; --resume keeps its rows and copies those after them (to finish a stopped "
            "copy)."
        )
        raise typer.Exit(1) from exc
    except CountMismatch as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table("table", "source rows", "copied now", "target rows")
    for entry in summary.tables:
        table.add_row(
            entry.name, f"{entry.source_rows:,}", f"{entry.copied:,}", f"{entry.target_rows:,}"
        )
    console.print(table)
    if summary.held and summary.existing == "replace":
        done = f"emptied the target first (removed {summary.held:,} rows), then copied"
    elif summary.held:
        done = f"resumed: kept the target's {summary.held:,} rows (not refreshed) and copied"
    else:
        done = "the target was empty: copied"
    console.print(
        f"{done} {summary.copied:,} rows from one snapshot of {escape(_shown_url(source))} "
        f"into {escape(_shown_url(target))}; every table's count matches",
        highlight=False,
    )


def _backup_progress():
    """A rich progress display and the ``(step, done, total)`` callback that drives it."""
    progress = Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def show(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = progress.add_task(step, total=total or None)
        progress.update(tasks[step], completed=done, total=total or None)

    return progress, show


def _report_verified(verified, archive: Path) -> None:
    if verified.skipped:
        console.print(f"[yellow]{verified.skipped}[/yellow]")
        return
    for table, (expected, found) in sorted(verified.mismatches.items()):
        console.print(f"[red]mismatch[/red] {table}: manifest {expected:,}, found {found}")
    if verified.mismatches:
        raise typer.Exit(1)
    console.print(f"{archive}: {len(verified.counts)} tables, every count matches the manifest")


_BACKUP_DEST = (
    "Archive to write (.tar, .tar.gz, .tar.xz) or a folder for a dated one; with --verify, "
    "the archive to check."
)
_BACKUP_VERIFY = "Check an archive instead: restore a throwaway copy and count its tables."


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help=_BACKUP_DEST)],
    verify: Annotated[bool, typer.Option(help=_BACKUP_VERIFY)] = False,
    database: Annotated[str | None, typer.Option(help="Store URL (default: settings).")] = None,
) -> None:
    """Back up the store, its saved indexes and its signing key into one archive (site may run)."""
    from broadsheet.db.backup import BackupError, backup_store, verify_archive

    url = database or get_settings().database_url
    progress, show = _backup_progress()
    try:
        with progress:
            if verify:
                manifest, verified = verify_archive(dest, url, show)
            else:
                written, manifest = backup_store(url, dest, show)
    except BackupError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if verify:
        _report_verified(verified, dest)
        return
    rows = sum(manifest.tables.values())
    console.print(
        f"wrote {written} ({manifest.engine}, revision {manifest.revision}, {rows:,} rows)"
    )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `broadsheet backup`.")],
    database: Annotated[str | None, typer.Option(help="Store URL (default: settings).")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a store that holds data.")] = False,
) -> None:
    """Restore a backup (stop the site first); checks the archive before, the counts after."""
    from broadsheet.db.backup import BackupError, restore_store

    progress, show = _backup_progress()
    try:
        with progress:
            manifest, verified = restore_store(
                archive, database or get_settings().database_url, replace, show
            )
    except BackupError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"restored {archive} (made {manifest.created_at}, revision {manifest.revision})")
    _report_verified(verified, archive)


@digest_app.command("send")
def digest_send(
    period: Annotated[str, typer.Option(help="daily or weekly.")] = "daily",
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="A day in the period (default today)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compose and show, send and record nothing.")
    ] = False,
) -> None:
    """Send this period's digest to every confirmed subscriber, each exactly once."""
    from broadsheet.digest.compose import digest_message
    from broadsheet.digest.outbox import preview_digests, send_digests
    from broadsheet.digest.subscriptions import Frequency
    from broadsheet.secret_key import secret_key

    try:
        frequency = Frequency(period)
    except ValueError:
        console.print(f"[red]--period must be daily or weekly, not {period!r}[/red]")
        raise typer.Exit(2) from None
    settings, engine = get_settings(), _store()
    when = (day or datetime.now()).date()
    if dry_run:
        digests = preview_digests(engine, frequency, when)
        with_papers = [d for d in digests if d.paper_ids]
        console.print(
            f"{len(digests)} confirmed {frequency} subscribers; {len(with_papers)} digests "
            f"with papers ({sum(len(d.paper_ids) for d in with_papers)} papers in all)"
        )
        if with_papers:
            message = digest_message(with_papers[0], settings, secret_key(settings))
            plain = message.get_payload(0).get_payload(decode=True).decode()
            typer.echo(f"The first, to {message['To']}:\n\n{plain}")
        return
    with Progress(
        TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("digests", total=None)
        summary = send_digests(
            engine, settings, secret_key(settings), frequency, when,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(
        _summary_table(
            f"{frequency} digest {summary.period_key}",
            [
                ("queued now", summary.queued),
                ("sent", summary.sent),
                ("nothing new", summary.empty),
                ("retried", summary.retried),
                ("failed", summary.failed),
                ("skipped (unsubscribed)", summary.skipped),
            ],
        )
    )
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run the scheduler: harvest the configured categories, embed and index new papers, send
    digests at the set hour; each run recorded, late jobs mailed to admins."""
    import logging

    from broadsheet.digest.worker import Worker
    from broadsheet.logs import log_handler, say
    from broadsheet.secret_key import secret_key

    handler = log_handler(get_settings().log_format, console)  # LOG_FORMAT: text or json
    logging.basicConfig(level=logging.INFO, handlers=[handler], format="%(message)s")
    settings = get_settings()
    every = settings.index_every_minutes
    say(
        settings.log_format,
        f"worker: harvesting {', '.join(settings.harvest_categories) or 'nothing'} every "
        f"{settings.harvest_every_hours:g} h; indexing after each harvest"
        f"{f' and every {every:g} min' if every else ''}; digests from "
        f"{settings.digest_hour:02d}:00 UTC "
        f"(weekly on day {settings.digest_weekday}); Ctrl-C stops",
        console,
    )
    with contextlib.suppress(KeyboardInterrupt):
        Worker(_store(), settings, secret_key(settings)).run()


# a password typed twice without echo, or read from the environment (scripts)
NEW_PASSWORD = {
    "hide_input": True,
    "confirmation_prompt": True,
    "envvar": "BROADSHEET_NEW_PASSWORD",
    "help": "Asked for when not given.",
}


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="The new member's username.")],
    admin: Annotated[bool, typer.Option(help="Give the member admin rights.")] = False,
    password: Annotated[str, typer.Option(prompt=True, **NEW_PASSWORD)] = "",
) -> None:
    """Create a member account (e.g. the first admin)."""
    from broadsheet.community.accounts import AccountError, create_member

    try:
        member = create_member(_store(), username, password, is_admin=admin)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if member.is_admin:
        _audit("member.make_admin", member)
    console.print(f"created {member.username}" + (" (admin)" if member.is_admin else ""))


def _audit(action: str, member) -> None:
    """Record in the admins' audit log what a ``users`` command did to ``member``."""
    from broadsheet.community.admin_members import record_command_line_action

    record_command_line_action(_store(), action, member)


@users_app.command("admin")
def users_admin(
    username: Annotated[str, typer.Argument(help="An existing member.")],
    revoke: Annotated[bool, typer.Option(help="Take admin rights away instead.")] = False,
) -> None:
    """Grant (or revoke) admin rights: admins can hide papers and comments."""
    from broadsheet.community.accounts import AccountError, set_admin

    try:
        member = set_admin(_store(), username, not revoke)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    action = "member.make_admin" if member.is_admin else "member.unmake_admin"
    _audit(action, member)
    console.print(f"{member.username} is {'now' if member.is_admin else 'no longer'} an admin")


@users_app.command("sign-out")
def users_sign_out(username: Annotated[str, typer.Argument(help="An existing member.")]) -> None:
    """End every session of a member, on every device, and revoke their API tokens (e.g.
    after a stolen cookie or token)."""
    from broadsheet.community.accounts import AccountError, end_sessions

    try:
        member = end_sessions(_store(), username)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _audit("member.sign_out", member)
    console.print(f"signed {member.username} out everywhere; their API tokens are revoked")


@users_app.command("password")
def users_password(
    username: Annotated[str, typer.Argument(help="An existing member.")],
    password: Annotated[str, typer.Option(prompt="New password", **NEW_PASSWORD)] = "",
) -> None:
    """Set a member's password; their sessions end everywhere and their API tokens are
    revoked."""
    from broadsheet.community.accounts import AccountError, change_password

    try:
        member = change_password(_store(), username, password)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _audit("member.password", member)
    console.print(
        f"new password set for {member.username}; their sessions have ended and their API "
        "tokens are revoked"
    )


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="An existing member.")],
    enable: Annotated[bool, typer.Option(help="Let the member sign in again instead.")] = False,
) -> None:
    """Disable an account: it cannot sign in, and every session and API token ends (the
    admin pages do the same, for any account but the admin's own)."""
    from broadsheet.community.admin_members import MemberNotFound, set_disabled_by_name

    try:
        member = set_disabled_by_name(_store(), username, not enable)
    except MemberNotFound as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if enable:
        console.print(f"{member.username} can sign in again")
    else:
        console.print(f"{member.username} is disabled; their sessions and API tokens have ended")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on. Default: the host setting.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65_535, help="Port to listen on. Default: the port setting (8000)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    warm_up: Annotated[
        bool, typer.Option(help="Load the search model at start, not on the first search.")
    ] = True,
    keep_alive: Annotated[
        int,
        typer.Option(
            min=1,
            help="Seconds an idle connection stays open; keep it above a reverse proxy's idle "
            "timeout for upstream connections (nginx: 60 s), or the proxy may send a request "
            "on a connection the server is closing.",
        ),
    ] = 75,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies whose X-Forwarded-For is believed: addresses or networks, "
            'comma-separated ("*": any). Default: the forwarded_allow_ips setting, else none.',
        ),
    ] = None,
) -> None:
    """Start the web service."""
    import uvicorn
    from pydantic import ValidationError
    from threadpoolctl import threadpool_limits

    from broadsheet.logs import say, server_log_config

    given = {"FORWARDED_ALLOW_IPS": forwarded_allow_ips, "HOST": host, "PORT": port}
    for name, value in given.items():  # through the environment, so every worker sees them
        if value is not None:  # (BASE_URL, when unset, follows the host and port)
            os.environ[f"BROADSHEET_{name}"] = str(value)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        trusted = settings.forwarded_allow_ips
    except ValidationError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    say(settings.log_format, f"believing X-Forwarded-For from: {trusted or 'no one'}", console)
    say(settings.log_format, f"links in mails go to: {settings.base_url} (BASE_URL)", console)
    _store()  # migrate once before workers start
    # Each worker serves one request per core at a time: math libraries get one thread each
    # instead of spinning up one per core in every worker (measured: 3x more paper pages/s).
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep, not spin
    threadpool_limits(1)  # for libraries this process has loaded already (one worker)
    if warm_up:
        os.environ.setdefault("BROADSHEET_WARM_UP_SEARCH", "1")
        get_settings.cache_clear()
    if settings.metrics_enabled and workers > 1:  # each worker's counts, added up on scrape
        from broadsheet.metrics import share_between_processes

        share_between_processes()
    uvicorn.run(
        "broadsheet.web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        reload=reload,
        access_log=False,  # the app logs each request itself (web/request_id.py)
        log_config=server_log_config(settings.log_format, access_log=access_log),
        timeout_keep_alive=keep_alive,
        # the app itself believes only the proxies in the settings (one place decides); uvicorn
        # would otherwise believe X-Forwarded-For from 127.0.0.1, i.e. from any local client
        proxy_headers=False,
    )


if __name__ == "__main__":
    app()
