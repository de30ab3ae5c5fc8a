"""arXiv identifiers: parse any common spelling into the bare id and its version.

New style: ``YYMM.NNNN`` (2007-04 to 2014-12) and ``YYMM.NNNNN`` (2015 on).
Old style: ``archive[.SUBJ]/YYMMNNN`` (1991-08 to 2007-03); the subject class is dropped
because arXiv's canonical id omits it (``math.GT/0309136`` is ``math/0309136``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PREFIX = re.compile(
    r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html|format)/|"
    r"(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)",
    re.IGNORECASE,
)
# ASCII digits only (``\d`` alone also takes other scripts' digits)
_NEW = re.compile(r"(?P<yymm>\d{4})\.(?P<number>\d{4,5})(?:v(?P<version>\d+))?", re.ASCII)
_OLD = re.compile(
    r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.[a-z]{2})?/(?P<yymm>\d{4})(?P<number>\d{3})"
    r"(?:v(?P<version>\d+))?",
    re.IGNORECASE | re.ASCII,
)
_VERSION = re.compile(r"v?(\d+)", re.ASCII)
# Papers have a few versions, rarely dozens; a larger number is a mistake, whatever it fits.
MAX_VERSION = 9999


class InvalidArxivId(ValueError):
    """The text is not an arXiv identifier in any spelling we know."""


@dataclass(frozen=True, slots=True)
class ArxivId:
    id: str
    version: int | None = None

    def __str__(self) -> str:
        return self.id if self.version is None else f"{self.id}v{self.version}"


def _strip_decoration(text: str) -> str:
    text = text.strip()
    text = _PREFIX.sub("", text)
    text = text.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if text.lower().endswith(".pdf"):
        text = text[:-4]
    return text


def _check_version(raw: str | None, original: str) -> int | None:
    if raw is None:
        return None
    return parse_version(raw, original)


def parse_version(text: str, original: str | None = None) -> int:
    """A version number from ``"v2"`` or ``"2"``: 1 to ``MAX_VERSION``, else ``InvalidArxivId``."""
    match = _VERSION.fullmatch(text)
    where = repr(original if original is not None else text)
    if match is None:
        raise InvalidArxivId(f"{where} is not a version (expected e.g. v2)")
    digits = match[1].lstrip("0")
    if not digits:
        raise InvalidArxivId(f"{where} has version v0; versions start at v1")
    if len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
        raise InvalidArxivId(f"{where}: a version above v{MAX_VERSION} is not real")
    return int(digits)


def parse_arxiv_id(text: str) -> ArxivId:
    """Parse ``text`` (bare id, ``arXiv:`` prefix, abs/pdf URL, with or without version)."""
    if not isinstance(text, str):
        raise InvalidArxivId(f"{text!r} is not text")
    match = _NEW.fullmatch(text)  # the usual bare id needs no undecorating
    core = text if match else _strip_decoration(text)
    match = match or _NEW.fullmatch(core)
    if match:
        yymm, number = match["yymm"], match["number"]
        year, month = int(yymm[:2]), int(yymm[2:])
        if not 1 <= month <= 12 or (year, month) < (7, 4) or year >= 91:
            raise InvalidArxivId(f"{text!r}: {yymm} is not a month of new-style arXiv ids")
        expected = 4 if (year, month) <= (14, 12) else 5
        if len(number) != expected:
            raise InvalidArxivId(
                f"{text!r}: ids from {yymm} have {expected}-digit numbers, not {len(number)}"
            )
        return ArxivId(f"{yymm}.{number}", _check_version(match["version"], text))
    match = _OLD.fullmatch(core)
    if match:
        yymm = match["yymm"]
        year, month = int(yymm[:2]), int(yymm[2:])
        in_range = (year >= 91 and (year, month) >= (91, 8)) or (
            year <= 7 and (year, month) <= (7, 3)
        )
        if not 1 <= month <= 12 or not in_range:
            raise InvalidArxivId(f"{text!r}: {yymm} is not a month of old-style arXiv ids")
        paper_id = f"{match['archive'].lower()}/{yymm}{match['number']}"
        return ArxivId(paper_id, _check_version(match["version"], text))
    raise InvalidArxivId(
        f"{text!r} is not an arXiv id (expected e.g. 2401.01234 or hep-th/9901001)"
    )


def is_arxiv_id(paper_id: str) -> bool:
    try:
        parse_arxiv_id(paper_id)
    except InvalidArxivId:
        return False
    return True


def abs_url(paper_id: str) -> str:
    return f"https://arxiv.org/abs/{paper_id}"


def pdf_url(paper_id: str) -> str:
    return f"https://arxiv.org/pdf/{paper_id}"


def canonical_id(paper_id: str) -> str:
    """An arXiv id in any spelling as stored (no version); other ids as given."""
    try:
        return parse_arxiv_id(paper_id).id
    except InvalidArxivId:
        return paper_id
