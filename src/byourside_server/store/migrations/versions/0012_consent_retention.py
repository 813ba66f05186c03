"""consent, disclosure and retention (ext): an account's display name, AI disclosure wording,
recording choice and retention days; a call's erasure time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from byourside_server.store.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("ai_disclosure", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("record_calls", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("recording_notice", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recording_retention_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("transcript_retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name in ("transcript_retention_days", "recording_retention_days", "recording_notice", "record_calls",
                     "ai_disclosure", "display_name"):
            batch_op.drop_column(name)
