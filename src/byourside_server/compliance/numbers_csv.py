"""Reading a file of phone numbers (the do-not-call import: API and CLI)."""

from __future__ import annotations

import csv
import io
from typing import Any

from byourside_server.errors import InvalidNumber, InvalidRequest
from byourside_server.guardrails.numbers import parse_e164

NUMBER_HEADERS = ("number", "phone", "phone_number", "to", "e164")


def read_numbers_csv(raw: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """(the E.164 numbers, the rejected rows as ``{"row": n, "error": token, "message": ...}``);
    ``row`` counts from 1 at the file's first line. A file that is not UTF-8 CSV is refused whole."""
    try:
        text = raw.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error):
        raise InvalidRequest("The file must be UTF-8 CSV: one E.164 number a row (optionally under a header "
                             "'number').") from None
    if "\x00" in text:
        raise InvalidRequest("The file must be UTF-8 CSV text (it contains NUL bytes).")
    column, first = 0, 0
    if rows and rows[0] and not any(cell.strip().startswith("+") for cell in rows[0]):
        header = [cell.strip().lower() for cell in rows[0]]
        column = next((header.index(h) for h in NUMBER_HEADERS if h in header), 0)
        first = 1
    numbers: list[str] = []
    rejected: list[dict[str, Any]] = []
    for line, row in enumerate(rows[first:], start=first + 1):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not rows
        cell = row[column].strip() if column < len(row) else ""
        try:
            numbers.append(parse_e164(cell))
        except InvalidNumber as exc:
            rejected.append({"row": line, "error": exc.token, "message": exc.message})
    if not numbers and not rejected:
        raise InvalidRequest("The file has no rows: send one E.164 number a row.")
    return numbers, rejected
