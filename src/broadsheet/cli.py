"""The ``broadsheet`` command: one entry point for serving, importing, harvesting and more."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from broadsheet.config import get_settings
from broadsheet.db.engine import open_store
from broadsheet.ingest.runner import ImportAborted, ImportSummary, OnError, import_file
from broadsheet.sources.detect import FORMATS, UnknownFormat

app = typer.Typer(
    help="Broadsheet: a self-hosted daily research-papers service.", no_args_is_help=True
)
harvest_app = typer.Typer(help="Harvest new papers from live sources.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
app.add_typer(harvest_app, name="harvest")
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def _store():
    return open_store(get_settings().database_url)


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
            except UnknownFormat as exc:
                progress.stop()
                console.print(f"[red]error[/red] {exc}")
                failed = True
                continue
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
        ("database", get_settings().database_url),
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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (also done automatically on every command)."""
    _store()
    console.print("schema is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
) -> None:
    """Start the web service."""
    import uvicorn

    _store()  # migrate once before workers start
    uvicorn.run(
        "broadsheet.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
    )


if __name__ == "__main__":
    app()
