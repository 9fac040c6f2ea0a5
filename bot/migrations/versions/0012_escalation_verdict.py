"""escalations: the resolving counselor's verdict, a real concern or a false alarm

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00

`escalations.verdict` is "real_concern" or "false_alarm", tapped when a counselor resolves an alert (issue 19,
item 5). It is a code, like `outcome`, `level` and `category` beside it, and says no more about the patient
than they do, so it is stored as it is; the words behind the alert stay in the encrypted `detail`.
`python -m bot risk export-labels` pairs the two for the clinical lead. Alerts resolved before this have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("verdict")
