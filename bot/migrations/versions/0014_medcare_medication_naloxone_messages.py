"""medcare: medication reminders, naloxone at home, messages from the care team (issue 22)

Revision ID: 0014_medcare
Revises: 0013_measures
Create Date: 2026-12-07 09:48:41

`medication_plans` (one per patient, opt-in), `dose_days` (one daily dose reminder and its answer),
`naloxone_status` (the patient's answer to "Do you have naloxone at home?"), `care_messages` and
`care_message_replies` (`/message` and the patient's answers). Free text (a medicine's name, the messages) is
encrypted at rest, like every free-text column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_medcare"
down_revision: str | None = "0013_measures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=24)


def upgrade() -> None:
    op.create_table(
        "care_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("counselor_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_care_messages_counselor_id_counselors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["patient_groups.id"],
            name=op.f("fk_care_messages_group_id_patient_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_care_messages_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_messages")),
    )
    with op.batch_alter_table("care_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_messages_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "dose_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column(
            "status",
            _enum("dosestatus", "asked", "taken", "not_yet", "missed", "ran_out", "unanswered"),
            nullable=False,
        ),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ask_again_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_dose_days_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_days")),
        sa.UniqueConstraint("patient_id", "local_day", name="uq_dose_days_patient_day"),
    )
    with op.batch_alter_table("dose_days", schema=None) as batch_op:
        batch_op.create_index("ix_dose_days_status_closes", ["status", "closes_at"], unique=False)

    op.create_table(
        "medication_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            _enum(
                "medicationkind",
                "buprenorphine",
                "methadone",
                "naltrexone_daily",
                "naltrexone_monthly",
                "other",
            ),
            nullable=False,
        ),
        sa.Column("other_name", sa.Text(), nullable=True),
        sa.Column("dose_time", sa.Time(), nullable=True),
        sa.Column("show_name", sa.Boolean(), nullable=False),
        sa.Column("next_supply", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("set_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_medication_plans_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_plans")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_medication_plans_patient_id")),
    )
    op.create_table(
        "naloxone_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("has_naloxone", sa.String(length=8), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replace_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_naloxone_status_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naloxone_status")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_naloxone_status_patient_id")),
    )
    op.create_table(
        "care_message_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["care_messages.id"],
            name=op.f("fk_care_message_replies_message_id_care_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_care_message_replies_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_message_replies")),
    )
    with op.batch_alter_table("care_message_replies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_message_replies_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_care_message_replies_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("care_message_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_message_replies_patient_id"))
        batch_op.drop_index(batch_op.f("ix_care_message_replies_message_id"))
    op.drop_table("care_message_replies")
    op.drop_table("naloxone_status")
    op.drop_table("medication_plans")
    with op.batch_alter_table("dose_days", schema=None) as batch_op:
        batch_op.drop_index("ix_dose_days_status_closes")
    op.drop_table("dose_days")
    with op.batch_alter_table("care_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_messages_patient_id"))
    op.drop_table("care_messages")
