"""The server's access log without the tokens that links carry.

A mailed link holds its token in the query (``?token=…``): a reset link, an address's
verification, a digest confirmation. Whoever reads the access log could use a link still
good, so each logged address has its ``token`` values replaced, written plainly or inside
another parameter's encoded value (``next=/password/reset%3Ftoken%3D…``). So are the values of
parameters named like a password, secret or key (``password``, ``new_password``, ``api_key``,
``access_token``), which no form of the site sends in a query but a client might.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
# token=VALUE in a query, or token%3DVALUE inside an encoded value (up to its encoded "&");
# likewise any parameter whose name ends in one of these words
_SECRET_NAME = r"\w*(?:token|password|passwd|pwd|secret|api_?key)"
_TOKEN = re.compile(rf"(?i)((?:[?&]|%3F|%26){_SECRET_NAME}(?:=|%3D))(?:(?!%26)[^&#\s])*")


def redact(path: str) -> str:
    """``path`` with every token (or password, secret, key) value replaced."""
    return _TOKEN.sub(rf"\g<1>{REDACTED}", path)


class RedactTokens(logging.Filter):
    """Rewrites uvicorn's access records, whose third argument is the path and query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def redact_tokens_in_access_log() -> None:
    """Install the filter on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
