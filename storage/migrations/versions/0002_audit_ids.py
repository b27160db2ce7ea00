"""audit ids: the stable platform user id beside every name in the audit trail

Revision ID: 0002_audit_ids
Revises: 0005_texts_and_pages
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_audit_ids"
down_revision = "0005_texts_and_pages"
branch_labels = None
depends_on = None

REVIEW_COLUMNS = ("closed_platform", "closed_user", "cancelled_platform", "cancelled_user")


def upgrade() -> None:
    with op.batch_alter_table("review_event") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(length=200), nullable=True))
    with op.batch_alter_table("review") as batch:
        for name in REVIEW_COLUMNS:
            length = 20 if name.endswith("platform") else 100
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review") as batch:
        for name in reversed(REVIEW_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("review_event") as batch:
        batch.drop_column("actor_id")
