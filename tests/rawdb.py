"""The database as a copy of it reads without ENCRYPTION_KEY (issue 20): every table the database itself
lists (not only those the models know), every column, as stored; and, for erasure, every row as the bot
reads it with the key.

A Fernet token is ciphertext: it says nothing in clear, and the letters and digits base64 gives it may
spell anything, so tokens are never searched. An id is looked for as a number, and as a string standing
alone (between characters that are neither letters nor digits: inside JSON, a key such as "flag:…:1001",
a list "3,1001"); a word as a word, and a column named after it (`used`) holding a clear "yes".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.crypto import is_token
from bot.core.models import Base

_YES = {"1", "t", "true", "yes"}
CLINICAL_WORDS = ("used", "imminent", "suicide")  # what no value may say in clear (issue 20)


@dataclass(frozen=True)
class Found:
    table: str
    column: str
    value: str


async def raw_values(engine: AsyncEngine) -> list[tuple[str, str, Any]]:
    """(table, column, value) for every value of every table, exactly as the database returns it."""
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        found: list[tuple[str, str, Any]] = []
        for table in sorted(tables):
            result = await connection.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result.all():
                found += [(table, column, value) for column, value in zip(columns, row, strict=True)]
    return found


async def read_values(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, Any]]:
    """(table, column, value) for every value of every model's table, decrypted as the bot reads it."""
    found: list[tuple[str, str, Any]] = []
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                found += [(table.name, column, value) for column, value in row._mapping.items()]
    return found


def _as_text(value: Any) -> str | None:
    """A value to search as text (JSON documents as their JSON), or None for a token or a non-text value."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if not isinstance(value, str) or is_token(value.strip()):
        return None
    return value


def _alone(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(term)}(?![0-9A-Za-z])", re.IGNORECASE)


def mentions(value: Any, number: int) -> bool:
    """Whether a stored value is the number, or text with it standing alone."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value == number
    found = _as_text(value)
    return found is not None and bool(_alone(str(number)).search(found))


def says(column: str, value: Any, word: str) -> bool:
    """Whether a stored value says the word in clear: as a word in text, or as a clear yes in a column
    named after it (`checkins.used = true`)."""
    if column.lower() == word.lower() and (
        value is True or (isinstance(value, int) and value == 1) or str(value).strip().lower() in _YES
    ):
        return True
    found = _as_text(value)
    return found is not None and bool(re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", found, re.I))


def search(
    values: Iterable[tuple[str, str, Any]], *, numbers: Sequence[int] = (), words: Sequence[str] = ()
) -> list[Found]:
    """Every value that holds one of the numbers or says one of the words."""
    return [
        Found(table, column, repr(value)[:200])
        for table, column, value in values
        if any(mentions(value, n) for n in numbers) or any(says(column, value, w) for w in words)
    ]
