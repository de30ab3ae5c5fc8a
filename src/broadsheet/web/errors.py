"""Errors as people read them: who gets JSON, and one plain line per wrong parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import Request

# Where a parameter came from, as FastAPI names it first in an error's location.
SOURCES = {"query", "path", "body", "header", "cookie"}
# Headings for error pages, in plain words where the HTTP phrase is jargon.
HEADINGS = {
    400: "This link or form is not valid",
    403: "Not allowed",
    404: "Page not found",
    405: "Not available this way",
    422: "Some values could not be read",
    429: "Too many requests",
    503: "Busy for a moment",
}


def wants_json(request: Request) -> bool:
    """Programs read the API and its schema; everything else is a page in a browser."""
    path = request.url.path
    return path == "/api" or path.startswith("/api/") or path == request.app.openapi_url


def heading_for(status: int) -> str:
    """A page's heading for an error status."""
    if status in HEADINGS:
        return HEADINGS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Something went wrong"


def parameter_name(location: Sequence[Any]) -> str:
    """The parameter a problem is about: ("query", "date") is "date"."""
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in SOURCES:
        parts = parts[1:]
    return ".".join(parts)


def _bound(value: Any, numbers: str, others: str) -> str:
    return f"{numbers if isinstance(value, int | float) else others} {value}"


def problem_text(error: Mapping[str, Any]) -> str:
    """What is wrong with one value, in a few plain words ("not a valid date (YYYY-MM-DD)")."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind.startswith(("date_", "datetime_")):
        return "not a valid date (YYYY-MM-DD)"
    if kind in ("int_parsing", "int_from_float"):
        return "not a whole number"
    if kind == "missing":
        return "missing"
    if kind == "enum":
        return "should be one of " + str(context["expected"]).replace("'", "")
    if kind == "greater_than_equal":
        return "should be " + _bound(context["ge"], "at least", "on or after")
    if kind == "less_than_equal":
        return "should be " + _bound(context["le"], "at most", "on or before")
    if kind == "string_too_long":
        return f"at most {context['max_length']} characters"
    message = str(error.get("msg", "not valid"))
    return message[:1].lower() + message[1:]


def describe(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per problem, naming the parameter: "date: not a valid date (YYYY-MM-DD)"."""
    return [f"{parameter_name(e['loc'])}: {problem_text(e)}" for e in errors]
