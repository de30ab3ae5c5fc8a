"""The search page's filter form: an empty field is no filter, a wrong value is explained.

A browser submits every field of the form, filled in or not (``since=&until=``), so the page
reads the query string itself instead of letting FastAPI refuse it. The values go through
``search_params``, the very function the API validates with, so both keep the same bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import ValidationError, validate_call

from broadsheet.search.filters import SearchFilters
from broadsheet.search.hybrid import Sort
from broadsheet.web.errors import parameter_name, problem_text
from broadsheet.web.links import reads_query
from broadsheet.web.queries import ReversedDateRange, SearchParams, search_params

# The form's fields, by parameter, as the page labels them.
LABELS = {
    "q": "Search",
    "since": "From",
    "until": "To",
    "category": "Category",
    "organisation": "Organisation",
    "min_upvotes": "Min. votes",
    "sort": "Sort",
    "page": "Page",
}
validated_search_params = validate_call(search_params)


@dataclass(frozen=True, slots=True)
class SearchForm:
    values: dict[str, str]  # as typed, to fill the form in again
    params: SearchParams  # what to search for; without filters when a value is wrong
    problems: dict[str, str] = field(default_factory=dict)  # parameter -> what is wrong

    def messages(self) -> list[str]:
        """One line per wrong field, named as the page labels it."""
        return [f"{LABELS[name]}: {text}" for name, text in self.problems.items()]


@reads_query(*LABELS)
def read_search_form(request: Request) -> SearchForm:
    """The form's fields from the query string (a FastAPI dependency)."""
    return parse_search_form(request.query_params)


def parse_search_form(query: Mapping[str, str]) -> SearchForm:
    values = {name: query[name] for name in LABELS if name in query}
    given = {name: value for name, value in values.items() if value.strip()}
    try:
        params = validated_search_params(**given)
    except ValidationError as exc:
        problems = {parameter_name(e["loc"]): problem_text(e) for e in exc.errors()}
        return SearchForm(values, unfiltered(values), problems)
    except ReversedDateRange:
        problems = {"until": f"is before {LABELS['since']}"}
        return SearchForm(values, unfiltered(values), problems)
    return SearchForm(values, params)


def unfiltered(values: Mapping[str, str]) -> SearchParams:
    """The words alone, for the page around a form that could not be read."""
    return SearchParams(values.get("q", ""), SearchFilters(), Sort.relevance, 1)
