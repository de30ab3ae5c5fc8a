"""The application factory: one FastAPI app over the store named in the settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from broadsheet import __version__
from broadsheet.config import Settings, get_settings
from broadsheet.db.engine import open_store
from broadsheet.papers.repository import list_recent_papers

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = open_store(settings.database_url)
    app = FastAPI(title=settings.site_name, version=__version__)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        with engine.connect() as connection:
            papers = list_recent_papers(connection, limit=100)
        return TEMPLATES.TemplateResponse(
            request, "index.html", {"site_name": settings.site_name, "papers": papers}
        )

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
