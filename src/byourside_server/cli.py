"""The ``byourside`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Awaitable, Callable

from byourside_server import __version__
from byourside_server.errors import InvalidNumber, StoreUnavailable
from byourside_server.runtime.registry import ProviderError
from byourside_server.settings import Settings


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 1."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return Settings(**overrides)


def _run(coro_fn: Callable[[Any], Awaitable[int | None]], args: argparse.Namespace) -> int:
    from byourside_server.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    try:
        return asyncio.run(coro_fn(settings, args)) or 0
    except KeyboardInterrupt:
        return 130


async def _with_store(settings: Settings, work: Callable[[Any], Awaitable[int | None]]) -> int | None:
    from byourside_server.server import prepare

    try:
        services = await prepare(settings)
    except StoreUnavailable:
        raise CliError("The database is unavailable. Check BYS_DATABASE_URL and that the server is running.") from None
    try:
        return await work(services)
    finally:
        await services.aclose()


# serve / worker / migrate


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.server import bootstrap_default_account, prepare, print_err, run_server

    settings.create_data_dir()
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
    services = await prepare(settings)
    print_err(f"byourside worker: telephony={settings.telephony}, brain={settings.effective_brain}, concurrency={settings.workers}")
    await run_worker_only(services)
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        print("Database schema is up to date.")
        return 0

    return await _with_store(settings, work) or 0


# accounts / keys / numbers


async def _account(services: Any, name: str) -> Any:
    from byourside_server.store.accounts import AccountNotFound

    try:
        return await services.accounts.by_name(name)
    except AccountNotFound:
        raise CliError(f"No account named '{name}'. Create it with: byourside accounts create {name}") from None


async def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        from byourside_server.store.accounts import AccountExists

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
            account = await _account(services, args.name)
            changes = {k: v for k, v in (("calls_per_minute", args.calls_per_minute),
                                         ("max_concurrent_calls", args.max_concurrent),
                                         ("monthly_minutes", args.monthly_minutes)) if v is not None}
            if changes:
                await services.accounts.set_limits(account.id, **changes)
            a = await services.accounts.by_name(args.name)
            print(f"{a.name}: {a.calls_per_minute} calls/min, {a.max_concurrent_calls} concurrent, {a.monthly_minutes} min/month")
        return 0

    return await _with_store(settings, work) or 0


async def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        account = await _account(services, args.account)
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

    return await _with_store(settings, work) or 0


async def cmd_numbers(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Any) -> int:
        from byourside_server.guardrails.numbers import check_caller_id_format

        account = await _account(services, args.account)
        if args.action in ("add", "default"):
            try:
                number = check_caller_id_format(args.number)
            except InvalidNumber as exc:
                raise CliError(exc.message) from None
            if args.action == "add":
                await services.accounts.add_number(account.id, number, make_default=args.default)
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

    return await _with_store(settings, work) or 0


async def cmd_sip_sim(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.runtime.registry import persona_factory
    from byourside_server.server import print_err
    from byourside_server.telephony.sip import INSTALL_HINT
    from byourside_server.telephony.simulator.over_sip import SipSimulator
    from byourside_server.telephony.simulator.scenarios import ScenarioError, load_scenarios
    from byourside_server.voice.pipeline import VoiceConfig, check_voice_installed, local_voice

    try:
        check_voice_installed()
    except ImportError as exc:
        raise CliError(f"{exc}. Install: {INSTALL_HINT}") from None
    try:
        book = load_scenarios(settings.sim_scenarios_file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    tls = None
    if args.transport == "tls":
        from byourside_server.telephony.sip.transport import server_tls_context

        if not args.tls_cert:
            raise CliError("--transport tls needs --tls-cert (a PEM certificate, with its key or --tls-key)")
        try:
            tls = server_tls_context(args.tls_cert, args.tls_key)
        except OSError as exc:  # also ssl.SSLError
            raise CliError(f"Cannot load the TLS certificate: {exc}") from None
    voice = local_voice(VoiceConfig(), settings.data_dir)
    print_err("Loading the speech models...")
    await voice.load()
    try:
        simulator = await SipSimulator(book, voice, host=args.bind, port=args.sip_port,
                                       persona_factory=persona_factory(settings), transport=args.transport,
                                       tls=tls).start()
    except OSError as exc:
        raise CliError(f"Cannot listen on {args.bind}:{args.sip_port} ({exc.strerror}). "
                       "Pick another port with --sip-port.") from None
    host = "127.0.0.1" if args.bind in ("0.0.0.0", "") else args.bind
    uri = simulator.uri.replace(f"sip:{args.bind}:", f"sip:{host}:", 1)
    ca = f" BYS_SIP_TLS_CA_FILE={args.tls_cert}" if tls is not None else ""
    print_err(f"SIP simulator listening on {args.transport} {args.bind}:{simulator.port}. Point the server at it:")
    print_err(f"  BYS_TELEPHONY=sip BYS_SIP_TRUNK_URI='{uri}'{ca} byourside serve")
    if tls is not None:
        print_err("  (BYS_SIP_TLS_CA_FILE: the certificate itself when self-signed, else the CA that signed it)")
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.aclose()
    return 0


async def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.evals.runner import run_cli

    return await run_cli(settings, args)


# call / demo (clients of the HTTP API through the Python SDK)


def cmd_call(args: argparse.Namespace) -> int:
    from byourside_server.client_cli import place_and_follow

    return place_and_follow(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from byourside_server.demo import run_demo

    return run_demo(args)


def cmd_mcp(args: argparse.Namespace) -> int:
    from byourside_server.mcp.stdio import run_stdio

    return run_stdio()


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
    lim.add_argument("--calls-per-minute", type=int)
    lim.add_argument("--max-concurrent", type=int)
    lim.add_argument("--monthly-minutes", type=int)
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
    na = n.add_parser("add")
    na.add_argument("--account", required=True)
    na.add_argument("number")
    na.add_argument("--default", action="store_true")
    n.add_parser("list").add_argument("--account", required=True)
    nd = n.add_parser("default")
    nd.add_argument("--account", required=True)
    nd.add_argument("number")
    p.set_defaults(async_fn=cmd_numbers)

    p = sub.add_parser("call", help="place a call through the API (BYS_BASE_URL, BYS_API_KEY)")
    p.add_argument("to")
    p.add_argument("objective")
    p.add_argument("--context")
    p.add_argument("--field", action="append", default=[], metavar="NAME[:TYPE[:DESCRIPTION]]")
    p.add_argument("--caller-id")
    p.add_argument("--wait", action="store_true", help="stream status changes and print the finished call")
    p.add_argument("--timeout", type=float, default=900)
    p.set_defaults(sync_fn=cmd_call)

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
    p.set_defaults(sync_fn=cmd_demo)

    from byourside_server.webhooks.commands import add_webhooks_parser

    add_webhooks_parser(sub)  # byourside webhooks secret show|rotate, webhooks listen

    p = sub.add_parser("mcp", help="run the MCP server over stdio (BYS_API_KEY, BYS_BASE_URL)")
    p.set_defaults(sync_fn=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "sync_fn"):
            return args.sync_fn(args)
        return _run(args.async_fn, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
