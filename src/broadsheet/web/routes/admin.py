"""The admin dashboard: the worker's jobs and late ones, index coverage, failed mails (with a
retry), members, reports and what is hidden, and the audit log of what admins did. Only
admins see these pages; to anyone else they do not exist (404)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from broadsheet.community import admin_members, reports, site_settings
from broadsheet.community.accounts import Member
from broadsheet.community.audit import admin_actions, record_admin_action
from broadsheet.community.mail_queue import send_later
from broadsheet.community.moderation import hidden_comments, hidden_papers
from broadsheet.db.schema import comment_reports, users
from broadsheet.digest.outbox import (
    delivery_failures,
    failed_periods,
    period_of,
    retry_failed,
    send_digests,
)
from broadsheet.ops.jobs import grace, job_schedules, last_runs, late_jobs, utc_now
from broadsheet.search.vectors import coverage
from broadsheet.web.auth import current_member
from broadsheet.web.paging import paging
from broadsheet.web.refusals import refusals
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)
PAGE = 50
MemberId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CommentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def _admin(request: Request) -> Member:
    """The signed-in admin; for anyone else, signed in or not, these pages do not exist."""
    member = current_member(request)
    if member is None or not member.is_admin:
        raise HTTPException(404)
    return member


AdminDep = Annotated[Member, Depends(_admin)]
# the admin check first: to anyone else a POST here is not found, whatever it sends
actions = APIRouter(include_in_schema=False, dependencies=[Depends(_admin), Depends(require_csrf)])


@router.get("/admin", response_class=HTMLResponse)
def dashboard(request: Request, admin: AdminDep) -> HTMLResponse:
    app = request.app
    engine, settings = app.state.engine, app.state.settings
    now = utc_now()
    schedules = job_schedules(settings)
    with engine.connect() as connection:
        with_vectors, papers_total = coverage(connection, settings.embedding_model)
        members_total = connection.execute(select(func.count()).select_from(users)).scalar_one()
        open_reports = connection.execute(
            select(func.count(func.distinct(comment_reports.c.comment_id))).where(
                comment_reports.c.resolved_at.is_(None)
            )
        ).scalar_one()
        hidden = (
            hidden_papers(connection, admin, 1)[1],
            hidden_comments(connection, admin, 1)[1],
        )
        audit, _ = admin_actions(connection, 10)
    return render(
        request, "admin.html", jobs=last_runs(engine), schedules=schedules,
        late=late_jobs(engine, schedules, now, grace(settings)), now=now,
        with_vectors=with_vectors, papers_total=papers_total, members_total=members_total,
        open_reports=open_reports, hidden=hidden, audit=audit,
        failures=delivery_failures(engine, limit=20), failed_periods=failed_periods(engine),
        retried=request.query_params.get("retried", ""),
    )  # fmt: skip


@actions.post("/admin/outbox/retry")
def retry_deliveries(
    request: Request, admin: AdminDep, period: Annotated[str, Form(max_length=16)]
) -> Response:
    """Make a period's failed digests due again and send them, after the answer."""
    try:
        frequency, day = period_of(period)
    except ValueError:
        raise HTTPException(422, f"No period {period!r}: use 2026-11-24 or 2026-W48.") from None
    app = request.app
    engine = app.state.engine
    retried = retry_failed(engine, period)
    if retried:
        with engine.begin() as connection:
            record_admin_action(connection, admin.id, "outbox.retry", f"period:{period}",
                                {"deliveries": retried})  # fmt: skip
        job = partial(send_digests, engine, app.state.settings, app.state.secret, frequency, day)
        send_later(f"digest retry of {period}", job)
    return RedirectResponse(f"/admin?retried={retried}#outbox", 303)


