"""structlog set-up. Log events are fixed message keys; numbers, objectives and
transcripts never go into them (call ids and statuses are fine).

Exceptions are rendered here, for structlog and for the standard library
(uvicorn, SQLAlchemy, alembic) alike: type, message and frames (file, line,
function, source line), never the frames' local variables, which hold request
headers, keys, webhook secrets, numbers and transcripts. Exception messages and
string values are scrubbed of what drivers put into them: bound SQL parameters,
PostgreSQL ``DETAIL`` lines, pydantic input values, API keys, webhook secrets
and phone numbers.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, WrappedLogger

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # SQLAlchemy appends the bound parameters of the failed statement (hide_parameters covers the
    # engine; this covers any other path, e.g. Alembic's connection).
    (re.compile(r"\[parameters: .*"), "[parameters hidden]"),
    # asyncpg: "invalid input for query argument $3: '<value>' (...)".
    (re.compile(r"(invalid input for query argument \$\d+): .*"), r"\1: [value hidden]"),
    # PostgreSQL's DETAIL line names the offending values ("Key (x)=(value) already exists.").
    (re.compile(r"^([ \t]*)DETAIL:.*$", re.MULTILINE), r"\1DETAIL: [hidden]"),
    (re.compile(r"Key \(.*?\)=\(.*?\)"), "Key [hidden]"),
    # pydantic ValidationError text repeats the input.
    (re.compile(r"input_value=.*?(?=, input_type=|$)", re.MULTILINE), "input_value=[hidden]"),
    (re.compile(r"bys_ak_[A-Za-z0-9_\-]+"), "bys_ak_[hidden]"),
    (re.compile(r"whsec_[A-Za-z0-9_\-]+"), "whsec_[hidden]"),
    # Stored numbers are E.164.
    (re.compile(r"(?<![\w+])\+\d{7,15}(?!\d)"), "+[number hidden]"),
)


def scrub(text: str) -> str:
    """``text`` without bound parameters, keys, secrets or phone numbers."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _exc_info_tuple(exc_info: Any) -> tuple[Any, Any, Any] | None:
    if isinstance(exc_info, BaseException):
        return (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return exc_info
    if exc_info:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


def plain_traceback_text(exc_info: tuple[Any, Any, Any]) -> str:
    """The standard library's traceback (chained causes included, no locals), scrubbed."""
    _, value, tb = exc_info
    lines = traceback.TracebackException(type(value), value, tb, capture_locals=False).format()
    return scrub("".join(lines)).rstrip("\n")


def plain_exception_formatter(sio: TextIO, exc_info: Any) -> None:
    """ConsoleRenderer's exception formatter: plain text, no locals, scrubbed (never rich's)."""
    sio.write("\n" + plain_traceback_text(exc_info))


_dict_tracebacks = ExceptionDictTransformer(show_locals=False)


def _structured_traceback(exc_info: tuple[Any, Any, Any]) -> list[dict[str, Any]]:
    """JSON-ready traceback: one entry per chained exception with type, scrubbed message and frames."""
    stacks = _dict_tracebacks(exc_info)
    for stack in stacks:
        stack["exc_value"] = scrub(str(stack.get("exc_value", "")))
        for frame in stack.get("frames", ()):
            frame.pop("locals", None)
    return stacks


class _RenderException:
    """Turns ``exc_info`` into ``exception``: plain text for the console, a structure for JSON."""

    def __init__(self, json: bool) -> None:
        self.json = json

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        info = _exc_info_tuple(event_dict.pop("exc_info", None))
        if info is None:
            return event_dict
        if self.json:
            event_dict["error"] = info[0].__name__
            event_dict["exception"] = _structured_traceback(info)
        else:
            event_dict["exception"] = plain_traceback_text(info)
        return event_dict


def _scrub_values(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str) and key != "exception":
            event_dict[key] = scrub(value)
    return event_dict


def _add_logger_name(logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    if isinstance(event_dict.get("event"), str):
        event_dict["event"] = event_dict["event"].strip()
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not the one seen at
    configuration: a command run in-process (a test runner's capture, an embedding program) may
    replace and close the stream it was configured with, and a log line must not fail on that."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", json: bool = False, stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging to ``stream`` (default: stderr) in one format."""
    stream = stream or _CurrentStderr()  # type: ignore[assignment]
    threshold = logging.getLevelName(level.upper())
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_exception_formatter)
    )
    shared = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _RenderException(json),
        _scrub_values,
    ]

    # Standard-library loggers (uvicorn's "Exception in ASGI application", SQLAlchemy, alembic)
    # go through the same processors, so they get the same rendering and scrubbing.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(threshold)
    # Migrations narrate every step at INFO; only their problems are worth a line.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, threshold))
    # httpx logs every request URL at INFO; webhook URLs may carry receivers' tokens.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, threshold))

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def _safe_defaults() -> None:
    """Until ``configure_logging`` runs, structlog's own default renders exceptions with rich,
    frame locals included (numbers, transcripts). Replace it with the same scrubbed plain form."""
    if not structlog.is_configured():
        structlog.configure(processors=[
            structlog.processors.add_log_level,
            _RenderException(False),
            _scrub_values,
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_exception_formatter),
        ])


_safe_defaults()
