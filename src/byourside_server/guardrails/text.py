"""The one rule for text that enters the store, and parsers for raw strings from outside.

Text is accepted only as well-formed Unicode without NUL characters:

- JSON's ``\\ud800`` escapes can smuggle lone UTF-16 surrogates into a Python
  string; no UTF-8 encoder accepts them, so such text fails wherever it is
  written, hashed or sent (the database, the idempotency hash, a webhook body).
- PostgreSQL text cannot hold NUL (``\\x00``), in a column or a query parameter.

``check_json_text`` applies the rule, and a nesting bound, to every string (keys
included) of a decoded JSON value at the trust boundary, before anything is
validated further, stored or hashed. ``scrub`` is the defence in depth for text
that was produced rather than received (transcripts, model output) and for data
already stored: it replaces what the rule forbids instead of refusing it.

The parsers take the raw strings of paths, query strings and headers: ids that
can never exist, integers in ASCII digits only with a length bound (``"²".isdigit()``
is true, ``int("²")`` raises), and opaque ASCII tokens.
"""

from __future__ import annotations

import math
import re
from typing import Any

from byourside_server.errors import InvalidRequest

MAX_JSON_DEPTH = 32  # request bodies; ours nest 3 deep (fields[i].name)
MAX_ID_CHARS = 64  # call ids are UUIDs (36); longer ids can never exist
REPLACEMENT = "\ufffd"

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` under the text rule, or None when it is acceptable."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate (not well-formed Unicode)"


def check_json_text(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``InvalidRequest`` when any string or key in ``value`` breaks the text rule,
    or when it nests deeper than ``max_depth``. Iterative: any depth is safe to inspect."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "the body")]
    while stack:
        item, depth, where = stack.pop()
        if depth > max_depth:
            raise InvalidRequest(f"The request body nests deeper than {max_depth} levels.")
        if isinstance(item, str):
            _refuse_bad_text(item, where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    _refuse_bad_text(key, f"a key in {where}")
                stack.append((child, depth + 1, _describe(key) if depth == 0 else where))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, where) for child in item)


def _describe(key: Any) -> str:
    """A top-level key for an error message; only a plain identifier is echoed back."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", key):
        return f"'{key}'"
    return "the body"


def _refuse_bad_text(value: str, where: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidRequest(f"Text in {where} holds {problem}; send well-formed UTF-8 without NUL characters.")


def scrub(value: Any) -> Any:
    """A copy of the JSON-like ``value`` with forbidden characters replaced by U+FFFD (keys
    too) and non-finite numbers made null, so it can always be stored and encoded."""
    if isinstance(value, str):
        return _FORBIDDEN.sub(REPLACEMENT, value) if _FORBIDDEN.search(value) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def possible_id(value: str) -> bool:
    """False for a string that can never be a stored id (too long, or not printable ASCII)."""
    return len(value) <= MAX_ID_CHARS and _ID.fullmatch(value) is not None


def printable_ascii(value: str, max_chars: int) -> bool:
    """1..max_chars characters of printable ASCII (space included): header tokens such as Idempotency-Key."""
    return len(value) <= max_chars and _PRINTABLE_ASCII.fullmatch(value) is not None


def parse_ascii_int(raw: str | None, *, max_digits: int) -> int | None:
    """The integer written in ``raw`` as ASCII digits (optional sign), or None.

    Unlike ``str.isdigit``/``int``, accepts no other digits (``"²"``, ``"١٢"``), no
    spaces or underscores, and nothing longer than ``max_digits`` digits."""
    if raw is None or not re.fullmatch(rf"[+-]?[0-9]{{1,{max_digits}}}", raw, re.ASCII):
        return None
    return int(raw)
