"""a caller ID belongs to one account only (the simulator's fictional numbers excepted)

``phone_numbers.sandbox`` marks the simulator's fictional caller IDs (+1 NXX 555-01XX): no carrier can
own them, so any sandbox account may hold one. Every other number is unique across accounts (a partial
unique index). A store where two accounts held the same real number keeps it with the account that
added it first; the later rows are removed, and an account whose default caller ID was such a number
falls back to its oldest remaining number (or none).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FICTIONAL = re.compile(r"\+1\d{3}55501\d{2}")


def upgrade() -> None:
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sandbox", sa.Boolean(), nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    numbers = sa.table("phone_numbers", sa.column("id"), sa.column("account_id"), sa.column("e164"),
                       sa.column("created_at"), sa.column("sandbox"))
    accounts = sa.table("accounts", sa.column("id"), sa.column("default_caller_id"))
    rows = conn.execute(sa.select(numbers.c.id, numbers.c.account_id, numbers.c.e164)
                        .order_by(numbers.c.created_at, numbers.c.id)).all()
    owner: dict[str, str] = {}
    for row_id, account_id, e164 in rows:
        if FICTIONAL.fullmatch(e164):
            conn.execute(sa.update(numbers).where(numbers.c.id == row_id).values(sandbox=True))
            continue
        if e164 not in owner:
            owner[e164] = account_id
            continue
        conn.execute(sa.delete(numbers).where(numbers.c.id == row_id))
        fallback = conn.execute(sa.select(numbers.c.e164).where(numbers.c.account_id == account_id)
                                .order_by(numbers.c.created_at).limit(1)).scalar()
        conn.execute(sa.update(accounts).where(sa.and_(accounts.c.id == account_id,
                                                       accounts.c.default_caller_id == e164))
                     .values(default_caller_id=fallback))
    op.create_index("uq_phone_numbers_e164_owned", "phone_numbers", ["e164"], unique=True,
                    sqlite_where=sa.text("sandbox = false"), postgresql_where=sa.text("sandbox = false"))


def downgrade() -> None:
    op.drop_index("uq_phone_numbers_e164_owned", table_name="phone_numbers")
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.drop_column("sandbox")