@router.get("/admin/members", response_class=HTMLResponse)
def members_page(
    request: Request,
    admin: AdminDep,
    q: Annotated[str, Query(max_length=100)] = "",
    page: PageNumber = 1,
    done: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    with request.app.state.engine.connect() as connection:
        rows, total = admin_members.find_members(connection, admin, q, PAGE, (page - 1) * PAGE)
    params = [("q", q)] if q else []
    return render(
        request, "admin_members.html", members=rows, q=q, done=done,
        pages=paging("/admin/members", params, page, total, PAGE),
    )  # fmt: skip


MemberAction = Literal["disable", "enable", "sign-out", "make-admin", "unmake-admin", "delete"]
_DONE = {
    "disable": "{} is disabled: every session and token ended.",
    "enable": "{} can sign in again.",
    "sign-out": "{} is signed out everywhere: every session and token ended.",
    "make-admin": "{} is an admin.",
    "unmake-admin": "{} is no longer an admin.",
    "delete": "{}'s account is deleted.",
}


@actions.post("/admin/members/{member_id}/{action}")
def member_action(
    request: Request, admin: AdminDep, member_id: MemberId, action: MemberAction
) -> Response:
    engine = request.app.state.engine
    with refusals():
        match action:
            case "disable" | "enable":
                name = admin_members.set_disabled(engine, admin, member_id, action == "disable")
            case "sign-out":
                name = admin_members.sign_out_everywhere(engine, admin, member_id)
            case "make-admin" | "unmake-admin":
                name = admin_members.set_member_admin(
                    engine, admin, member_id, action == "make-admin"
                )
            case "delete":
                name = admin_members.delete_as_admin(engine, admin, member_id)
    return RedirectResponse(
        f"/admin/members?{urlencode({'done': _DONE[action].format(name)})}", 303
    )


@router.get("/admin/reports", response_class=HTMLResponse)
def reports_page(request: Request, admin: AdminDep, page: PageNumber = 1) -> HTMLResponse:
    with request.app.state.engine.connect() as connection:
        found, total = reports.open_reports(connection, admin, PAGE, (page - 1) * PAGE)
    return render(
        request, "admin_reports.html", reports=found,
        pages=paging("/admin/reports", [], page, total, PAGE),
    )  # fmt: skip


@actions.post("/admin/reports/{comment_id}")
def resolve_report(
    request: Request,
    admin: AdminDep,
    comment_id: CommentId,
    outcome: Annotated[Literal["hidden", "dismissed"], Form()],
) -> Response:
    with refusals():
        reports.resolve_reports(request.app.state.engine, admin, comment_id, outcome)
    return RedirectResponse("/admin/reports", 303)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, admin: AdminDep, page: PageNumber = 1) -> HTMLResponse:
    with request.app.state.engine.connect() as connection:
        entries, total = admin_actions(connection, PAGE, (page - 1) * PAGE)
    return render(
        request, "admin_audit.html", entries=entries,
        pages=paging("/admin/audit", [], page, total, PAGE),
    )  # fmt: skip


@router.get("/admin/settings", response_class=HTMLResponse)
def site_settings_page(request: Request, admin: AdminDep) -> HTMLResponse:
    with request.app.state.engine.connect() as connection:
        current = site_settings.read_site_settings(connection)
    changed = request.query_params.get("changed")  # None: not just saved
    return render(request, "admin_settings.html", current=current, changed=changed)


@actions.post("/admin/settings", response_class=HTMLResponse)
def change_site_settings(
    request: Request,
    admin: AdminDep,
    notice: Annotated[str, Form(max_length=5000)] = "",
    signups_open: Annotated[bool, Form()] = False,
) -> Response:
    """Save the settings that are safe to change while the site runs (an unticked box is
    not sent: sign-ups close)."""
    state = request.app.state
    try:
        wanted = site_settings.checked(signups_open, notice)
    except site_settings.SiteSettingError as exc:
        given = site_settings.SiteSettings(signups_open, notice)
        return render(request, "admin_settings.html", status_code=422, current=given,
                      error=str(exc), field=exc.field)  # fmt: skip
    changed = site_settings.change_site_settings(state.engine, admin, wanted)
    state.site_settings.forget()
    return RedirectResponse(f"/admin/settings?{urlencode({'changed': ', '.join(changed)})}", 303)
