"""channel check: an outreach channel its platform says takes the bot's messages again

Revision ID: 0009_channel_check
Revises: 0008_teams_ids_lower_case

A channel that refused the bot (never invited) made /healthz 503 until a message to it went,
hours on a quiet night after the bot was invited. The check now asks the platform, and records
its yes here, so every replica clears, not only the one that asked.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009_channel_check"
down_revision = "0008_teams_ids_lower_case"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "channel_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", text(length=20), nullable=False),
        sa.Column("channel", text(length=200), nullable=False),
        sa.Column("failure_id", sa.Integer(), nullable=False),
        sa.Column("verified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_check")
