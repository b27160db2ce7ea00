"""platform outage: a platform a failed message found unreachable, known to every process

Revision ID: 0010_platform_outage
Revises: 0009_channel_check

Only the process that sent a message learned that its platform was down: the bot serving the
public pages, beside its sender process, told families "the outreach team has been told" for up
to a minute while no message was getting through. The sender records it here; every process
reads it.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010_platform_outage"
down_revision = "0009_channel_check"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "platform_outage",
        sa.Column("platform", text(length=20), nullable=False),
        sa.Column("reason", text(length=500), nullable=False),
        sa.Column("since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform"),
    )


def downgrade() -> None:
    op.drop_table("platform_outage")
