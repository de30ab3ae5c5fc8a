"""Display text from raw source text: whitespace, hard line breaks, LaTeX debris, controls.

The raw text is always kept; this makes the readable one. It handles what arXiv abstracts
actually carry (accents, font commands, inline math with Greek letters and common symbols,
escaped characters, protective braces) and leaves anything else readable rather than exact.
Display text never holds a control character other than tab and newline, a surrogate, or
U+FFFE/U+FFFF: XML (feeds) cannot carry them, terminals act on them, and highlighting uses
some of them as its own markers.
"""

from __future__ import annotations

import re
import unicodedata

_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "c": "\u0327",
    "v": "\u030c",
    "u": "\u0306",
    "H": "\u030b",
    "k": "\u0328",
    "r": "\u030a",
}
# No optional "{" in front: a pattern that starts with a plain backslash is searched for
# quickly, and the braces around ``{\'e}`` go with every other brace at the end.
_ACCENT = re.compile(
    r"""\\(["'`^~=.]|[cvuHkr](?=[\s{]))\s*(?:\{\s*(\\?[A-Za-z])\s*\}|(\\?[A-Za-z]))\}?"""
)
_LETTERS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])\s?\}?")
_SYMBOLS = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "varepsilon": "ε",
    "zeta": "ζ",
    "eta": "η",
    "theta": "θ",
    "vartheta": "ϑ",
    "iota": "ι",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "nu": "ν",
    "xi": "ξ",
    "pi": "π",
    "rho": "ρ",
    "sigma": "σ",
    "tau": "τ",
    "upsilon": "υ",
    "phi": "φ",
    "varphi": "φ",
    "chi": "χ",
    "psi": "ψ",
    "omega": "ω",
    "Gamma": "Γ",
    "Delta": "Δ",
    "Theta": "Θ",
    "Lambda": "Λ",
    "Xi": "Ξ",
    "Pi": "Π",
    "Sigma": "Σ",
    "Phi": "Φ",
    "Psi": "Ψ",
    "Omega": "Ω",
    "times": "×",
    "cdot": "·",
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "sim": "~",
    "simeq": "≃",
    "infty": "∞",
    "pm": "±",
    "mp": "∓",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "Rightarrow": "⇒",
    "ell": "ℓ",
    "in": "∈",
    "notin": "∉",
    "subset": "⊂",
    "subseteq": "⊆",
    "cup": "∪",
    "cap": "∩",
    "sum": "∑",
    "prod": "∏",
    "int": "∫",
    "partial": "∂",
    "nabla": "∇",
    "sqrt": "√",
    "ldots": "…",
    "dots": "…",
    "cdots": "⋯",
    "propto": "∝",
    "forall": "∀",
    "exists": "∃",
    "log": "log",
    "exp": "exp",
    "ln": "ln",
    "min": "min",
    "max": "max",
    "langle": "⟨",
    "rangle": "⟩",
    "star": "⋆",
    "circ": "∘",
    "degree": "°",
    "ll": "≪",
    "gg": "≫",
    "equiv": "≡",
    "emptyset": "∅",
    "hbar": "ħ",
    "LaTeX": "LaTeX",
    "TeX": "TeX",
}
_SYMBOL = re.compile(r"\\(" + "|".join(sorted(_SYMBOLS, key=len, reverse=True)) + r")(?![A-Za-z])")
_WRAPPERS = (
    "textbf|textit|textrm|textsf|texttt|textsc|textup|textnormal|emph|underline|mbox|text|"
    "mathcal|mathbf|mathrm|mathit|mathbb|mathsf|mathtt|mathfrak|mathscr|boldsymbol|bm|"
    "operatorname|url|hat|tilde|bar|vec|widetilde|widehat|overline"
)
_WRAPPER = re.compile(r"\\(?:" + _WRAPPERS + r")\s*\{([^{}]*)\}")
_DROPPED = re.compile(r"\\(?:cite[pt]?|citep|citet|ref|eqref|label|footnote)\s*\{[^{}]*\}\s?")
_EMPTY_BRACKETS = re.compile(r"[ \t]*(?:\(\s*\)|\[\s*\])")
_AFTER_DROPPED = re.compile(r"[ \t]+([,.;:!?)\]])")
_HREF = re.compile(r"\\href\s*\{[^{}]*\}\s*\{([^{}]*)\}")
_ESCAPES = {
    "\\%": "%",
    "\\&": "&",
    "\\_": "_",
    "\\#": "#",
    "\\{": "{",
    "\\}": "}",
    "\\,": " ",
    "\\;": " ",
    "\\!": "",
    "\\ ": " ",
    "\\\\": " ",
}
_ESCAPE = re.compile(r"\\[%&_#{},;! \\]")
_DOLLAR_MARK = "\x00"  # a NUL in the text itself is dropped before the mark is used
_UNKNOWN_COMMAND = re.compile(r"\\([A-Za-z]+)\s*")
_PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t]*\n\s*|(?<=[.!?:]\n)[ \t]+(?=\S))")


