"""Logging set-up. Log lines carry event names and ids only; the bot token is scrubbed as a last guard."""

from __future__ import annotations

import logging
import re
from pathlib import Path

_TOKEN_IN_URL = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN_IN_URL.search(message):
            record.msg = _TOKEN_IN_URL.sub("<token>", message)
            record.args = None
        return True


def configure(level: str = "INFO", *, file: Path | None = None) -> None:
    """Log to standard error, or with `file` to that file (the demo: its terminal is the chat)."""
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries at DEBUG print whole updates (message text) and request bodies: DEBUG is for our own modules.
    for library in ("telegram", "aiosqlite", "asyncpg", "uvicorn", "starlette"):
        logging.getLogger(library).setLevel(max(logging.getLevelName(level), logging.INFO))
    # SQLAlchemy's INFO is every SQL statement with its parameters: health data. Never below WARNING.
    logging.getLogger("sqlalchemy").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # Alembic's INFO is "Context impl SQLiteImpl." on every command that checks the schema; `db upgrade` says
    # itself which migrations it ran.
    logging.getLogger("alembic").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # httpx logs every request URL, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
