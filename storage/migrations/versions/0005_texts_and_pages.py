"""texts and pages: staff mobile and pager, and the outbox's follow-up deadline

Revision ID: 0005_texts_and_pages
Revises: 0003_public_pages
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005_texts_and_pages"
down_revision = "0003_public_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(
            sa.Column("mobile", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch.add_column(
            sa.Column("pager", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("follow_up_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.create_index("ix_outbox_follow_up_at", ["follow_up_at"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_follow_up_at")
        batch.drop_column("follow_up_at")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("pager")
        batch.drop_column("mobile")
