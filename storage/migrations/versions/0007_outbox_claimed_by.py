"""outbox claimed_by: which drainer holds a claimed message, so a dead one's go at once

Revision ID: 0007_outbox_claimed_by
Revises: 0006_outbox_maybe_sent
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_claimed_by"
down_revision = "0006_outbox_maybe_sent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
