"""Operator commands on the server and its store: ``serve``, ``worker``, ``migrate``,
``accounts``, ``keys`` and ``numbers``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from byourside_server import __version__
from byourside_server.cli.common import CliError, describe_store, find_account, with_store
from byourside_server.errors import InvalidNumber
from byourside_server.settings import Settings


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.server import bootstrap_default_account, prepare, print_err, run_server

    settings.create_data_dir()
    print_err(f"byourside: store {describe_store(settings)}")
    services = await prepare(settings)
    if await bootstrap_default_account(services):
        print_err("Created account 'default' with a simulator caller ID.")
        print_err("Mint an API key with:  byourside keys create --account default")
    print_err(f"byourside {__version__} listening on http://{settings.host}:{settings.port} "
              f"(telephony={settings.telephony}, brain={settings.effective_brain}, workers={'off' if args.no_workers else settings.workers})")
    await run_server(services, with_workers=not args.no_workers)
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.server import prepare, print_err, run_worker_only

    settings.create_data_dir()
    print_err(f"byourside: store {describe_store(settings)}")
    services = await prepare(settings)
    print_err(f"byourside worker: telephony={settings.telephony}, brain={settings.effective_brain}, concurrency={settings.workers}")
    await run_worker_only(services)
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        print("Database schema is up to date.")
        return 0

    return await with_store(settings, work, create=True) or 0


async def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        from byourside_server.cli.privacy import PRIVACY_ACTIONS, privacy_command
        from byourside_server.store.accounts import AccountExists

        if args.action in PRIVACY_ACTIONS:
            return await privacy_command(services, settings, args)
        if args.action == "create":
            try:
                account = await services.accounts.create(args.name, services.default_limits)
            except AccountExists:
                raise CliError(f"An account named '{args.name}' already exists.") from None
            print(f"Created account '{account.name}' ({account.id}).")
            print(f"Next: byourside numbers add --account {account.name} +1XXXXXXXXXX && byourside keys create --account {account.name}")
        elif args.action == "list":
            for a in await services.accounts.list():
                print(f"{a.name}\t{a.id}\tdefault caller ID: {a.default_caller_id or '-'}\t"
                      f"limits: {a.calls_per_minute}/min, {a.max_concurrent_calls} concurrent, {a.monthly_minutes} min/month")
        elif args.action == "limits":
            account = await find_account(services, args.name)
            changes = {k: v for k, v in (("calls_per_minute", args.calls_per_minute),
                                         ("max_concurrent_calls", args.max_concurrent),
                                         ("monthly_minutes", args.monthly_minutes)) if v is not None}
            if changes:
                await services.accounts.set_limits(account.id, **changes)
            a = await services.accounts.by_name(args.name)
            print(f"{a.name}: {a.calls_per_minute} calls/min, {a.max_concurrent_calls} concurrent, {a.monthly_minutes} min/month")
        return 0

    return await with_store(settings, work) or 0


async def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        account = await find_account(services, args.account)
        if args.action == "create":
            record, secret = await services.accounts.create_key(account.id, name=args.name, voice=args.voice)
            print(f"Created key {record.display} for account '{account.name}'. It is shown only now; store it safely.",
                  file=sys.stderr)
            print(secret)
        elif args.action == "list":
            for k in await services.accounts.list_keys(account.id):
                state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
                used = k.last_used_at.isoformat() if k.last_used_at else "never"
                print(f"{k.display}\t{k.id}\t{state}\tcreated {k.created_at.isoformat()}\tlast used {used}")
        elif args.action == "revoke":
            if not await services.accounts.revoke_key(account.id, args.key):
                raise CliError("No single key on that account matches; use the id or the prefix...last4 from 'keys list'.")
            print("Key revoked.")
        return 0

    return await with_store(settings, work) or 0


async def _carrier_caller_ids(settings: Settings) -> list[str] | None:
    from byourside_server.telephony.caller_ids import CallerIdsUnavailable, carrier_caller_ids

    try:
        return await carrier_caller_ids(settings)
    except CallerIdsUnavailable as exc:
        raise CliError(str(exc)) from None


async def _sync_numbers(services: Any, settings: Settings, account: Any) -> None:
    """Import every caller ID the carrier confirms; one another account holds is left with it and named."""
    from byourside_server.store.accounts import NumberTaken

    numbers = await _carrier_caller_ids(settings)
    if numbers is None:
        raise CliError("The simulator has no numbers to import; add caller IDs with 'byourside numbers add'.")
    added, taken = 0, []
    for number in numbers:
        try:
            added += await services.accounts.add_number(account.id, number)
        except NumberTaken:
            taken.append(number)
    print(f"{settings.telephony}: {len(numbers)} caller IDs, {added} added to '{account.name}'.")
    for number in taken:
        print(f"  {number} left out: it belongs to another account.", file=sys.stderr)


async def cmd_numbers(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        from byourside_server.guardrails.numbers import check_caller_id_format
        from byourside_server.store.accounts import NumberTaken

        account = await find_account(services, args.account)
        if args.action == "sync":
            await _sync_numbers(services, settings, account)
        elif args.action in ("add", "default"):
            try:
                number = check_caller_id_format(args.number)
            except InvalidNumber as exc:
                raise CliError(exc.message) from None
            if args.action == "add":
                owned = await _carrier_caller_ids(settings)
                if owned is not None and number not in owned:
                    raise CliError(_not_owned_hint(settings, number))
                try:
                    await services.accounts.add_number(account.id, number, make_default=args.default)
                except NumberTaken:
                    raise CliError(f"{number} is another account's caller ID; a number belongs to one account only.") \
                        from None
                print("Number added." + (" It is the default caller ID." if args.default else ""))
            elif not await services.accounts.set_default_number(account.id, number):
                raise CliError("That number is not on the account; add it first with 'byourside numbers add'.")
            else:
                print("Default caller ID set.")
        else:
            current = (await services.accounts.get(account.id)).default_caller_id
            for number in await services.accounts.list_numbers(account.id):
                print(number + ("\t(default)" if number == current else ""))
        return 0

    return await with_store(settings, work) or 0


def _not_owned_hint(settings: Settings, number: str) -> str:
    if settings.telephony == "twilio":
        return (f"{number} is neither a number of the Twilio account nor one of its verified caller IDs. Buy it or "
                "verify it in the Twilio Console (https://console.twilio.com, Phone Numbers), then run this again "
                "(or 'byourside numbers sync --account ...').")
    if settings.telephony == "telnyx":
        return (f"{number} is neither a number of the Telnyx account nor one of its verified numbers. Buy or verify "
                "it in the Mission Control Portal (https://portal.telnyx.com, Numbers), then run this again.")
    return (f"{number} is not in BYS_SIP_CALLER_IDS, the caller IDs your SIP trunk lets you present: add it there "
            "(every process reads it), then run this again.")
