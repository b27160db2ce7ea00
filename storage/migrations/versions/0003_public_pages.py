"""public pages: where a request came from, the public page's names, the status link, the
per-address submission count and the shared anti-forgery key

Revision ID: 0003_public_pages
Revises: 0004_checkins
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003_public_pages"
down_revision = "0004_checkins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    with op.batch_alter_table("review") as batch:
        batch.add_column(
            sa.Column("source", text(length=20), nullable=False, server_default="form")
        )
        batch.add_column(sa.Column("caller_name", text(length=200), nullable=True))
        batch.add_column(sa.Column("patient_name", text(length=200), nullable=True))
        batch.add_column(sa.Column("relationship", text(length=100), nullable=True))
        batch.add_column(sa.Column("spoken_to_ward", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("status_token", text(length=64), nullable=True))
        batch.create_unique_constraint("uq_review_status_token", ["status_token"])
    op.create_table(
        "web_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", text(length=64), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_submission_address_at", "web_submission", ["address", "at"])
    op.create_table(
        "app_secret",
        sa.Column("name", text(length=40), nullable=False),
        sa.Column("value", text(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("app_secret")
    op.drop_index("ix_web_submission_address_at", table_name="web_submission")
    op.drop_table("web_submission")
    with op.batch_alter_table("review") as batch:
        batch.drop_constraint("uq_review_status_token", type_="unique")
        for column in (
            "status_token",
            "spoken_to_ward",
            "relationship",
            "patient_name",
            "caller_name",
            "source",
        ):
            batch.drop_column(column)
