"""Attachments' file names, safe in any script (RFC 6266).

HTTP header values are Latin-1, so a name such as ``Статьи`` cannot stand in ``filename="…"``:
the full name goes in ``filename*=UTF-8''…`` (percent-encoded), and ``filename`` carries an
ASCII spelling for clients that read only that.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_STEM = 80
FALLBACK_STEM = "download"


def _safe(name: str) -> str:
    """``name`` with anything but letters, digits, ``.`` and ``-`` as ``_`` (no paths, quotes)."""
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)[:MAX_STEM]


def _ascii(stem: str) -> str:
    """An ASCII spelling of ``stem``: accents dropped, compatibility forms (``Ⅽ``) spelled out,
    other scripts left out; ``download`` when nothing of it is left."""
    spelled = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    spelled = _safe(spelled).strip("_")
    return spelled if any(c.isalnum() for c in spelled) else FALLBACK_STEM


def attachment(name: str, extension: str) -> str:
    """The ``Content-Disposition`` value of a download of ``name`` + ``.extension``."""
    stem = _safe(unicodedata.normalize("NFC", name))
    plain = f"{_ascii(stem)}.{extension}"
    full = quote(f"{stem}.{extension}", safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{full}"
