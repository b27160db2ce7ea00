"""daily check-ins, and when retention erased a review

Revision ID: 0004_checkins
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004_checkins"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT = sqlmodel.sql.sqltypes.AutoString
MOMENT = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_key", TEXT(length=200), nullable=True),
        sa.Column("ward", TEXT(length=60), nullable=False),
        sa.Column("bed", TEXT(length=20), nullable=False),
        sa.Column("respondent", TEXT(length=20), nullable=False),
        sa.Column("not_asked_reason", TEXT(length=30), nullable=True),
        sa.Column("answer", TEXT(length=10), nullable=True),
        sa.Column("worries", sa.Text(), nullable=True),
        sa.Column("wants_review", sa.Boolean(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("source", TEXT(length=20), nullable=False),
        sa.Column("recorded_by", TEXT(length=100), nullable=False),
        sa.Column("recorded_by_name", TEXT(length=200), nullable=False),
        sa.Column("recorded_at", MOMENT(), nullable=False),
        sa.Column("erased_at", MOMENT(), nullable=True),
        sa.ForeignKeyConstraint(["review_id"], ["review.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_key"),
    )
    with op.batch_alter_table("checkin") as batch:
        batch.create_index("ix_checkin_recorded_at", ["recorded_at"])
        batch.create_index("ix_checkin_ward_at", ["ward", "recorded_at"])
    with op.batch_alter_table("review") as batch:
        batch.add_column(sa.Column("erased_at", MOMENT(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review") as batch:
        batch.drop_column("erased_at")
    op.drop_table("checkin")
