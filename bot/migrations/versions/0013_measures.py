"""measures: validated questionnaires (PHQ-9, GAD-7, BAM) and their per-patient schedules

Revision ID: 0013_measures
Revises: 0012
Create Date: 2026-12-08 09:53:39

`measures` holds each questionnaire given to a patient: its answers (item id -> option value, JSON, as the
check-in's answers are stored), the item being asked, and its scores once complete. `measure_schedules` holds
a counselor's schedule for one patient and questionnaire, instead of the clinic's default (MEASURES).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_measures"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "measure_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=16), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=True),
        sa.Column("set_by", sa.Integer(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_measure_schedules_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by"],
            ["counselors.id"],
            name=op.f("fk_measure_schedules_set_by_counselors"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure_schedules")),
        sa.UniqueConstraint("patient_id", "instrument", name=op.f("uq_measure_schedules_patient_id")),
    )
    with op.batch_alter_table("measure_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measure_schedules_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "measures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=16), nullable=False),
        sa.Column(
            "source",
            sa.Enum("scheduled", "counselor", name="measuresource", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "complete", "expired", name="measurestatus", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("scheduled_for", sa.Date(), nullable=True),
        sa.Column("step", sa.String(length=16), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("safety_positive", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reasked_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_measures_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["counselors.id"],
            name=op.f("fk_measures_requested_by_counselors"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measures")),
        sa.UniqueConstraint(
            "patient_id", "instrument", "scheduled_for", name="uq_measures_patient_scheduled"
        ),
    )
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.create_index("ix_measures_patient_instrument", ["patient_id", "instrument"], unique=False)
        batch_op.create_index("ix_measures_status_expires", ["status", "expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.drop_index("ix_measures_status_expires")
        batch_op.drop_index("ix_measures_patient_instrument")
    op.drop_table("measures")
    with op.batch_alter_table("measure_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measure_schedules_patient_id"))
    op.drop_table("measure_schedules")
