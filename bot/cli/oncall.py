"""`python -m bot oncall ...`: the after-hours on-call roster, in the clinic's time zone."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.cli.common import CliError, with_session
from bot.core.models import Counselor, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


def _clinic_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


async def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.risk import oncall

    zone = settings.timezone

    async def work(session: AsyncSession) -> int:
        try:
            starts = oncall.local_datetime(args.start, zone)
            ends = oncall.local_datetime(args.end, zone)
            shift = await oncall.add_shift(session, args.counselor, starts, ends)
        except ValueError as error:
            raise CliError(str(error)) from None
        counselor = await session.get(Counselor, args.counselor)
        if counselor is not None and counselor.chat_id is None:
            print(
                f"warning: counselor {args.counselor} has not linked Telegram yet, so cannot be paged; "
                f"send them `python -m bot invite counselor --counselor {args.counselor}`",
                file=sys.stderr,
            )
        audit.record(
            session,
            "oncall.shift_added",
            actor_type="cli",
            subject_type="counselor",
            subject_id=args.counselor,
            shift_id=shift.id,
        )
        print(
            f"on call: counselor {args.counselor}, {_clinic_time(starts, zone)} to {_clinic_time(ends, zone)}"
        )
        print(shift.id)
        return 0

    return await with_session(settings, work)


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.risk import oncall

    zone = settings.timezone

    async def work(session: AsyncSession) -> int:
        print(f"office hours: {settings.office_hours} ({settings.default_timezone})", file=sys.stderr)
        for shift, counselor in await oncall.shifts_from(session, utcnow()):
            linked = "linked" if counselor.chat_id else "NOT LINKED"
            print(
                f"{shift.id}\t{_clinic_time(shift.starts_at, zone)}\t{_clinic_time(shift.ends_at, zone)}"
                f"\t{counselor.id}\t{linked}\t{counselor.name}"
            )
        return 0

    return await with_session(settings, work)


async def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.risk import oncall

    async def work(session: AsyncSession) -> int:
        try:
            await oncall.remove_shift(session, args.shift)
        except ValueError as error:
            raise CliError(str(error)) from None
        audit.record(session, "oncall.shift_removed", actor_type="cli", shift_id=args.shift)
        print(f"removed on-call shift {args.shift}", file=sys.stderr)
        return 0

    return await with_session(settings, work)


def add_parsers(commands: Any) -> None:
    """Add `oncall` (`commands` is the top-level subparsers object)."""
    on_call = commands.add_parser(
        "oncall",
        help="the on-call roster (nights, weekends, OFFICE_CLOSED_DAYS)",
        description=(
            "Who gets imminent alerts while their shift lasts (outside OFFICE_HOURS, on OFFICE_CLOSED_DAYS, "
            "or any time), besides the patient's own care team. Times are in the clinic's time zone."
        ),
    )
    oncall_commands = on_call.add_subparsers(dest="oncall_command", required=True, metavar="ACTION")
    shift_set = oncall_commands.add_parser(
        "set",
        help="put a counselor on call for a span of time (prints the shift id on the last line)",
        description="Put a counselor on call from START to END (clinic time, e.g. 2026-11-24 18:00).",
    )
    shift_set.add_argument("--counselor", type=int, required=True, metavar="ID", help="the counselor's id")
    shift_set.add_argument(
        "--from", dest="start", required=True, metavar="START", help="e.g. 2026-11-24 18:00"
    )
    shift_set.add_argument("--until", dest="end", required=True, metavar="END", help="e.g. 2026-11-25 08:00")
    shift_set.set_defaults(handler=cmd_set)
    shift_list = oncall_commands.add_parser(
        "list",
        help="list current and future shifts",
        description="List on-call shifts not yet over: id, start, end, counselor id, Telegram link, name.",
    )
    shift_list.set_defaults(handler=cmd_list)
    shift_remove = oncall_commands.add_parser(
        "remove", help="remove a shift", description="Remove an on-call shift by its id."
    )
    shift_remove.add_argument("shift", type=int, metavar="SHIFT_ID")
    shift_remove.set_defaults(handler=cmd_remove)
