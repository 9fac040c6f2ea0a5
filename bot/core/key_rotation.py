"""`python -m bot keys rotate`: every encrypted value written again with the first key of ENCRYPTION_KEY, and
every pseudonym (the keyed hash a Telegram id is found by) computed again with it.

Put the new key in front (`ENCRYPTION_KEY=new,old`), rotate, then drop the old one. Values stored before
encryption existed are encrypted on the way. Until the rotation has run, rows are still found by their
pseudonym under the old key (`Keyring.pseudonyms`).

Also `check_keys`: at start, the bot refuses a key set that cannot read what is stored, or whose pseudonyms
would not find the people stored.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    Text,
    bindparam,
    literal,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core import updates
from bot.core.config import ConfigError
from bot.core.crypto import Encrypted, EncryptionError, Keyring, keyring_for
from bot.core.models import Base, OutboxMessage, OutboxStatus

BATCH = 500
ROW_ID = "_row_id"
SAMPLE = 3  # values read at start from each end (newest, oldest) of every encrypted column


class KeysCannotRead(ConfigError):
    """ENCRYPTION_KEY cannot decrypt data already stored. A ConfigError, so the CLI prints it as one line;
    it names the table and column, never a key or a value."""


def _same(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _chat_of_update(payload: Any) -> int | None:
    """The chat of a stored update (its JSON text), or None (handled rows keep no payload)."""
    try:
        raw = json.loads(payload) if isinstance(payload, str) else None
    except ValueError:
        return None
    return updates.chat_of(raw) if isinstance(raw, dict) else None


@dataclass(frozen=True)
class Pseudonym:
    """`column` holds the pseudonym of the Telegram id read from `source` (an encrypted column of the row)."""

    column: str
    source: str
    read: Callable[[Any], int | None] = _same


PSEUDONYMS: dict[str, Pseudonym] = {
    "patients": Pseudonym("telegram_ref", "telegram_user_id"),
    "counselors": Pseudonym("telegram_ref", "telegram_user_id"),
    "outbox": Pseudonym("chat_ref", "chat_id"),
    "inbox": Pseudonym("chat_key", "payload", _chat_of_update),
}


def encrypted_columns() -> dict[Table, list[str]]:
    """Each table with encrypted columns, and their names."""
    found: dict[Table, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns if isinstance(c.type, Encrypted)]
        if names:
            found[table] = names
    return found


def _to_read(table: Table) -> list[ColumnElement[bool]]:
    """Which rows to read: all, but the outbox rows already set aside as unreadable (`bot.outbox.store`):
    known, counted, never sent, they must not stop the bot from starting nor a rotation."""
    if table is OutboxMessage.__table__:
        return [table.c.status != OutboxStatus.UNREADABLE]
    return []


def _new_pseudonym(keyring: Keyring, pseudonym: Pseudonym, source: Any, stored: Any) -> Any:
    telegram_id = pseudonym.read(source)
    return stored if telegram_id is None else keyring.pseudonym(telegram_id)


async def rotate(session: AsyncSession) -> dict[str, int]:
    """Rows written again, per table."""
    keyring = keyring_for(session.get_bind().dialect)
    written: dict[str, int] = {}
    for table, names in encrypted_columns().items():
        (key,) = table.primary_key.columns
        columns = [table.c[name] for name in names]
        pseudonym = PSEUDONYMS.get(table.name)
        targets = [*columns, *([table.c[pseudonym.column]] if pseudonym else [])]
        statement = (
            update(table).where(key == bindparam(ROW_ID)).values({c: bindparam(c.name) for c in targets})
        )
        last: Any = None
        count = 0
        while True:
            read = [key, *columns, *([table.c[pseudonym.column]] if pseudonym else [])]
            query = select(*read).where(*_to_read(table)).order_by(key).limit(BATCH)
            if last is not None:
                query = query.where(key > last)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            changed = []
            for row in rows:
                values = dict(zip(names, row[1 : len(names) + 1], strict=True))
                if not any(value is not None for value in values.values()):
                    continue
                if pseudonym is not None:
                    stored = row[len(names) + 1]
                    values[pseudonym.column] = _new_pseudonym(
                        keyring, pseudonym, values[pseudonym.source], stored
                    )
                changed.append({ROW_ID: row[0], **values})
            if changed:
                await session.execute(statement, changed)
                count += len(changed)
            last = rows[-1][0]
        written[table.name] = count
    return written


def _cannot_read(where: str) -> KeysCannotRead:
    return KeysCannotRead(
        f"ENCRYPTION_KEY: cannot decrypt what is stored in {where}; set it to the key that wrote the data "
        "(to change keys, put the new one first, `new,old`, and run `python -m bot keys rotate` before "
        "dropping the old one)"
    )


def _encrypted_places() -> dict[str, Column[object]]:
    """Every encrypted column, by its place (`table.column`), in the models' order."""
    return {
        f"{table.name}.{name}": table.c[name]
        for table, names in encrypted_columns().items()
        for name in names
    }


