"""outbox maybe_sent: a message whose last attempt may have arrived is looked for first

Revision ID: 0006_outbox_maybe_sent
Revises: 0002_audit_ids
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_maybe_sent"
down_revision = "0002_audit_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("maybe_sent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("maybe_sent")