# C0 and C1 control characters but tab and newline, surrogates (only a lone one can be in a
# str), and the non-characters U+FFFE and U+FFFF
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def drop_control_characters(text: str) -> str:
    """``text`` without the characters display text never holds (tab and newline stay).

    ``str.isprintable`` (a quick test in C) is true for nearly every title and name, so the
    regular expression runs only on text with a tab, a newline or something to drop.
    """
    return text if text.isprintable() else _CONTROL.sub("", text)


def _accent(match: re.Match[str]) -> str:
    mark = _ACCENTS[match[1]]
    base = match[2] or match[3]
    base = {"\\i": "i", "\\j": "j"}.get(base, base.lstrip("\\"))
    return unicodedata.normalize("NFC", base + mark)


def _repeat(pattern: re.Pattern[str], replacement, text: str) -> str:
    while True:
        new = pattern.sub(replacement, text)
        if new == text:
            return text
        text = new


def _has_markup(text: str) -> bool:
    """Whether ``text`` holds a character LaTeX gives a meaning to (substring searches are
    several times faster than a character-class regex over a whole abstract)."""
    return "\\" in text or "$" in text or "{" in text or "}" in text or "~" in text or "`" in text


def delatex(text: str) -> str:
    """Turn LaTeX markup into plain readable text; text without markup passes unchanged."""
    if not _has_markup(text):
        return text
    if _DOLLAR_MARK in text:
        text = text.replace(_DOLLAR_MARK, "")
    text = text.replace("\\$", _DOLLAR_MARK)
    if "\\" in text:
        text = _ACCENT.sub(_accent, text)
        text = _LETTER.sub(lambda m: _LETTERS[m[1]], text)
        text, dropped = _DROPPED.subn("", text)
        if dropped:  # "like \cite{a}, using (\citep{b})" leaves no " ," nor "()" behind
            text = _AFTER_DROPPED.sub(r"\1", _EMPTY_BRACKETS.sub("", text))
        text = _repeat(_HREF, r"\1", text)
        text = _repeat(_WRAPPER, r"\1", text)
        text = _SYMBOL.sub(lambda m: _SYMBOLS[m[1]], text)
        text = _ESCAPE.sub(lambda m: _ESCAPES[m[0]], text)
    text = text.replace("``", "“").replace("''", "”").replace("~", " ")
    if "\\" in text:
        text = _UNKNOWN_COMMAND.sub(r"\1 ", text)
    text = text.replace("$", "").replace("{", "").replace("}", "")
    return text.replace(_DOLLAR_MARK, "$")


def collapse_whitespace(text: str) -> str:
    """``" ".join(text.split())`` without control characters, quickly for plain ASCII text."""
    flat = text.replace("\n", " ")
    # printable ASCII has no control characters and no whitespace but the space
    if flat.isascii() and flat.isprintable():
        if "  " in flat or flat.startswith(" ") or flat.endswith(" "):
            return " ".join(flat.split())
        return flat  # single spaces between words already
    joined = " ".join(text.split())
    if joined.isprintable():
        return joined
    # a dropped character may have stood between two spaces
    return " ".join(_CONTROL.sub("", joined).split())


def _paragraphs(text: str) -> list[str]:
    if "\n\n" in text or "\n " in text or "\n\t" in text:
        return _PARAGRAPH_BREAK.split(text)
    return [text]


def clean_text(raw: str) -> str:
    """Readable one-line-per-paragraph text from a raw title or abstract."""
    cleaned = (collapse_whitespace(delatex(p)) for p in _paragraphs(raw.strip()))
    return "\n\n".join(p for p in cleaned if p)


def clean_author_name(raw: str) -> str:
    """One author's display name: LaTeX accents resolved, whitespace and stray commas trimmed."""
    return collapse_whitespace(delatex(raw)).strip(" ,;")
