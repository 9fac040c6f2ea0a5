"""escalations: the time of the last message that paged (what an alert's buttons say the counselor saw)

Revision ID: 0019_paged_signal
Revises: 0018_aftercare_use
Create Date: 2026-12-08 00:40:00

An alert's Acknowledge and Resolve buttons carry what the counselor saw: the time of the escalation's last
message that paged (a new escalation, a stronger message, an imminent one). A tap on buttons from before a
newer page changes nothing (the alert is shown as it is now). It was the time of the last message of any
kind, so a patient who kept writing at the same level, which pages nobody, kept Acknowledge refused.
Existing rows have none: their buttons read as from before (one more tap).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_paged_signal"
down_revision: str | None = "0018_aftercare_use"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("paged_signal_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("paged_signal_at")
