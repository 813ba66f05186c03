"""``byourside webhooks ...``: show or rotate an account's signing secret; run a local receiver."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from byourside_server.cli.common import CliError, find_account, with_store
from byourside_server.settings import Settings


def add_webhooks_parser(sub: Any) -> None:
    p = sub.add_parser("webhooks", help="webhook signing secrets and a local receiver")
    w = p.add_subparsers(dest="action", required=True)
    s = w.add_parser("secret", help="show or rotate an account's webhook signing secret")
    s.add_argument("secret_action", choices=["show", "rotate"])
    s.add_argument("--account", required=True)
    s.set_defaults(async_fn=cmd_secret)
    listen = w.add_parser("listen", help="receive webhooks locally, verify their signatures and print them")
    listen.add_argument("--host", dest="listen_host", default="127.0.0.1")
    listen.add_argument("--port", dest="listen_port", type=int, default=8787, help="0 picks a free port")
    who = listen.add_mutually_exclusive_group(required=True)
    who.add_argument("--secret", help="the whsec_ secret to verify with")
    who.add_argument("--account", help="verify with this account's secrets (reads the database)")
    listen.add_argument("--status", type=int, default=200, help="HTTP status to answer valid events with")
    listen.add_argument("--quiet", action="store_true", help="one line per event, no bodies")
    listen.set_defaults(sync_fn=cmd_listen)


def _repo(services: Any) -> Any:
    from byourside_server.webhooks.store import WebhookRepo

    return WebhookRepo(services.db, services.clock, secret_grace_seconds=services.settings.webhook_secret_grace_seconds)


async def cmd_secret(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        account = await find_account(services, args.account)
        repo = _repo(services)
        if args.secret_action == "rotate":
            secret = await repo.rotate_secret(account.id)
            grace = settings.webhook_secret_grace_seconds
            print(f"Rotated the webhook secret of '{account.name}'. Events are signed with the new and the previous "
                  f"secret for {grace / 3600:g} h (BYS_WEBHOOK_SECRET_GRACE_SECONDS).", file=sys.stderr)
            print(secret)
            return 0
        secrets = await repo.secrets(account.id)
        if len(secrets) > 1:
            print("A previous secret still signs too (rotation grace period).", file=sys.stderr)
        print(secrets[0])
        return 0

    return await with_store(settings, work) or 0


def cmd_listen(args: argparse.Namespace) -> int:
    from byourside_server.webhooks.listen import make_server, serve

    if args.secret:
        if not args.secret.startswith("whsec_"):
            raise CliError("--secret should be the account's whsec_... secret (see 'byourside webhooks secret show').")
        secrets = [args.secret]
    else:
        async def fetch(services: Any) -> list[str]:
            account = await find_account(services, args.account)
            return await _repo(services).secrets(account.id)

        secrets = asyncio.run(with_store(Settings(), fetch))  # type: ignore[arg-type]
    try:
        server = make_server(args.listen_host, args.listen_port, secrets, status=args.status, show_body=not args.quiet)
    except OSError as exc:
        raise CliError(f"Cannot listen on {args.listen_host}:{args.listen_port}: {exc.strerror or exc}.") from None
    return serve(server)
