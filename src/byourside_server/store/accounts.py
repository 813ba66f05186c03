"""Accounts, agent keys and owned numbers."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from byourside_server.clock import Clock
from byourside_server.store import schema as t
from byourside_server.store.database import Database
from byourside_server.store.records import Account, ApiKeyRecord, account_from_row, key_from_row

KEY_PREFIX = "bys_ak_"
_ALPHABET = string.ascii_letters + string.digits
# Last-used times are written at most this often per key, to keep reads cheap.
_LAST_USED_RESOLUTION_SECONDS = 60
# Verified keys kept at most (the cache starts over past it).
_KEY_CACHE_MAX = 10_000


class AccountExists(Exception):
    pass


class AccountNotFound(Exception):
    pass


class NumberTaken(Exception):
    """The number is another account's caller ID (a real number belongs to one account only)."""


# The simulator's fictional caller IDs (+1 NXX 555-01XX): no carrier can own them, so any sandbox
# account may hold one; every other number belongs to one account only.
FICTIONAL_NUMBER = re.compile(r"\+1\d{3}55501\d{2}")


def hash_key(secret: str) -> str:
    """Agent keys carry 238 bits of entropy, so a fast unsalted SHA-256 is safe to store."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_secret() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Limits:
    calls_per_minute: int
    max_concurrent_calls: int
    monthly_minutes: int


class AccountRepo:
    def __init__(self, db: Database, clock: Clock, *, key_cache_seconds: float = 0.0) -> None:
        self.db = db
        self.clock = clock
        # Keys verified in the last ``key_cache_seconds`` (by SHA-256 of the secret), so a busy client
        # costs no store read per request. A change made through this repo (revoke, limits, default
        # caller ID) forgets them at once; one made by another process is seen within the period.
        self.key_cache_seconds = key_cache_seconds
        self._verified: dict[str, tuple[float, Account, ApiKeyRecord]] = {}

    def forget_verified_keys(self) -> None:
        self._verified.clear()

    async def create(self, name: str, limits: Limits) -> Account:
        row = {
            "id": str(uuid.uuid4()),
            "name": name,
            "default_caller_id": None,
            "webhook_secret": new_webhook_secret(),
            "calls_per_minute": limits.calls_per_minute,
            "max_concurrent_calls": limits.max_concurrent_calls,
            "monthly_minutes": limits.monthly_minutes,
            "created_at": self.clock.now(),
        }
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(t.accounts).values(**row))
        except IntegrityError as exc:
            raise AccountExists(name) from exc
        return account_from_row(row)

    async def get(self, account_id: str) -> Account | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.accounts).where(t.accounts.c.id == account_id))).mappings().first()
        return account_from_row(row) if row else None

    async def by_name(self, name: str) -> Account:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.accounts).where(t.accounts.c.name == name))).mappings().first()
        if row is None:
            raise AccountNotFound(name)
        return account_from_row(row)

    async def list(self) -> list[Account]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.accounts).order_by(t.accounts.c.created_at))).mappings().all()
        return [account_from_row(r) for r in rows]

    async def count(self) -> int:
        async with self.db.read() as conn:
            return (await conn.execute(select(func.count()).select_from(t.accounts))).scalar_one()

    async def set_limits(self, account_id: str, **limits: int) -> None:
        self.forget_verified_keys()
        async with self.db.write() as conn:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(**limits))

    # Consent, disclosure and retention (compliance/consent.py checks the values first)
    PRIVACY_COLUMNS = ("display_name", "ai_disclosure", "record_calls", "recording_notice",
                       "recording_retention_days", "transcript_retention_days")

    async def set_privacy(self, account_id: str, **values: object) -> None:
        """Set some of ``PRIVACY_COLUMNS``; None puts one back to the server's default."""
        unknown = set(values) - set(self.PRIVACY_COLUMNS)
        if unknown:
            raise ValueError(f"not an account privacy setting: {sorted(unknown)}")
        self.forget_verified_keys()
        async with self.db.write() as conn:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(**values))

    # Agent keys

    async def create_key(self, account_id: str, *, name: str | None = None, voice: str | None = None) -> tuple[ApiKeyRecord, str]:
        """Mint a key. The secret is returned once and only its hash is stored."""
        secret = new_key_secret()
        row = {
            "id": str(uuid.uuid4()),
            "account_id": account_id,
            "key_hash": hash_key(secret),
            "prefix": secret[: len(KEY_PREFIX) + 4],
            "last4": secret[-4:],
            "name": name,
            "voice": voice,
            "created_at": self.clock.now(),
            "last_used_at": None,
            "revoked_at": None,
        }
        async with self.db.write() as conn:
            await conn.execute(insert(t.api_keys).values(**row))
        return key_from_row(row), secret

    async def list_keys(self, account_id: str) -> list[ApiKeyRecord]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.api_keys).where(t.api_keys.c.account_id == account_id).order_by(t.api_keys.c.created_at)
                )
            ).mappings().all()
        return [key_from_row(r) for r in rows]

    async def revoke_key(self, account_id: str, key_ref: str) -> bool:
        """Revoke by key id, by display form (``bys_ak_abcd...wxyz``) or by the full secret."""
        c = t.api_keys.c
        match = (c.id == key_ref) | (c.key_hash == hash_key(key_ref))
        if "..." in key_ref:
            prefix, _, last4 = key_ref.partition("...")
            match = match | and_(c.prefix == prefix, c.last4 == last4)
        self.forget_verified_keys()
        async with self.db.write() as conn:
            ids = (await conn.execute(select(c.id).where(and_(c.account_id == account_id, match)))).scalars().all()
            if len(ids) != 1:
                return False
            await conn.execute(
                update(t.api_keys).where(and_(c.id == ids[0], c.revoked_at.is_(None))).values(revoked_at=self.clock.now())
            )
        return True

    async def authenticate(self, secret: str) -> tuple[Account, ApiKeyRecord] | None:
        """Resolve a presented key to its account; None when unknown or revoked."""
        if not secret.startswith(KEY_PREFIX):
            return None
        digest = hash_key(secret)
        cached = self._verified.get(digest)
        if cached is not None and self.clock.monotonic() < cached[0]:
            return cached[1], cached[2]
        query = (
            select(t.api_keys, *[c.label(f"acct_{c.name}") for c in t.accounts.c])
            .join(t.accounts, t.accounts.c.id == t.api_keys.c.account_id)
            .where(t.api_keys.c.key_hash == digest)
        )
        async with self.db.query() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        key = key_from_row(row)
        account = account_from_row({c.name: row[f"acct_{c.name}"] for c in t.accounts.c})
        now = self.clock.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > _LAST_USED_RESOLUTION_SECONDS:
            async with self.db.write() as conn:
                await conn.execute(update(t.api_keys).where(t.api_keys.c.id == key.id).values(last_used_at=now))
            key = replace(key, last_used_at=now)
        if self.key_cache_seconds > 0:
            if len(self._verified) >= _KEY_CACHE_MAX:
                self._verified.clear()
            self._verified[digest] = (self.clock.monotonic() + self.key_cache_seconds, account, key)
        return account, key

    # Owned numbers (caller IDs)

    async def add_number(self, account_id: str, e164: str, *, make_default: bool = False) -> bool:
        """Add a caller ID (True), or find it already there (False); NumberTaken if another account has it."""
        sandbox = FICTIONAL_NUMBER.fullmatch(e164) is not None
        n = t.phone_numbers.c
        try:
            async with self.db.write() as conn:
                holders = (await conn.execute(select(n.account_id).where(n.e164 == e164))).scalars().all()
                if not sandbox and any(holder != account_id for holder in holders):
                    raise NumberTaken(e164)
                added = account_id not in holders
                if added:
                    await conn.execute(
                        insert(t.phone_numbers).values(
                            id=str(uuid.uuid4()), account_id=account_id, e164=e164, created_at=self.clock.now(),
                            sandbox=sandbox,
                        )
                    )
                await self._default_if_needed(conn, account_id, e164, make_default)
        except IntegrityError as exc:  # another account added it at the same moment
            raise NumberTaken(e164) from exc
        return added

    @staticmethod
    async def _default_if_needed(conn, account_id: str, e164: str, make_default: bool) -> None:  # noqa: ANN001
        has_default = (
            await conn.execute(select(t.accounts.c.default_caller_id).where(t.accounts.c.id == account_id))
        ).scalar_one()
        if make_default or has_default is None:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(default_caller_id=e164))

    async def list_numbers(self, account_id: str) -> list[str]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.phone_numbers.c.e164)
                .where(t.phone_numbers.c.account_id == account_id)
                .order_by(t.phone_numbers.c.created_at)
            )
            return [r[0] for r in rows]

    async def set_default_number(self, account_id: str, e164: str) -> bool:
        if not await self.owns_number(account_id, e164):
            return False
        async with self.db.write() as conn:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(default_caller_id=e164))
        self.forget_verified_keys()
        return True

    async def owns_number(self, account_id: str, e164: str) -> bool:
        """One indexed lookup (runs on every placement), not a read of every number."""
        n = t.phone_numbers.c
        async with self.db.read() as conn:
            found = await conn.execute(select(n.id).where(and_(n.account_id == account_id, n.e164 == e164)).limit(1))
            return found.first() is not None
