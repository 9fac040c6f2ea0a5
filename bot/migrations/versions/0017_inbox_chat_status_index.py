"""inbox: one index for a chat's pending rows in order (chat_key, status, update_id)

Revision ID: 0017_inbox_index
Revises: 0016_pseudonyms
Create Date: 2026-12-08 12:20:00

Finding a chat's pending rows (to claim them in order, or to see whether a new row may be handled from memory)
went through the index on `chat_key` alone, reading every row the chat ever had, or through the status index,
reading every pending row of every chat: under a flood of thousands, each claim read thousands of rows. The
new index reaches them directly; it replaces the one on `chat_key` (erasure by chat uses its first column).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_inbox_index"
down_revision: str | None = "0016_pseudonyms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.create_index("ix_inbox_chat_status", ["chat_key", "status", "update_id"], unique=False)
        batch.drop_index("ix_inbox_chat_key")


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.create_index("ix_inbox_chat_key", ["chat_key"], unique=False)
        batch.drop_index("ix_inbox_chat_status")
