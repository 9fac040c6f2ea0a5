"""outbox: rows set aside as unreadable, and the patient a message is about

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:19:38.457228

`outbox.status` may now be 'unreadable' (a payload the keys cannot decrypt, set aside by the sender). The
status is stored as a short string with no check constraint or native enum type, so that value needs no
DDL; downgrading turns it into 'failed' (its error stays 'unreadable'), which an older version can read.

`outbox.subject_patient_id` is the patient a message to someone else is about (an alert page, a notice to
the care team): erasing the patient deletes such rows by this id instead of by searching their text.
Rows queued before this revision have none: erasure no longer searches text, so such a row naming an erased
patient (an alert page sent before the upgrade, say) stays until the retention purge removes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_patient_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_subject_patient_id"), ["subject_patient_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_subject_patient_id_patients"),
            "patients",
            ["subject_patient_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    op.execute(sa.text("UPDATE outbox SET status = 'failed' WHERE status = 'unreadable'"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_subject_patient_id_patients"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbox_subject_patient_id"))
        batch_op.drop_column("subject_patient_id")
