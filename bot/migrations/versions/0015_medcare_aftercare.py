"""medcare: aftercare check-ins after discharge (issue 22)

Revision ID: 0015_medcare
Revises: 0014_medcare
Create Date: 2026-12-07 13:10:00

`aftercare_checkins`: the check-ins at 1, 2, 4, 8 and 12 weeks after discharge of a patient who opted in
(planned at once, opened when due). The patient's status "aftercare" needs no schema change (statuses are
stored as short strings).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_medcare"
down_revision: str | None = "0014_medcare"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aftercare_checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("week", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "open",
                "complete",
                "partial",
                "missed",
                "cancelled",
                name="aftercarestatus",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("step", sa.String(length=16), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("craving", sa.Integer(), nullable=True),
        sa.Column("mood", sa.Integer(), nullable=True),
        sa.Column("used", sa.Boolean(), nullable=True),
        sa.Column("connected", sa.String(length=8), nullable=True),
        sa.Column("skipped", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_aftercare_checkins_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aftercare_checkins")),
        sa.UniqueConstraint("patient_id", "week", name="uq_aftercare_checkins_patient_week"),
    )
    with op.batch_alter_table("aftercare_checkins", schema=None) as batch_op:
        batch_op.create_index("ix_aftercare_checkins_status_due", ["status", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("aftercare_checkins", schema=None) as batch_op:
        batch_op.drop_index("ix_aftercare_checkins_status_due")
    op.drop_table("aftercare_checkins")
