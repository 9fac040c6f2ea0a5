"""outbox payload stored as text (encrypted, like every free-text column)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:36:07.035327

The free-text columns (check-in answers, safety plans, escalation details, reasons) stay TEXT: they now hold
Fernet tokens written by `bot.core.crypto`. The outbox payload was JSON and becomes TEXT to hold one. Rows
written before keep their plain JSON, which is still read; `python -m bot keys rotate` encrypts them.
Downgrading turns the column back into JSON and drops the outbox rows that are encrypted (messages waiting
to be sent, and the record of sent ones): an older version could not read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "payload",
            existing_type=sa.JSON(),
            type_=sa.Text(),
            existing_nullable=False,
            postgresql_using="payload::text",
        )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM outbox WHERE payload LIKE 'gAAAAA%'"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "payload",
            existing_type=sa.Text(),
            type_=sa.JSON(),
            existing_nullable=False,
            postgresql_using="payload::json",
        )
