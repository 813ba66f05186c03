"""dashboard users, one-time sign-in links, sessions and failed sign-in attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from byourside_server.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    with op.batch_alter_table("dashboard_users", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_users_account_id", ["account_id"], unique=False)
    for table in ("dashboard_sign_in_links", "dashboard_sessions"):
        columns = [
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.String(length=36), nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("expires_at", UTCDateTime(), nullable=False),
        ]
        if table == "dashboard_sign_in_links":
            columns.append(sa.Column("used_at", UTCDateTime(), nullable=True))
        op.create_table(
            table,
            *columns,
            sa.ForeignKeyConstraint(["user_id"], ["dashboard_users.id"]),
            sa.PrimaryKeyConstraint("token_hash"),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_user_id", ["user_id"], unique=False)
    op.create_table(
        "dashboard_sign_in_failures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dashboard_sign_in_failures", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_sign_in_failures_subject", ["subject", "failed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("dashboard_sign_in_failures")
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_sign_in_links")
    op.drop_table("dashboard_users")
