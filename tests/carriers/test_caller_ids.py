"""Caller IDs really owned: the carrier confirms them, and a real number belongs to one account only.

The store's rule runs on both backends; ``numbers add`` / ``numbers sync`` are the real CLI process
against the fake Twilio's IncomingPhoneNumbers and OutgoingCallerIds (paged) and a SIP operator list.
"""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from e2e_server import BIN, server_env
from fake_twilio import FakeTwilio
from test_twilio_provider import NoModels
from byourside_server.store.accounts import NumberTaken
from byourside_server.store.database import MIGRATIONS_DIR
from byourside_server.telephony.simulator.scenarios import load_scenarios


async def test_a_real_number_belongs_to_one_account_only(services):
    a = await services.accounts.create("a", services.default_limits)
    b = await services.accounts.create("b", services.default_limits)
    assert await services.accounts.add_number(a.id, "+442071234567") is True
    assert await services.accounts.add_number(a.id, "+442071234567") is False  # already there: nothing changes
    with pytest.raises(NumberTaken):
        await services.accounts.add_number(b.id, "+442071234567", make_default=True)
    assert await services.accounts.list_numbers(b.id) == []
    assert (await services.accounts.get(b.id)).default_caller_id is None
    # The simulator's fictional numbers are sandbox caller IDs any account may hold.
    assert await services.accounts.add_number(a.id, "+14155550100")
    assert await services.accounts.add_number(b.id, "+14155550100")
    assert await services.accounts.owns_number(b.id, "+14155550100")


async def test_the_database_itself_refuses_a_second_owner(services):
    # Even a writer that skips the repo's check cannot give one real number two accounts.
    from byourside_server.store import schema as t

    a = await services.accounts.create("a", services.default_limits)
    b = await services.accounts.create("b", services.default_limits)
    await services.accounts.add_number(a.id, "+442071234567")
    with pytest.raises(sa.exc.IntegrityError):
        async with services.db.write() as conn:
            await conn.execute(sa.insert(t.phone_numbers).values(id="x", account_id=b.id, e164="+442071234567",
                                                                  created_at=services.clock.now(), sandbox=False))


def test_the_migration_keeps_a_shared_number_with_its_first_owner(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        for n, name in enumerate(("first", "second")):
            conn.execute(sa.text("INSERT INTO accounts (id, name, default_caller_id, webhook_secret, calls_per_minute, "
                                 "max_concurrent_calls, monthly_minutes, created_at) VALUES (:id, :id, :n, 's', 1, 1, 1, "
                                 f"'2026-01-0{n + 1} 00:00:00')"), {"id": name, "n": "+442071234567"})
        rows = [("1", "first", "+442071234567", 1), ("2", "second", "+442071234567", 2),
                ("3", "second", "+14155550100", 3), ("4", "first", "+14155550100", 4)]
        for row_id, account, e164, day in rows:
            conn.execute(sa.text("INSERT INTO phone_numbers (id, account_id, e164, created_at) VALUES "
                                 f"(:i, :a, :e, '2026-01-0{day} 00:00:00')"), {"i": row_id, "a": account, "e": e164})
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
    with engine.connect() as conn:
        numbers = sorted(conn.execute(sa.text("SELECT account_id, e164, sandbox FROM phone_numbers")).all())
        defaults = dict(conn.execute(sa.text("SELECT id, default_caller_id FROM accounts")).all())
    assert numbers == [("first", "+14155550100", 1), ("first", "+442071234567", 0), ("second", "+14155550100", 1)]
    assert defaults == {"first": "+442071234567", "second": "+14155550100"}  # the second falls back to what it has


@pytest.fixture
def fake_twilio():
    fake = FakeTwilio(load_scenarios(), NoModels(), numbers=("+14155551001", "+14155551002", "+14155551003"),
                      caller_ids=("+442071234567",), page_size=2).start_in_thread()
    yield fake
    fake.stop_thread()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "byourside"), *args], env=env, capture_output=True, text=True, timeout=60)


def test_numbers_add_and_sync_ask_twilio(tmp_path, fake_twilio):
    env = server_env(tmp_path, None, 0, BYS_TELEPHONY="twilio", BYS_TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
                     BYS_TWILIO_AUTH_TOKEN=fake_twilio.auth_token, BYS_TWILIO_API_URL=fake_twilio.api_url)
    assert cli(env, "migrate").returncode == 0
    for name in ("acme", "other"):
        assert cli(env, "accounts", "create", name).returncode == 0
    refused = cli(env, "numbers", "add", "--account", "acme", "+14155559999")
    assert refused.returncode == 1 and "verify it in the Twilio Console" in refused.stderr
    assert cli(env, "numbers", "add", "--account", "acme", "+442071234567").returncode == 0  # a verified caller ID
    assert cli(env, "numbers", "add", "--account", "acme", "+14155551003", "--default").returncode == 0
    taken = cli(env, "numbers", "add", "--account", "other", "+14155551003")
    assert taken.returncode == 1 and "another account's caller ID" in taken.stderr
    synced = cli(env, "numbers", "sync", "--account", "other")  # three pages of two
    assert synced.returncode == 0, synced.stderr
    assert "4 caller IDs, 2 added to 'other'" in synced.stdout
    assert "+14155551003 left out" in synced.stderr and "+442071234567 left out" in synced.stderr
    listed = cli(env, "numbers", "list", "--account", "other").stdout.split()
    assert listed == ["+14155551001", "(default)", "+14155551002"]
    wrong_key = cli({**env, "BYS_TWILIO_AUTH_TOKEN": "wrong"}, "numbers", "sync", "--account", "other")
    assert wrong_key.returncode == 1 and "Check BYS_TWILIO_ACCOUNT_SID" in wrong_key.stderr


def test_numbers_add_with_sip_takes_the_operators_list(tmp_path):
    env = server_env(tmp_path, None, 0, BYS_TELEPHONY="sip", BYS_SIP_CALLER_IDS="+14155551001, +442071234567")
    assert cli(env, "migrate").returncode == 0 and cli(env, "accounts", "create", "acme").returncode == 0
    assert cli(env, "numbers", "add", "--account", "acme", "+442071234567").returncode == 0
    refused = cli(env, "numbers", "add", "--account", "acme", "+14155559999")
    assert refused.returncode == 1 and "BYS_SIP_CALLER_IDS" in refused.stderr
    undeclared = cli({**env, "BYS_SIP_CALLER_IDS": ""}, "numbers", "add", "--account", "acme", "+442071234567")
    assert undeclared.returncode == 1 and "declare the caller IDs" in undeclared.stderr
