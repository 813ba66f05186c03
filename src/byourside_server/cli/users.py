"""``byourside users ...``: dashboard users and their one-time sign-in links."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from byourside_server.cli.common import CliError, find_account, with_store
from byourside_server.settings import Settings


def add_users_parser(sub: Any) -> None:
    p = sub.add_parser("users", help="dashboard users and one-time sign-in links")
    u = p.add_subparsers(dest="action", required=True)
    c = u.add_parser("create", help="add a dashboard user and print a one-time sign-in link")
    c.add_argument("--account", required=True)
    c.add_argument("--email", required=True)
    c.add_argument("--operator", action="store_true", help="the user sees every account")
    link = u.add_parser("link", help="print a new one-time sign-in link for a user (e.g. a forgotten password)")
    link.add_argument("--email", required=True)
    u.add_parser("list", help="the account's dashboard users").add_argument("--account", required=True)
    p.set_defaults(async_fn=cmd_users)


def _sign_in_url(settings: Settings, token: str) -> str:
    return f"{settings.effective_public_base_url}/dashboard/sign-in/link?token={token}"


async def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        from byourside_server.dashboard.users import MEMBER, OPERATOR, UserExists, UserRepo

        users = UserRepo(services.db, services.clock)
        ttl = timedelta(minutes=settings.dashboard_link_minutes)
        if args.action == "list":
            account = await find_account(services, args.account)
            for user in await users.list(account.id):
                seen = user.last_sign_in_at.isoformat() if user.last_sign_in_at else "never"
                print(f"{user.email}\t{user.role}\tpassword: {'set' if user.has_password else 'not set'}\t"
                      f"last sign-in {seen}")
            return 0
        if args.action == "create":
            account = await find_account(services, args.account)
            if "@" not in args.email or len(args.email) > 254:
                raise CliError("--email should be an email address.")
            try:
                user = await users.create(account.id, args.email, OPERATOR if args.operator else MEMBER)
            except UserExists:
                raise CliError(f"A dashboard user with that email already exists; "
                               f"print a new link with: byourside users link --email {args.email}") from None
            print(f"Created {user.role} {user.email} on account '{account.name}'.", file=sys.stderr)
        else:
            found = await users.by_email(args.email)
            if found is None:
                raise CliError("No dashboard user with that email.")
            user = found[0]
        token = await users.issue_link(user.id, ttl)
        print(f"One-time sign-in link (valid {settings.dashboard_link_minutes:g} min, single use):", file=sys.stderr)
        print(_sign_in_url(settings, token))
        return 0

    return await with_store(settings, work) or 0
