"""batches of calls (POST /v1/agent/batches, ext): the batch, and each call's batch; an index
for the claim's count of an account's calls on the line (dialling, live, or claimed)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from byourside_server.store.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("canceled_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batches_account_created", "batches", ["account_id", "created_at"])
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_calls_batch_status", ["batch_id", "status"], unique=False)
        batch_op.create_index("ix_calls_account_status_lease", ["account_id", "status", "lease_expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_account_status_lease")
        batch_op.drop_index("ix_calls_batch_status")
        batch_op.drop_column("batch_id")
    op.drop_index("ix_batches_account_created", table_name="batches")
    op.drop_table("batches")
