"""aftercare_checkins: what was used and how, as tapped or read (tiers a use reported in aftercare)

Revision ID: 0018_aftercare_use
Revises: 0017_inbox_index
Create Date: 2026-12-07 13:00:00

An aftercare check-in asks, after a "yes" to any use, what was used and (when it could change the tier)
whether the patient was alone or injected, as the daily check-in does. `aftercare_checkins.use_report` holds
the answer (encrypted JSON, no words), as `checkins.use_report` does; it decides whether the care team is
paged now or flagged for the next business day (bot.risk.use). Existing rows have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_aftercare_use"
down_revision: str | None = "0017_inbox_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("aftercare_checkins") as batch:
        batch.add_column(sa.Column("use_report", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("aftercare_checkins") as batch:
        batch.drop_column("use_report")
