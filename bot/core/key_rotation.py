"""`python -m bot keys rotate`: every encrypted value written again with the first key of ENCRYPTION_KEY.

Put the new key in front (`ENCRYPTION_KEY=new,old`), rotate, then drop the old one. Values stored before
encryption existed are encrypted on the way.

Also `check_keys`: at start, the bot refuses a key set that cannot read what is stored.
"""

from __future__ import annotations

from sqlalchemy import Column, ColumnElement, Table, Text, bindparam, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core.config import ConfigError
from bot.core.crypto import EncryptedJSON, EncryptedText, EncryptionError
from bot.core.models import Base, OutboxMessage, OutboxStatus

BATCH = 500
ROW_ID = "_row_id"
SAMPLE = 3  # values read at start from each end (newest, oldest) of every encrypted column


class KeysCannotRead(ConfigError):
    """ENCRYPTION_KEY cannot decrypt data already stored. A ConfigError, so the CLI prints it as one line;
    it names the table and column, never a key or a value."""


def encrypted_columns() -> dict[Table, list[str]]:
    """Each table with encrypted columns, and their names."""
    found: dict[Table, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns if isinstance(c.type, EncryptedText | EncryptedJSON)]
        if names:
            found[table] = names
    return found


def _to_read(table: Table) -> list[ColumnElement[bool]]:
    """Which rows to read: all, but the outbox rows already set aside as unreadable (`bot.outbox.store`):
    known, counted, never sent, they must not stop the bot from starting nor a rotation."""
    if table is OutboxMessage.__table__:
        return [table.c.status != OutboxStatus.UNREADABLE]
    return []


async def rotate(session: AsyncSession) -> dict[str, int]:
    """Rows written again, per table."""
    written: dict[str, int] = {}
    for table, names in encrypted_columns().items():
        (key,) = table.primary_key.columns
        columns = [table.c[name] for name in names]
        statement = (
            update(table).where(key == bindparam(ROW_ID)).values({c: bindparam(c.name) for c in columns})
        )
        last: int | None = None
        count = 0
        while True:
            query = select(key, *columns).where(*_to_read(table)).order_by(key).limit(BATCH)
            if last is not None:
                query = query.where(key > last)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            changed = [
                {ROW_ID: row[0], **{name: row[i + 1] for i, name in enumerate(names)}}
                for row in rows
                if any(value is not None for value in row[1:])
            ]
            if changed:
                await session.execute(statement, changed)
                count += len(changed)
            last = rows[-1][0]
        written[table.name] = count
    return written


async def check_keys(engine: AsyncEngine) -> None:
    """Decrypt the newest and the oldest few values of every encrypted column with the engine's keys;
    raise KeysCannotRead at the first that cannot be read.

    A wrong key (or an old key dropped before `keys rotate` finished) would otherwise be found row by row
    while serving: alert pages set aside, answers that cannot be read. Refusing to start says it at once."""
    async with engine.connect() as connection:
        for table, names in encrypted_columns().items():
            (key,) = table.primary_key.columns
            for name in names:
                column: Column[object] = table.c[name]
                stored = type_coerce(column, Text)  # as stored: each value is decrypted here, one by one
                for order in (key.desc(), key.asc()):
                    query = (
                        select(stored)
                        .where(column.is_not(None), *_to_read(table))
                        .order_by(order)
                        .limit(SAMPLE)
                    )
                    for (value,) in await connection.execute(query):
                        try:
                            column.type.process_result_value(value, engine.dialect)  # type: ignore[attr-defined]
                        except (EncryptionError, ValueError):
                            raise KeysCannotRead(
                                f"ENCRYPTION_KEY: cannot decrypt what is stored in {table.name}.{name}; "
                                "set it to the key that wrote the data (to change keys, put the new one "
                                "first, `new,old`, and run `python -m bot keys rotate` before dropping the "
                                "old one)"
                            ) from None
