"""`python -m bot counselor ...`, `invite ...` and `assign`: the care team, invites, and who is whose."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.cli.common import CliError, patient_by_alias, with_session
from bot.core.models import Counselor, CounselorRole, InviteKind, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


async def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    from bot.workspace import reassignment

    async def work(session: AsyncSession) -> int:
        patient = await patient_by_alias(session, args.alias)
        counselor = await session.get(Counselor, args.counselor)
        if counselor is None:
            raise CliError(f"no counselor {args.counselor} (see `python -m bot counselor list`)")
        try:
            moved = await reassignment.assign_primary(session, patient, counselor, utcnow())
        except ValueError as error:
            raise CliError(str(error)) from None
        print(
            f"{patient.alias}: primary counselor is now {counselor.id}"
            + (f" (was {', '.join(map(str, moved.previous))})" if moved.previous else "")
            + f"; {moved.escalations} open escalations paged to the care team again",
            file=sys.stderr,
        )
        return 0

    return await with_session(settings, work)


async def cmd_counselor_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit
    from bot.core.people import add_counselor

    async def work(session: AsyncSession) -> int:
        try:
            counselor = await add_counselor(
                session,
                name=args.name,
                role=CounselorRole(args.role),
                timezone=args.timezone or settings.default_timezone,
            )
        except ValueError as error:
            raise CliError(str(error)) from None
        audit.record(
            session, "counselor.added", actor_type="cli", subject_type="counselor", subject_id=counselor.id
        )
        print(
            f"added {counselor.role.value} {counselor.id}; link their Telegram account with "
            f"`python -m bot invite counselor --counselor {counselor.id}`",
            file=sys.stderr,
        )
        print(counselor.id)
        return 0

    return await with_session(settings, work)


async def cmd_counselor_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        rows = await session.scalars(select(Counselor).order_by(Counselor.id))
        for counselor in rows:
            linked = "linked" if counselor.telegram_user_id else "not linked"
            state = "active" if counselor.active else "inactive"
            print(f"{counselor.id}\t{counselor.role.value}\t{state}\t{linked}\t{counselor.name}")
        return 0

    return await with_session(settings, work)


async def _deep_link_name(settings: Settings) -> str | None:
    if settings.bot_username:
        return settings.bot_username
    if settings.bot_token is None:
        return None
    import httpx

    url = f"{settings.telegram_api_base_url}/bot{settings.bot_token.get_secret_value()}/getMe"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = (await client.get(url)).json()
        return str(answer["result"]["username"]) if answer.get("ok") else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    from bot.enrollment.invites import EnrollmentError, issue_invite

    kind = InviteKind(args.kind)
    language = getattr(args, "lang", None)
    if language is not None:
        from bot.content.catalog import language_dirs

        languages = [d.name for d in language_dirs(settings.content_dir)]
        if language not in languages:
            raise CliError(
                f"no texts in {language!r}: use {' or '.join(languages) or 'a language in content/'}"
            )

    async def work(session: AsyncSession) -> int:
        try:
            issued = await issue_invite(
                session,
                kind=kind,
                counselor_id=args.counselor,
                ttl=timedelta(hours=args.ttl_hours or settings.invite_ttl_hours),
                alias=getattr(args, "alias", None),
                language=language,
            )
        except EnrollmentError as error:
            raise CliError(str(error)) from None
        print(issued.code)
        sys.stdout.flush()
        name = await _deep_link_name(settings)
        expires = issued.invite.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        if name:
            print(f"https://t.me/{name}?start={issued.code}  (one use, expires {expires})", file=sys.stderr)
        else:
            print(
                f"send /start {issued.code} to the bot (one use, expires {expires}); "
                "set BOT_USERNAME to print a t.me link",
                file=sys.stderr,
            )
        return 0

    return await with_session(settings, work)


async def cmd_invite_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from bot.enrollment.invites import revoke

    async def work(session: AsyncSession) -> int:
        count = await revoke(session, code=args.code, counselor_id=args.counselor)
        if not count:
            raise CliError(
                "no open invite with that code"
                if args.code is not None
                else f"no open invite to link counselor {args.counselor}"
            )
        print(f"revoked {count} invite{'s' if count != 1 else ''}", file=sys.stderr)
        return 0

    return await with_session(settings, work)


def add_counselor_parser(commands: Any) -> None:
    """Add `counselor` (`commands` is the top-level subparsers object)."""
    counselor = commands.add_parser(
        "counselor", help="manage counselors", description="Add and list counselors."
    )
    counselor_commands = counselor.add_subparsers(dest="counselor_command", required=True, metavar="ACTION")
    add = counselor_commands.add_parser(
        "add",
        help="add a counselor (prints the new id on the last line)",
        description="Add a counselor. Prints the new counselor's id alone on the last line of stdout.",
    )
    add.add_argument("--name", required=True, help="the counselor's name, as colleagues know it")
    add.add_argument(
        "--role", choices=[r.value for r in CounselorRole], default=CounselorRole.COUNSELOR.value
    )
    add.add_argument("--timezone", help="IANA time zone (default: DEFAULT_TIMEZONE)")
    add.set_defaults(handler=cmd_counselor_add)
    listing = counselor_commands.add_parser(
        "list", help="list counselors", description="List counselors: id, role, state, Telegram link, name."
    )
    listing.set_defaults(handler=cmd_counselor_list)


def add_invite_parser(commands: Any) -> None:
    """Add `invite` (`commands` is the top-level subparsers object)."""
    invite = commands.add_parser(
        "invite",
        help="create one-time invite codes, or revoke one",
        description="Create a one-time, expiring invite. The code is printed alone on the last "
        "line of stdout; the t.me deep link follows on stderr. `invite revoke` makes an unused one "
        "stop working.",
    )
    invite_kinds = invite.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, text in (("counselor", "link a counselor's Telegram account"), ("patient", "enroll a patient")):
        sub = invite_kinds.add_parser(kind, help=text, description=f"Create an invite to {text}.")
        who = "the counselor to link" if kind == "counselor" else "the patient's primary counselor"
        sub.add_argument("--counselor", type=int, required=True, metavar="ID", help=f"id of {who}")
        sub.add_argument(
            "--ttl-hours", type=int, help="hours until the invite expires (default: INVITE_TTL_HOURS, 72)"
        )
        if kind == "patient":
            sub.add_argument("--alias", help="the name the care team sees (default: a generated P-12345)")
            sub.add_argument(
                "--lang", help="the patient's language, en or es (default: from their Telegram app)"
            )
        sub.set_defaults(handler=cmd_invite)
    revoking = invite_kinds.add_parser(
        "revoke",
        help="make an unused invite stop working",
        description="Make an unused invite stop working (a code that was lost or went to the wrong person): "
        "the one with CODE, or every open invite to link counselor ID. Audited.",
    )
    which = revoking.add_mutually_exclusive_group(required=True)
    which.add_argument("code", nargs="?", help="the invite code (as printed by `invite`, or after ?start=)")
    which.add_argument("--counselor", type=int, metavar="ID", help="every open invite to link this counselor")
    revoking.set_defaults(handler=cmd_invite_revoke)


def add_assign_parser(commands: Any) -> None:
    """Add `assign` (`commands` is the top-level subparsers object)."""
    assign = commands.add_parser(
        "assign",
        help="give a patient a new primary counselor (open escalations follow)",
        description="Make COUNSELOR the patient's primary counselor. The previous primary leaves the care "
        "team; open escalations nobody has acknowledged are paged again at once, to the new care team.",
    )
    assign.add_argument("alias", help="the patient's alias")
    assign.add_argument("counselor", type=int, help="the counselor's id")
    assign.set_defaults(handler=cmd_assign)
