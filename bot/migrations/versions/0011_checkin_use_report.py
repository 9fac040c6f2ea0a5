"""checkins: what was used and how, as tapped or read (tiers a reported use)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:50:00

`checkins.use_report` holds the substances named at "What did you use?" and whether the patient was alone or
injected (JSON, no words: the patient's own words stay in the encrypted `use_what`). It decides whether the
care team is paged now or flagged for the next business day (bot.risk.use).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.add_column(sa.Column("use_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.drop_column("use_report")
