"""usage as running totals; an index for listing calls by status

``usage_months`` holds, per account and month (UTC, of the call's creation), the calls that ended
and their answered seconds: the minute cap reads this one row instead of summing the month's calls.
``usage_days`` holds the same per day and final status, for ``GET /v1/agent/usage``. Both are
written in the transaction that ends a call (store/usage.py); this migration fills them from the
calls already ended. ``ix_calls_account_status_created`` serves ``GET /v1/agent/calls?status=``
newest first without reading every call of that status.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ACTIVE = ("queued", "dialing", "in_progress")


def upgrade() -> None:
    op.create_table(
        "usage_months",
        sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
    )
    op.create_table(
        "usage_days",
        sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_account_status_created", ["account_id", "status", "created_at"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        month, day = "substr(created_at, 1, 7)", "substr(created_at, 1, 10)"
    else:
        month, day = "to_char(created_at, 'YYYY-MM')", "to_char(created_at, 'YYYY-MM-DD')"
    ended = "status NOT IN ('queued', 'dialing', 'in_progress')"
    conn.execute(sa.text(
        f"INSERT INTO usage_months (account_id, month, calls, seconds) "
        f"SELECT account_id, {month}, count(*), coalesce(sum(duration_seconds), 0) FROM calls "
        f"WHERE {ended} GROUP BY account_id, {month}"
    ))
    conn.execute(sa.text(
        f"INSERT INTO usage_days (account_id, day, status, calls, seconds) "
        f"SELECT account_id, {day}, status, count(*), coalesce(sum(duration_seconds), 0) FROM calls "
        f"WHERE {ended} GROUP BY account_id, {day}, status"
    ))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_account_status_created")
    op.drop_table("usage_days")
    op.drop_table("usage_months")
