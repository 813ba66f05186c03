"""The ``byourside`` command line: the parser and the entry point (``byourside_server.cli:main``).

Subcommands live beside this module: ``admin`` (server, store, accounts), ``sim``
(simulator and evals), ``client`` and ``demo`` (clients of the HTTP API), ``webhooks``.
"""

from __future__ import annotations

import argparse
import sys

from byourside_server import __version__
from byourside_server.cli.admin import cmd_accounts, cmd_keys, cmd_migrate, cmd_numbers, cmd_serve, cmd_worker
from byourside_server.cli.common import CliError, run_async
from byourside_server.cli.compliance import add_compliance_parser
from byourside_server.cli.privacy import add_privacy_actions
from byourside_server.cli.sim import cmd_eval, cmd_sip_sim
from byourside_server.cli.users import add_users_parser
from byourside_server.cli.webhooks import add_webhooks_parser
from byourside_server.errors import StoreUnavailable
from byourside_server.runtime.registry import ProviderError


# call / demo / mcp (clients of the HTTP API)


def cmd_call(args: argparse.Namespace) -> int:
    from byourside_server.cli.client import place_and_follow

    return place_and_follow(args)


def cmd_usage(args: argparse.Namespace) -> int:
    from byourside_server.cli.client import show_usage

    return show_usage(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from byourside_server.cli.demo import run_demo

    return run_demo(args)


def cmd_mcp(args: argparse.Namespace) -> int:
    from byourside_server.mcp.stdio import run_stdio

    return run_stdio()


def limit_value(text: str) -> int:
    """An account limit: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; a limit is 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byourside", description="Give any AI agent a phone.")
    parser.add_argument("--version", action="version", version=f"byourside {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the API and in-process workers")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-workers", action="store_true", help="API only; run 'byourside worker' separately")
    p.set_defaults(async_fn=cmd_serve)

    p = sub.add_parser("worker", help="run call workers only (scale-out)")
    p.set_defaults(async_fn=cmd_worker)

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(async_fn=cmd_migrate)

    p = sub.add_parser("accounts", help="manage accounts")
    a = p.add_subparsers(dest="action", required=True)
    a.add_parser("create").add_argument("name")
    a.add_parser("list")
    lim = a.add_parser("limits", help="show or change an account's limits")
    lim.add_argument("name")
    lim.add_argument("--calls-per-minute", type=limit_value)
    lim.add_argument("--max-concurrent", type=limit_value)
    lim.add_argument("--monthly-minutes", type=limit_value)
    add_privacy_actions(a)  # show, display-name, consent, retention
    p.set_defaults(async_fn=cmd_accounts)

    p = sub.add_parser("keys", help="manage agent API keys")
    k = p.add_subparsers(dest="action", required=True)
    kc = k.add_parser("create", help="mint a key (printed once, as the last line)")
    kc.add_argument("--account", required=True)
    kc.add_argument("--name")
    kc.add_argument("--voice")
    k.add_parser("list").add_argument("--account", required=True)
    kr = k.add_parser("revoke")
    kr.add_argument("--account", required=True)
    kr.add_argument("key", help="key id, prefix...last4, or the full key")
    p.set_defaults(async_fn=cmd_keys)

    p = sub.add_parser("numbers", help="manage the account's caller IDs")
    n = p.add_subparsers(dest="action", required=True)
    na = n.add_parser("add", help="add a caller ID the carrier confirms the account owns")
    na.add_argument("--account", required=True)
    na.add_argument("number")
    na.add_argument("--default", action="store_true")
    n.add_parser("list").add_argument("--account", required=True)
    nd = n.add_parser("default")
    nd.add_argument("--account", required=True)
    nd.add_argument("number")
    n.add_parser("sync", help="import the caller IDs the carrier confirms (BYS_TELEPHONY)").add_argument(
        "--account", required=True)
    p.set_defaults(async_fn=cmd_numbers)

    p = sub.add_parser("call", help="place a call through the API (BYS_BASE_URL, BYS_API_KEY)")
    p.add_argument("to")
    p.add_argument("objective")
    p.add_argument("--context", help="background the agent may use")
    p.add_argument("--field", action="append", default=[], metavar="NAME[:TYPE[:DESCRIPTION]]",
                   help="a value to extract (repeatable); TYPE: string, number, boolean, ...")
    p.add_argument("--webhook-url", help="where status events for this call are posted")
    p.add_argument("--caller-id", help="the account number to call from (E.164)")
    p.add_argument("--voice", help="the agent's voice")
    p.add_argument("--language", help="the call's language, e.g. en-US")
    p.add_argument("--max-duration", type=int, metavar="SECONDS", help="hang up after this many seconds")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="echoed back on the call (repeatable)")
    p.add_argument("--voicemail-message", help="left after the tone when a machine answers")
    p.add_argument("--idempotency-key", help="retrying with the same key never places a second call")
    p.add_argument("--wait", action="store_true", help="stream status changes and print the finished call")
    p.add_argument("--timeout", type=float, default=900)
    p.set_defaults(sync_fn=cmd_call)

    p = sub.add_parser("usage", help="calls and minutes by day and status, and the month's cap (BYS_BASE_URL, BYS_API_KEY)")
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day (UTC; default: the 1st of this month)")
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day, included (UTC; default: today)")
    p.add_argument("--json", action="store_true", help="print the API's JSON instead of the table")
    p.set_defaults(sync_fn=cmd_usage)

    p = sub.add_parser("sip-sim", help="answer SIP calls and play the simulator scenarios as audio")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--sip-port", type=int, default=5080, help="port for SIP (default 5080; 0 picks one)")
    p.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp", help="SIP transport (default udp)")
    p.add_argument("--tls-cert", metavar="PEM", help="with --transport tls: our certificate chain (and key)")
    p.add_argument("--tls-key", metavar="PEM", help="with --transport tls: the certificate's key, if not in --tls-cert")
    p.set_defaults(async_fn=cmd_sip_sim)

    p = sub.add_parser("eval", help="run the scenario evaluation suite against the configured brain")
    p.add_argument("--scenarios", metavar="DIR", help="a directory of eval scenario YAML files (default: the shipped suite)")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these scenarios")
    p.add_argument("--brain", help="override BYS_BRAIN for this run (offline, llm)")
    p.add_argument("--personas", choices=["scripted", "llm"], help="override BYS_SIM_PERSONAS for this run")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(async_fn=cmd_eval)

    p = sub.add_parser("demo", help="start a private server on the simulator and place a demo call")
    p.add_argument("--time-scale", type=float, default=0.2, help="simulated time speed-up (1 = real time)")
    stay = p.add_mutually_exclusive_group()
    stay.add_argument("--stay", dest="stay", action="store_true", default=None,
                      help="keep the server running after the call and print a dashboard sign-in link "
                           "(the default in a terminal)")
    stay.add_argument("--exit", dest="stay", action="store_false", help="stop the server once the call ends")
    p.set_defaults(sync_fn=cmd_demo)

    add_webhooks_parser(sub)  # byourside webhooks secret show|rotate, webhooks listen
    add_users_parser(sub)  # byourside users create|link|list (dashboard sign-in)
    add_compliance_parser(sub)  # byourside suppressions ..., calling-hours ...

    p = sub.add_parser("mcp", help="run the MCP server over stdio (BYS_API_KEY, BYS_BASE_URL)")
    p.set_defaults(sync_fn=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "sync_fn"):
            return args.sync_fn(args)
        return run_async(args.async_fn, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
