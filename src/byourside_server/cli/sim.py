"""Commands that run the simulator and the brains without the API: ``sip-sim`` and ``eval``."""

from __future__ import annotations

import argparse
import asyncio

from byourside_server.cli.common import CliError
from byourside_server.settings import Settings


async def cmd_sip_sim(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.runtime.registry import persona_factory
    from byourside_server.server import print_err
    from byourside_server.telephony.sip import INSTALL_HINT
    from byourside_server.telephony.simulator.over_sip import SipSimulator
    from byourside_server.telephony.simulator.scenarios import ScenarioError, load_scenarios
    from byourside_server.voice.pipeline import check_voice_installed, local_voice

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
    voice = local_voice(settings.voice, settings.data_dir)
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
