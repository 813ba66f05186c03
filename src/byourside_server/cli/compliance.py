"""``byourside suppressions ...`` (the do-not-call list) and ``byourside calling-hours ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from byourside_server.cli.common import CliError, find_account, with_store
from byourside_server.settings import Settings


def add_compliance_parser(sub: Any) -> None:
    p = sub.add_parser("suppressions", help="an account's do-not-call list")
    s = p.add_subparsers(dest="action", required=True)
    add = s.add_parser("add", help="add E.164 numbers to the list")
    add.add_argument("--account", required=True)
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    add.add_argument("--note", help="why (shown with the entry)")
    rm = s.add_parser("remove", help="remove a number (only if the callee agreed to be called again)")
    rm.add_argument("--account", required=True)
    rm.add_argument("number")
    ls = s.add_parser("list", help="print the list, one number a line")
    ls.add_argument("--account", required=True)
    imp = s.add_parser("import", help="add the numbers of a CSV file (a 'number' column, or the first)")
    imp.add_argument("--account", required=True)
    imp.add_argument("file", type=Path)
    p.set_defaults(async_fn=cmd_suppressions)

    p = sub.add_parser("calling-hours", help="when an account's calls may ring, in the callee's local time")
    h = p.add_subparsers(dest="action", required=True)
    h.add_parser("show").add_argument("--account", required=True)
    st = h.add_parser("set", help="e.g. --start 09:00 --end 20:00 --days mon-fri")
    st.add_argument("--account", required=True)
    st.add_argument("--start", required=True, metavar="HH:MM")
    st.add_argument("--end", required=True, metavar="HH:MM")
    st.add_argument("--days", default="mon-sun", help="mon..sun, lists and ranges: mon-fri,sun (default every day)")
    h.add_parser("reset", help="back to the server's defaults (BYS_CALLING_HOURS_*)").add_argument("--account", required=True)
    p.set_defaults(async_fn=cmd_calling_hours)


def _numbers(raw: list[str]) -> list[str]:
    from byourside_server.errors import InvalidNumber
    from byourside_server.guardrails.numbers import parse_e164

    numbers = []
    for value in raw:
        try:
            numbers.append(parse_e164(value))
        except InvalidNumber as exc:
            raise CliError(f"'{value}': {exc.message}") from None
    return numbers


async def cmd_suppressions(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        account = await find_account(services, args.account)
        repo = services.suppressions
        if args.action == "add":
            numbers = _numbers(args.numbers)
            added = await repo.add(account.id, numbers, source="cli", note=args.note)
            print(f"Added {added} number(s) to the do-not-call list of '{account.name}' "
                  f"({len(set(numbers)) - added} already on it).")
        elif args.action == "remove":
            if not await repo.remove(account.id, _numbers([args.number])[0]):
                raise CliError(f"That number is not on the do-not-call list of '{account.name}'.")
            print(f"Removed it from the do-not-call list of '{account.name}'.")
        elif args.action == "import":
            await _import(repo, account, args.file)
        else:
            cursor = None
            while True:
                items, cursor = await repo.list(account.id, limit=500, cursor=cursor)
                for item in items:
                    print(f"{item.number}\t{item.source}\t{item.created_at:%Y-%m-%d}\t{item.note or ''}")
                if cursor is None:
                    break
        return 0

    return await with_store(settings, work)


async def _import(repo: Any, account: Any, path: Path) -> None:
    from byourside_server.compliance.numbers_csv import read_numbers_csv
    from byourside_server.errors import InvalidRequest

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}") from None
    try:
        numbers, rejected = read_numbers_csv(raw)
    except InvalidRequest as exc:
        raise CliError(f"{path}: {exc.message}") from None
    added = await repo.add(account.id, numbers, source="csv") if numbers else 0
    for row in rejected:
        print(f"{path}: row {row['row']}: {row['error']}: {row['message']}", file=sys.stderr)
    print(f"Added {added} number(s) from {path} to the do-not-call list of '{account.name}' "
          f"({len(set(numbers)) - added} already on it, {len(rejected)} row(s) rejected).")


async def cmd_calling_hours(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.compliance.hours import CallingHours, CallingHoursError

    async def work(services: Any) -> int:
        account = await find_account(services, args.account)
        compliance = services.compliance
        if args.action == "set":
            try:
                hours = CallingHours.parse(args.start, args.end, args.days)
            except CallingHoursError as exc:
                raise CliError(f"{exc}.") from None
            await compliance.repo.set_calling_hours(account.id, hours)
        elif args.action == "reset":
            await compliance.repo.set_calling_hours(account.id, None)
        own = await compliance.repo.calling_hours(account.id)
        shown = (own or compliance.default_hours).to_json()
        print(f"{account.name}: {shown['start']}-{shown['end']} {','.join(shown['days'])} in the callee's local time "
              f"({'set for the account' if own else 'server default'})")
        return 0

    return await with_store(settings, work)
