"""`python -m bot schedule ...`: the program schedule (groups, sessions, calendar import).

Times on the command line are wall-clock times in the clinic's time zone (DEFAULT_TIMEZONE) unless
`--timezone` says otherwise; patients are named by alias (never by name). The schedule's rules (and
icalendar) are imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from bot.cli.common import patient_by_alias, with_session
from bot.core.models import GroupMember, PatientGroup, ProgramSession, SessionKind, utcnow
from bot.core.names import did_you_mean

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings

MAX_ICS_BYTES = 5_000_000


def _zone(name: str) -> str:
    from bot.schedule import rules

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise rules.ScheduleError(f"{name!r} is not an IANA time zone such as America/Chicago") from None
    return name


def _local_time(text: str) -> datetime:
    from bot.schedule import rules

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise rules.ScheduleError(f"{text!r} is not a date and time like 2026-11-30 18:00") from None
    if moment.tzinfo is not None:
        raise rules.ScheduleError("give the clinic's wall-clock time without an offset (use --timezone)")
    return moment


async def _group(session: AsyncSession, name: str, *, create: bool = False) -> PatientGroup:
    """The group of that name, whatever its case; with `create`, a new one (said on stderr, with the
    existing group probably meant: "evening iop" is "Evening IOP", "evening iop 2" may be a typo)."""
    from bot.schedule import rules

    known = list(await session.scalars(select(PatientGroup.name)))
    try:
        return await rules.group_named(session, name)
    except rules.ScheduleError:
        if not create:
            raise rules.ScheduleError(
                f"no group named {' '.join(name.split())!r}{did_you_mean(name, known)} "
                "(`schedule groups` lists them)"
            ) from None
    group = await rules.group_named(session, name, create=True)
    print(f"new group {group.name!r}{did_you_mean(name, known)}", file=sys.stderr)
    return group


def _clinic(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


async def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.schedule import rules

    async def work(session: AsyncSession) -> int:
        zone = _zone(args.timezone or settings.default_timezone)
        group = await _group(session, args.group, create=True) if args.group else None
        patient = await patient_by_alias(session, args.patient) if args.patient else None
        added = await rules.add_session(
            session,
            title=args.title,
            kind=SessionKind(args.kind),
            starts_local=_local_time(args.start),
            timezone=zone,
            duration=timedelta(minutes=args.minutes),
            rrule=args.rrule,
            group=group,
            patient=patient,
            location=args.location,
            url=args.url,
            counselor_id=args.counselor,
        )
        audit.record(session, "schedule.session_added", actor_type="cli", session_id=added.id)
        upcoming = rules.expand([added], utcnow(), utcnow() + timedelta(days=14))
        first = _clinic(upcoming[0].occurrence.start, zone) if upcoming else "none in the next 14 days"
        print(f"added session {added.id}; next: {first}", file=sys.stderr)
        print(added.id)
        return 0

    return await with_session(settings, work)


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.schedule import rules

    async def work(session: AsyncSession) -> int:
        now = utcnow()
        query = select(ProgramSession).where(ProgramSession.active.is_(True)).order_by(ProgramSession.id)
        if args.group:
            query = query.where(ProgramSession.group_id == (await _group(session, args.group)).id)
        program_sessions = list(await session.scalars(query))
        if args.patient:
            patient = await patient_by_alias(session, args.patient)
            program_sessions = await rules.sessions_of(session, patient.id)
        groups = {g.id: g.name for g in await session.scalars(select(PatientGroup))}
        for program_session in program_sessions:
            who = (
                f"group {groups.get(program_session.group_id or 0, '?')}"
                if program_session.group_id
                else f"patient {program_session.patient_id}"
            )
            rule = program_session.rrule or "once"
            print(
                f"{program_session.id}\t{program_session.kind.value}\t{program_session.title}\t{who}\t{rule}"
            )
            for item in rules.expand([program_session], now, now + timedelta(days=args.days)):
                print(f"\t{_clinic(item.occurrence.start, program_session.timezone)}\t{item.title}")
        return 0

    return await with_session(settings, work)


def _read_calendar(path: Path) -> bytes:
    from bot.schedule import rules

    try:
        if path.stat().st_size > MAX_ICS_BYTES:
            raise rules.ScheduleError(f"{path} is over {MAX_ICS_BYTES // 1_000_000} MB; is it a calendar?")
        return path.read_bytes()
    except OSError as error:
        raise rules.ScheduleError(f"cannot read {path}: {error.strerror}") from None


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.schedule import rules
    from bot.schedule.ical_import import parse_calendar

    path = Path(args.file)
    data = _read_calendar(path)
    events = parse_calendar(data, _zone(args.timezone or settings.default_timezone))

    async def work(session: AsyncSession) -> int:
        group = await _group(session, args.group, create=True)
        result = await rules.import_events(session, events, group)
        audit.record(
            session,
            "schedule.imported",
            actor_type="cli",
            group_id=group.id,
            created=result.created,
            updated=result.updated,
        )
        print(
            f"{path.name}: {len(events)} events for group {group.name!r}: "
            f"{result.created} new, {result.updated} updated, "
            f"{len(events) - result.created - result.updated} unchanged, "
            f"{result.removed} removed (not in the file)"
        )
        return 0

    return await with_session(settings, work)


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.schedule import rules

    async def work(session: AsyncSession) -> int:
        program_session = await session.get(ProgramSession, args.session)
        if program_session is None or not program_session.active:
            raise rules.ScheduleError(f"no session {args.session} (`schedule list` shows them)")
        if args.on:
            when = _local_time(args.on)
            await rules.cancel_occurrence(session, program_session, when)
            print(f"cancelled session {program_session.id} on {args.on}", file=sys.stderr)
        else:
            await rules.remove_session(session, program_session)
            print(f"removed session {program_session.id} and its future reminders", file=sys.stderr)
        audit.record(session, "schedule.cancelled", actor_type="cli", session_id=program_session.id)
        return 0

    return await with_session(settings, work)


async def cmd_join(args: argparse.Namespace, settings: Settings) -> int:
    from bot.schedule import rules

    async def work(session: AsyncSession) -> int:
        group = await _group(session, args.group, create=not args.leave)
        for alias in args.aliases:
            patient = await patient_by_alias(session, alias)
            if args.leave:
                changed = await rules.leave_group(session, group, patient)
            else:
                changed = await rules.join_group(session, group, patient)
            verb = "left" if args.leave else "joined"
            print(f"{patient.alias} {verb if changed else 'unchanged'}: {group.name}", file=sys.stderr)
        return 0

    return await with_session(settings, work)


async def cmd_groups(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        rows = await session.execute(
            select(PatientGroup.id, PatientGroup.name, func.count(GroupMember.id))
            .outerjoin(GroupMember, GroupMember.group_id == PatientGroup.id)
            .group_by(PatientGroup.id, PatientGroup.name)
            .order_by(PatientGroup.name)
        )
        for group_id, name, count in rows.all():
            print(f"{group_id}\t{name}\t{count} patients")
        return 0

    return await with_session(settings, work)


def add_parsers(commands: Any) -> None:
    """Add `schedule` (`commands` is the top-level subparsers object)."""
    schedule = commands.add_parser(
        "schedule",
        help="the program schedule: groups, sessions, calendar import",
        description="Treatment sessions and groups, in the clinic's wall-clock time (DEFAULT_TIMEZONE).",
    )
    actions = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a session, one-off or recurring (prints its id on the last line)",
        description="Add a session for a group (created if new) or for one patient.",
    )
    add.add_argument("--title", required=True)
    add.add_argument("--kind", choices=[k.value for k in SessionKind], default=SessionKind.GROUP.value)
    add.add_argument("--start", required=True, metavar="START", help="first session, e.g. 2026-11-30 18:00")
    add.add_argument("--minutes", type=int, default=60, help="how long it lasts (default 60)")
    add.add_argument("--rrule", help='RFC 5545 rule, e.g. "FREQ=WEEKLY;BYDAY=MO,WE,TH;COUNT=36"')
    whom = add.add_mutually_exclusive_group(required=True)
    whom.add_argument("--group", metavar="NAME")
    whom.add_argument("--patient", metavar="ALIAS")
    add.add_argument("--location")
    add.add_argument("--url", help="telehealth link")
    add.add_argument("--counselor", type=int, metavar="ID", help="the counselor who runs it")
    add.add_argument("--timezone", metavar="ZONE", help="if not DEFAULT_TIMEZONE")
    add.set_defaults(handler=cmd_add)

    listing = actions.add_parser(
        "list", help="list sessions and their next occurrences", description="List active sessions."
    )
    listing.add_argument("--days", type=int, default=7, help="occurrences shown per session (default 7 days)")
    scope = listing.add_mutually_exclusive_group()
    scope.add_argument("--group", metavar="NAME")
    scope.add_argument("--patient", metavar="ALIAS")
    listing.set_defaults(handler=cmd_list)

    ics = actions.add_parser(
        "import",
        help="import an iCalendar (.ics) file for a group",
        description=(
            "Import the events of an .ics file (Google, Outlook, Apple) as sessions of a group. Importing "
            "the file again updates the same sessions (matched by UID); all-day events are skipped."
        ),
    )
    ics.add_argument("file", metavar="FILE.ics")
    ics.add_argument("--group", required=True, metavar="NAME")
    ics.add_argument("--timezone", metavar="ZONE", help="for times without one (default DEFAULT_TIMEZONE)")
    ics.set_defaults(handler=cmd_import)

    cancel = actions.add_parser(
        "cancel",
        help="remove a session, or cancel one occurrence with --on",
        description="Remove a session (or one occurrence of it) and its reminders not yet sent.",
    )
    cancel.add_argument("session", type=int, metavar="SESSION_ID")
    cancel.add_argument("--on", metavar="START", help="the occurrence's start, e.g. 2026-11-26 18:00")
    cancel.set_defaults(handler=cmd_cancel)

    join = actions.add_parser(
        "join", help="add patients to a group", description="Add patients (by alias) to a group."
    )
    join.add_argument("--group", required=True, metavar="NAME")
    join.add_argument("aliases", nargs="+", metavar="ALIAS")
    join.set_defaults(handler=cmd_join, leave=False)

    leave = actions.add_parser(
        "leave", help="take patients out of a group", description="Take patients (by alias) out of a group."
    )
    leave.add_argument("--group", required=True, metavar="NAME")
    leave.add_argument("aliases", nargs="+", metavar="ALIAS")
    leave.set_defaults(handler=cmd_join, leave=True)

    groups = actions.add_parser("groups", help="list groups", description="List groups and their sizes.")
    groups.set_defaults(handler=cmd_groups)
