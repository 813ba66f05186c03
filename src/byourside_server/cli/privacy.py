"""``byourside accounts show | display-name | consent | retention``: what callees hear (the display
name, the AI disclosure, the recording notice), whether calls are recorded, and how long
recordings and transcripts are kept (compliance/consent.py, compliance/retention.py)."""

from __future__ import annotations

import argparse
from typing import Any

from byourside_server.cli.common import CliError, find_account
from byourside_server.settings import Settings

PRIVACY_ACTIONS = ("show", "display-name", "consent", "retention")
DEFAULT = "default"


def add_privacy_actions(actions: Any) -> None:
    """The subcommands, under ``byourside accounts``."""
    actions.add_parser("show", help="an account's limits, name, consent and retention settings").add_argument("name")
    p = actions.add_parser("display-name", help="the name callees hear the call is for (default: the account name)")
    p.add_argument("name")
    p.add_argument("display_name", nargs="?", metavar="DISPLAY_NAME", help="e.g. 'Acme Dental'")
    p.add_argument("--reset", action="store_true", help="back to the account name")
    p = actions.add_parser("consent", help="recording, the recording notice and the AI disclosure wording")
    p.add_argument("name")
    record = p.add_mutually_exclusive_group()
    record.add_argument("--record", dest="record", action="store_const", const=True, help="keep call recordings")
    record.add_argument("--no-record", dest="record", action="store_const", const=False,
                        help="keep no recording (recordingUrl is null)")
    record.add_argument("--record-default", dest="record", action="store_const", const=DEFAULT,
                        help="back to BYS_RECORD_CALLS")
    p.add_argument("--recording-notice", choices=("required", "always", DEFAULT),
                   help="say the call is recorded only where the callee's place requires it, or always")
    disclosure = p.add_mutually_exclusive_group()
    disclosure.add_argument("--disclosure", metavar="TEXT",
                            help="the AI disclosure in your words; must say it is an AI; {name} is the display name")
    disclosure.add_argument("--disclosure-default", action="store_true", help="back to the standard disclosure")
    p = actions.add_parser("retention", help="days recordings and transcripts are kept after a call (0: forever)")
    p.add_argument("name")
    p.add_argument("--recordings", metavar="DAYS", help=f"whole days, 0 to keep forever, or '{DEFAULT}'")
    p.add_argument("--transcripts", metavar="DAYS", help=f"whole days, 0 to keep forever, or '{DEFAULT}'")


def _days(raw: str) -> int | None:
    from byourside_server.compliance.consent import (
        ConsentSettingError,
        check_retention_days,
    )

    if raw == DEFAULT:
        return None
    try:
        return check_retention_days(int(raw) if raw.strip().isdigit() else raw)
    except ConsentSettingError as exc:
        raise CliError(str(exc)) from None


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    from byourside_server.compliance.consent import (
        ConsentSettingError,
        check_disclosure,
        check_display_name,
    )

    changes: dict[str, Any] = {}
    try:
        if args.action == "display-name":
            if args.reset:
                changes["display_name"] = None
            elif args.display_name is not None:
                changes["display_name"] = check_display_name(args.display_name)
        elif args.action == "consent":
            if args.record is not None:
                changes["record_calls"] = None if args.record == DEFAULT else args.record
            if args.recording_notice is not None:
                changes["recording_notice"] = None if args.recording_notice == DEFAULT else args.recording_notice
            if args.disclosure_default:
                changes["ai_disclosure"] = None
            elif args.disclosure is not None:
                changes["ai_disclosure"] = check_disclosure(args.disclosure)
        elif args.action == "retention":
            if args.recordings is not None:
                changes["recording_retention_days"] = _days(args.recordings)
            if args.transcripts is not None:
                changes["transcript_retention_days"] = _days(args.transcripts)
    except ConsentSettingError as exc:
        raise CliError(str(exc)) from None
    return changes


def describe(account: Any, settings: Settings) -> list[str]:
    """The account's settings as lines for a person, each saying whether it is the server's default."""
    from byourside_server.agent import phrases as say

    def days(value: int | None, default: int) -> str:
        shown = default if value is None else value
        return ("kept forever" if shown == 0 else f"{shown} days") + (" (server default)" if value is None else "")

    record = settings.record_calls if account.record_calls is None else account.record_calls
    notice = account.recording_notice or settings.recording_notice
    return [
        (f"{account.name}: {account.calls_per_minute} calls/min, {account.max_concurrent_calls} concurrent, "
         f"{account.monthly_minutes} min/month"),
        f"  display name:      {account.spoken_name}" + ("" if account.display_name else " (the account name)"),
        f"  AI disclosure:     {account.ai_disclosure or say.AI_DISCLOSURE}"
        + ("" if account.ai_disclosure else " (standard)"),
        f"  recording:         {'on' if record else 'off'}" + (" (server default)" if account.record_calls is None else ""),
        f"  recording notice:  {notice}" + (" (server default)" if account.recording_notice is None else ""),
        f"  recordings:        {days(account.recording_retention_days, settings.recording_retention_days)}",
        f"  transcripts:       {days(account.transcript_retention_days, settings.transcript_retention_days)}",
    ]


async def privacy_command(services: Any, settings: Settings, args: argparse.Namespace) -> int:
    account = await find_account(services, args.name)
    if args.action == "display-name" and args.display_name is None and not args.reset:
        print(account.spoken_name)
        return 0
    changes = _changes(args)
    if changes:
        await services.accounts.set_privacy(account.id, **changes)
        account = await services.accounts.get(account.id)
    print("\n".join(describe(account, settings)))
    return 0
