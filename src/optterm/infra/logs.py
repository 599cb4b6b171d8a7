"""Logging: text or JSON lines, to stderr (serve, CLI) or a file (the TUI owns the screen).

Every line passes the redactor (infra/redact.py) twice over: as a filter on the handler, which
cleans the record of any library's logger, and in the formatter, which cleans what it prints
(the finished text line; each field of a JSON line) whatever a record carried.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from optterm.infra.filemode import FileMode, create_file, make_dirs
from optterm.infra.redact import install, redact

__all__ = ["configure_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
        # Each value, not the finished document: a mask must not eat JSON's escapes.
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in doc.items()}
        return json.dumps(clean, default=lambda v: redact(str(v)))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    level: str = "info",
    fmt: str = "text",
    file: Path | None = None,
    file_mode: FileMode = FileMode.PRIVATE,
) -> None:
    if file is not None:
        # Logs name rules, channels and symbols: a new log folder and file are the user's
        # (0700/0600), or shared read-only with a group (infra/filemode.py).
        make_dirs(file.parent, file_mode)
        create_file(file, file_mode)
        handler: logging.Handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    install(handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    install()  # logging's last-resort handler too
    # Python warnings (a library's DeprecationWarning quoting a URL) go through the same handler.
    logging.captureWarnings(True)
    # Third-party chatter (SQL echo, HTTP internals) is not what a trader's log is for.
    for noisy in ("sqlalchemy", "aiosqlite", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
