"""Dashboard users, one-time sign-in links, sessions and the sign-in rate limit (the store side).

Every token (sign-in link, session) is 32 random bytes handed out once; only its
SHA-256 is stored, so the tables sign nobody in if they leak. A link is consumed by a
single conditional UPDATE, so two clicks (or two processes) cannot both use it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from byourside_server.clock import Clock
from byourside_server.store import schema as t
from byourside_server.store.database import Database

MEMBER = "member"
OPERATOR = "operator"
ROLES = (MEMBER, OPERATOR)


class UserExists(Exception):
    pass


@dataclass(frozen=True)
class DashboardUser:
    id: str
    account_id: str
    email: str
    role: str
    has_password: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _user(row) -> DashboardUser:  # noqa: ANN001
    return DashboardUser(row["id"], row["account_id"], row["email"], row["role"], row["password_hash"] is not None,
                         row["created_at"], row["last_sign_in_at"])


class UserRepo:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(self, account_id: str, email: str, role: str = MEMBER) -> DashboardUser:
        if role not in ROLES:
            raise ValueError(role)
        row = {"id": str(uuid.uuid4()), "account_id": account_id, "email": normalize_email(email), "role": role,
               "password_hash": None, "created_at": self.clock.now(), "last_sign_in_at": None}
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(t.dashboard_users).values(**row))
        except IntegrityError as exc:
            raise UserExists(email) from exc
        return _user(row)

    async def by_email(self, email: str) -> tuple[DashboardUser, str | None] | None:
        """The user and their stored password hash."""
        async with self.db.read() as conn:
            row = (await conn.execute(
                select(t.dashboard_users).where(t.dashboard_users.c.email == normalize_email(email)))).mappings().first()
        return (_user(row), row["password_hash"]) if row else None

    async def password_hash(self, user_id: str) -> str | None:
        async with self.db.read() as conn:
            return (await conn.execute(
                select(t.dashboard_users.c.password_hash).where(t.dashboard_users.c.id == user_id))).scalar_one_or_none()

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(t.dashboard_users).where(t.dashboard_users.c.id == user_id)
                               .values(password_hash=password_hash))

    async def list(self, account_id: str) -> list[DashboardUser]:
        u = t.dashboard_users.c
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.dashboard_users).where(u.account_id == account_id)
                                       .order_by(u.created_at))).mappings().all()
        return [_user(r) for r in rows]

    # One-time sign-in links

    async def issue_link(self, user_id: str, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.write() as conn:
            await conn.execute(insert(t.dashboard_sign_in_links).values(
                token_hash=token_hash(token), user_id=user_id, created_at=now, expires_at=now + ttl, used_at=None))
        return token

    async def consume_link(self, token: str) -> DashboardUser | None:
        """The link's user if the link is unused and unexpired; it is then used up."""
        now = self.clock.now()
        links = t.dashboard_sign_in_links.c
        async with self.db.write() as conn:
            user_id = (await conn.execute(
                update(t.dashboard_sign_in_links)
                .where(and_(links.token_hash == token_hash(token), links.used_at.is_(None), links.expires_at > now))
                .values(used_at=now)
                .returning(links.user_id))).scalar_one_or_none()
            if user_id is None:
                return None
            row = (await conn.execute(
                select(t.dashboard_users).where(t.dashboard_users.c.id == user_id))).mappings().one()
        return _user(row)

    # Sessions

    async def start_session(self, user_id: str, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.write() as conn:
            await conn.execute(insert(t.dashboard_sessions).values(
                token_hash=token_hash(token), user_id=user_id, created_at=now, expires_at=now + ttl))
            await conn.execute(update(t.dashboard_users).where(t.dashboard_users.c.id == user_id)
                               .values(last_sign_in_at=now))
        return token

    async def session_user(self, token: str) -> DashboardUser | None:
        s = t.dashboard_sessions.c
        query = (select(t.dashboard_users).join(t.dashboard_sessions, s.user_id == t.dashboard_users.c.id)
                 .where(and_(s.token_hash == token_hash(token), s.expires_at > self.clock.now())))
        async with self.db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _user(row) if row else None

    async def end_session(self, token: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(t.dashboard_sessions).where(t.dashboard_sessions.c.token_hash == token_hash(token)))

    async def end_all_sessions(self, user_id: str) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(delete(t.dashboard_sessions).where(t.dashboard_sessions.c.user_id == user_id))
        return result.rowcount or 0

    # Sign-in rate limit: failures per subject over a sliding window

    async def recent_failures(self, subjects: list[str], window: timedelta) -> dict[str, int]:
        f = t.dashboard_sign_in_failures.c
        since = self.clock.now() - window
        async with self.db.read() as conn:
            rows = (await conn.execute(select(f.subject, func.count()).where(
                and_(f.subject.in_(subjects), f.failed_at > since)).group_by(f.subject))).all()
        return {subject: count for subject, count in rows}

    async def record_failure(self, subjects: list[str], window: timedelta) -> None:
        f = t.dashboard_sign_in_failures.c
        now = self.clock.now()
        async with self.db.write() as conn:
            await conn.execute(delete(t.dashboard_sign_in_failures).where(f.failed_at <= now - window))
            for subject in subjects:
                await conn.execute(insert(t.dashboard_sign_in_failures).values(
                    id=str(uuid.uuid4()), subject=subject, failed_at=now))
