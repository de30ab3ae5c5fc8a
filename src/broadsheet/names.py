"""One rule for names that are unique "in any letter case": usernames, addresses, collections.

``fold`` is Unicode's compatibility case folding (NFKC, case-fold, NFKC again): "Über" and
"über", "Статьи" and "статьи", the Roman numeral "Ⅽ" and "c" are one name. Usernames and mail
addresses are ASCII by validation, so SQL's ``lower()`` gives the same key for them on every
engine; collection names may be in any script and keep their folded form in a column
(``collections.name_key``), since SQLite's ``lower()`` folds ASCII letters only.
"""

from __future__ import annotations

import unicodedata


def fold(name: str) -> str:
    """The key under which ``name`` is unique, whatever its letter case or spelling form."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
