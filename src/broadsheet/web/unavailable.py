"""When the store cannot answer: 503 with Retry-After, and a readiness check that asks it.

A database that is down, frozen past its timeouts (``db/timeouts.py``), out of connections or
locked (``db/outage.py`` says which errors mean that) answers pages with an error page in the
site's layout, the API with its JSON error (``{"detail": …}``) and htmx with a line of text,
all 503 with ``Retry-After``; the log gets one warning per request, naming the route and the
driver's first line, never the URL. Other database errors are bugs and stay 500s.

``/healthz`` is liveness: 200 while the process serves, whatever the store or the search
model do, so it never flaps between workers. ``/readyz`` is readiness: it reads the store's
change counter (what every cached page reads first) on the store and its replica, 200 when
they answer within ``READY_WITHIN_S``, else 503 with ``Retry-After``. Its body also says
whether this worker's search model is loaded (``"search": "warming up"`` or ``"ready"``);
searches answer from keywords until it is, so warming up does not make a worker unready.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import Engine, exc

from broadsheet.db.outage import Outage, outage
from broadsheet.db.version import current_version
from broadsheet.web.errors import heading_for, wants_json
from broadsheet.web.render import is_htmx, render

RETRY_BUSY_S = 5  # out of connections or time, locked: gone as soon as a request ends
RETRY_DOWN_S = 30  # refused or not answering: a server restarting takes some seconds
READY_WITHIN_S = 2.0  # a balancer's check times out after a few seconds (Kubernetes: 1 s)
log = logging.getLogger(__name__)
router = APIRouter()


def install(app: FastAPI) -> None:
    """Answer an unavailable store with 503s, and serve ``/readyz``."""
    app.state.store_probe = StoreProbe()
    app.add_exception_handler(exc.DBAPIError, store_unavailable)
    app.add_exception_handler(exc.TimeoutError, store_unavailable)
    app.include_router(router)


async def store_unavailable(request: Request, error: Exception) -> Response:
    """503 for an outage, in the form the client reads; any other database error is raised."""
    found = outage(error)
    if found is None:
        raise error
    route = getattr(request.scope.get("route"), "path", "?")  # the template: no token in it
    log.warning("database unavailable (%s %s): %s", request.method, route, found.reason)
    retry = RETRY_BUSY_S if found.busy else RETRY_DOWN_S
    headers = {"Retry-After": str(retry)}
    if wants_json(request):
        state = "busy" if found.busy else "unavailable"
        detail = f"The database is {state}; try again in {retry} s."
        return JSONResponse({"detail": detail}, status_code=503, headers=headers)
    message = _message(found)
    if is_htmx(request):
        return PlainTextResponse(message, status_code=503, headers=headers)
    request.state.member = None  # the frame a visitor sees: drawing a member's reads the store
    heading = heading_for(503) if found.busy else "Temporarily unavailable"
    response = render(request, "error.html", status_code=503, heading=heading, message=message)
    response.headers.update(headers)
    return response


def _message(found: Outage) -> str:
    if found.busy:
        return "The site's database is busy. Please try again in a few seconds."
    return "The site cannot reach its database just now. Please try again in a minute."


class StoreProbe:
    """Asks the store whether it answers, one question at a time: a check that comes while
    one is still waiting waits on that one, so a frozen store holds one thread, not many."""

    def __init__(self) -> None:
        self._asking: Future[None] | None = None
        self._lock = threading.Lock()
        self.failing = False  # the last answer: logged when it changes

    async def problem(self, engines: list[Engine]) -> str | None:
        """None when every engine answers in time, else what is wrong, for the public."""
        with self._lock:
            if self._asking is None or self._asking.done():
                self._asking = Future()
                threading.Thread(
                    target=_ask, args=(engines, self._asking), name="readyz", daemon=True
                ).start()
            asking = self._asking
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(asking)), READY_WITHIN_S)
        except TimeoutError:
            return self._changed(f"the database did not answer within {READY_WITHIN_S:g} s")
        except Exception as error:
            found = outage(error)
            reason = found.reason if found else f"{type(error).__name__}: {error}"
            return self._changed("the database is unavailable", reason)
        self._changed(None)
        return None

    def _changed(self, problem: str | None, reason: str = "") -> str | None:
        failing = problem is not None
        if failing and not self.failing:
            log.warning("not ready: %s%s", problem, f" ({reason})" if reason else "")
        elif self.failing and not failing:
            log.warning("ready again: the database answers")
        self.failing = failing
        return problem


def _ask(engines: list[Engine], answer: Future[None]) -> None:
    try:
        for engine in engines:
            with engine.connect() as connection:
                current_version(connection)
    except BaseException as error:  # to the one who asked
        answer.set_exception(error)
    else:
        answer.set_result(None)


@router.get("/readyz", include_in_schema=False)
async def ready(request: Request) -> Response:
    """200 when the store answers in time (see the module's notes), else 503."""
    state = request.app.state
    engines = [state.engine]
    if state.read_engine is not state.engine:
        engines.append(state.read_engine)
    search = "ready" if state.search_ready.is_set() else "warming up"
    problem = await state.store_probe.problem(engines)
    if problem is None:
        return JSONResponse({"status": "ok", "search": search})
    body = {"status": "unavailable", "detail": problem, "search": search}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_DOWN_S)})
