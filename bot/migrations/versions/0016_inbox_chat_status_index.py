"""inbox: one index for a chat's pending rows in order (chat_id, status, update_id)

Revision ID: 0016_inbox_index
Revises: 0015_medcare
Create Date: 2026-12-07 10:40:00

Finding a chat's pending rows (to claim them in order, or to see whether a new row may be handled from memory)
went through the index on `chat_id` alone, reading every row the chat ever had, or through the status index,
reading every pending row of every chat: under a flood of thousands, each claim read thousands of rows. The
new index reaches them directly; it replaces the one on `chat_id` (erasure by chat uses its first column).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_inbox_index"
down_revision: str | None = "0015_medcare"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.create_index("ix_inbox_chat_status", ["chat_id", "status", "update_id"], unique=False)
        batch.drop_index("ix_inbox_chat_id")


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.create_index("ix_inbox_chat_id", ["chat_id"], unique=False)
        batch.drop_index("ix_inbox_chat_status")
