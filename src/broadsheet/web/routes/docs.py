"""The API docs: Swagger UI from the vendored build (vendor/swagger-ui), on this site's OpenAPI.

The page runs under the site's Content-Security-Policy like every other: the vendored bundle
and its start-up file are this origin's scripts, and Swagger UI sets its styles through the
DOM, which the policy allows, so nothing inline and nothing from another host is needed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from broadsheet.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    return render(request, "docs.html", openapi_url=request.app.openapi_url)
