"""`python -m bot keys rotate`: every encrypted value written again with the first key of ENCRYPTION_KEY.

Put the new key in front (`ENCRYPTION_KEY=new,old`), rotate, then drop the old one. Values stored before
encryption existed are encrypted on the way.
"""

from __future__ import annotations

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.crypto import EncryptedJSON, EncryptedText
from bot.core.models import Base

BATCH = 500
ROW_ID = "_row_id"


def encrypted_columns() -> dict[Table, list[str]]:
    """Each table with encrypted columns, and their names."""
    found: dict[Table, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns if isinstance(c.type, EncryptedText | EncryptedJSON)]
        if names:
            found[table] = names
    return found


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
            query = select(key, *columns).order_by(key).limit(BATCH)
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
