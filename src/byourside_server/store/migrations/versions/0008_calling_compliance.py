"""responsible outbound calling: scheduled and held calls, retries, opt-outs, the do-not-call
list and per-account calling hours

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from byourside_server.store.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("not_before", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("opt_out", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("retry", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempt_of", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.JSON(), nullable=True))
    op.create_table(
        "suppressions",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "e164"),
    )
    op.create_table(
        "calling_hours",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("days", sa.String(length=32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("calling_hours")
    op.drop_table("suppressions")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        for name in ("attempts", "attempt_of", "attempt", "retry", "opt_out", "hold_reason",
                     "not_before", "scheduled_at"):
            batch_op.drop_column(name)