@functools.cache
def _samples_sql(dialect: Dialect) -> str:
    """One statement reading the newest and the oldest few values of every encrypted column, as stored, each
    with its place. One query per column and end took ~110 round trips and as many statements to build, paid
    by every start (and every test that starts the bot); it is the same every time, so it is made once."""
    samples = []
    for place, column in _encrypted_places().items():
        table = column.table
        assert isinstance(table, Table)
        (key,) = table.primary_key.columns
        for order in (key.desc(), key.asc()):
            sample = (
                select(literal(place, Text).label("place"), type_coerce(column, Text).label("value"))
                .where(column.is_not(None), *_to_read(table))
                .order_by(order)
                .limit(SAMPLE)
                .subquery()
            )
            samples.append(select(sample.c.place, sample.c.value))
    return str(union_all(*samples).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def check_keys(engine: AsyncEngine) -> None:
    """Decrypt the newest and the oldest few values of every encrypted column with the engine's keys, and
    check that the newest and oldest few pseudonyms are those of their Telegram ids under one of the keys;
    raise KeysCannotRead at the first that fails.

    A wrong key (or an old key dropped before `keys rotate` finished) would otherwise be found row by row
    while serving: alert pages set aside, answers that cannot be read, patients taken for strangers.
    Refusing to start says it at once."""
    columns = _encrypted_places()
    unreadable: set[str] = set()
    async with engine.connect() as connection:
        if columns:
            stored = await connection.exec_driver_sql(_samples_sql(engine.dialect))
            for place, value in cast("list[tuple[str, str | None]]", stored.all()):
                try:
                    columns[place].type.process_result_value(value, engine.dialect)  # type: ignore[attr-defined]
                except (EncryptionError, ValueError):
                    unreadable.add(place)
        for place in columns:  # the first in the models' order, as the message names one
            if place in unreadable:
                raise _cannot_read(place)
        for table in encrypted_columns():
            pseudonym = PSEUDONYMS.get(table.name)
            if pseudonym is not None:
                await _check_pseudonyms(connection, engine, table, pseudonym)


async def _check_pseudonyms(connection: Any, engine: AsyncEngine, table: Table, pseudonym: Pseudonym) -> None:
    (key,) = table.primary_key.columns
    keyring = keyring_for(engine.dialect)
    source, column = table.c[pseudonym.source], table.c[pseudonym.column]
    for order in (key.desc(), key.asc()):
        query = (
            select(source, column)
            .where(source.is_not(None), column.is_not(None), *_to_read(table))
            .order_by(order)
            .limit(SAMPLE)
        )
        try:
            rows = (await connection.execute(query)).all()
        except (EncryptionError, ValueError):
            raise _cannot_read(f"{table.name}.{pseudonym.source}") from None
        for value, stored in rows:
            telegram_id = pseudonym.read(value)
            if telegram_id is not None and stored not in keyring.pseudonyms(telegram_id):
                raise _cannot_read(f"{table.name}.{pseudonym.column}")
