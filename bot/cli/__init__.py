"""`python -m bot ...`: run the bot, the demo, migrations, and the clinic's admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.cli import records as records_cli
from bot.cli import schedule as schedule_cli
from bot.content import ContentError
from bot.content.modules import load_modules
from bot.content_check.check import check_content
from bot.core import audit, db, key_rotation, logs
from bot.core.config import ConfigError, Settings, exit_on_config_error, load_settings
from bot.core.models import Counselor, CounselorRole, InviteKind, Patient, utcnow
from bot.core.people import add_counselor
from bot.enrollment.invites import EnrollmentError, issue_invite
from bot.risk import oncall
from bot.risk.classifier import EXAMPLES_FILE, MODEL_FILE, load_examples
from bot.risk.detector import Detector
from bot.risk.evaluate import EvalFileError, evaluate, read_labelled
from bot.risk.levels import RiskLevel
from bot.risk.lexicon import load_lexicon
from bot.risk.training import THRESHOLD, TrainingUnavailable, train
from bot.webhook import WebhookError
from bot.workspace import reassignment

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CliError(Exception):
    """A mistake the user can fix; printed as one line, exit status 1."""


# ---- run ---------------------------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import serve
    from bot.runtime import Runtime

    settings.require_token()
    if args.webhook:
        settings.require_webhook()
    runtime = Runtime.create(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(runtime, stop, webhook=args.webhook)
    finally:
        await runtime.engine.dispose()
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from devtools.demo import run_demo
    except ImportError:
        raise CliError("the demo runs from a source checkout: `make demo` in the repository") from None

    return await run_demo(settings, database_path=Path(args.database))


# ---- db ----------------------------------------------------------------------------------------------------


@asynccontextmanager
async def _engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    engine = db.make_engine(settings.database_url, encryption_key=key)
    try:
        yield engine
    finally:
        await engine.dispose()


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async with _engine(settings) as engine:
        await db.upgrade(engine, args.revision)
        print(f"database at migration {await db.current_revision(engine)}")
    return 0


async def cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    async with _engine(settings) as engine:
        await db.downgrade(engine, args.revision)
        print(f"database at migration {await db.current_revision(engine) or 'base (empty)'}")
    return 0


async def cmd_db_revision(args: argparse.Namespace, settings: Settings) -> int:
    async with _engine(settings) as engine:
        await db.ensure_current(engine)
        await db.autogenerate(engine, args.message)
    return 0


async def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    async with _engine(settings) as engine:
        current = await db.current_revision(engine)
        print(current or "none (run `python -m bot db upgrade`)")
        try:
            await db.ensure_current(engine)
        except db.SchemaNotCurrent as error:
            print(str(error), file=sys.stderr)
            return 1
    return 0


# ---- counselors and invites -----------------------------------------------------------------------------


async def _with_session(settings: Settings, work: Callable[..., Awaitable[int]]) -> int:
    async with _engine(settings) as engine:
        await db.ensure_current(engine)
        async with db.transaction(db.make_sessionmaker(engine)) as session:
            return await work(session)


async def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        patient = await session.scalar(select(Patient).where(Patient.alias == args.alias))
        counselor = await session.get(Counselor, args.counselor)
        if patient is None:
            raise CliError(f"no patient with alias {args.alias!r}")
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

    return await _with_session(settings, work)


async def cmd_counselor_add(args: argparse.Namespace, settings: Settings) -> int:
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

    return await _with_session(settings, work)


async def cmd_counselor_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        rows = await session.scalars(select(Counselor).order_by(Counselor.id))
        for counselor in rows:
            linked = "linked" if counselor.telegram_user_id else "not linked"
            state = "active" if counselor.active else "inactive"
            print(f"{counselor.id}\t{counselor.role.value}\t{state}\t{linked}\t{counselor.name}")
        return 0

    return await _with_session(settings, work)


async def cmd_oncall_set(args: argparse.Namespace, settings: Settings) -> int:
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

    return await _with_session(settings, work)


async def cmd_oncall_list(args: argparse.Namespace, settings: Settings) -> int:
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

    return await _with_session(settings, work)


async def cmd_oncall_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        try:
            await oncall.remove_shift(session, args.shift)
        except ValueError as error:
            raise CliError(str(error)) from None
        audit.record(session, "oncall.shift_removed", actor_type="cli", shift_id=args.shift)
        print(f"removed on-call shift {args.shift}", file=sys.stderr)
        return 0

    return await _with_session(settings, work)


def _clinic_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


async def _deep_link_name(settings: Settings) -> str | None:
    if settings.bot_username:
        return settings.bot_username
    if settings.bot_token is None:
        return None
    url = f"{settings.telegram_api_base_url}/bot{settings.bot_token.get_secret_value()}/getMe"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = (await client.get(url)).json()
        return str(answer["result"]["username"]) if answer.get("ok") else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    kind = InviteKind(args.kind)

    async def work(session: AsyncSession) -> int:
        try:
            issued = await issue_invite(
                session,
                kind=kind,
                counselor_id=args.counselor,
                ttl=timedelta(hours=args.ttl_hours or settings.invite_ttl_hours),
                alias=getattr(args, "alias", None),
                language=getattr(args, "lang", None),
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

    return await _with_session(settings, work)


async def cmd_content_check(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(args.directory) if args.directory else settings.content_dir
    report = check_content(root)
    for line in report.errors:
        print(line)
    for line in report.warnings:
        print(f"warning: {line}")
    modules = len(report.modules.ids()) if report.modules else 0
    texts = len(report.catalog.keys()) if report.catalog else 0
    verdict = "FAILED" if report.errors else "ok"
    print(
        f"content check {verdict}: {texts} texts, {modules} modules, "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings ({root})"
    )
    return 1 if report.errors else 0


async def cmd_content_preview(args: argparse.Namespace, settings: Settings) -> int:
    problems: list[str] = []
    library = load_modules(settings.content_dir, problems)
    module = library.get(args.module, args.lang)
    if module is None:
        known = ", ".join(library.ids()) or "none"
        raise CliError(
            f"no module {args.module!r} (known: {known})" + (f"; {problems[0]}" if problems else "")
        )
    print(f"{module.title}  ({module.category.value}, about {module.minutes} min)")
    print(module.summary)
    for number, step in enumerate(module.steps, start=1):
        print(f"\n[{number}/{len(module.steps)}]")
        print(step.text)
        if step.pause and number < len(module.steps):
            print(f"   (the next step comes after {step.pause} s, or when the patient taps Next)")
    return 0


def _probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 < number < 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a probability between 0 and 1")
    return number


def _detector(args: argparse.Namespace, settings: Settings) -> Detector:
    root = Path(args.content) if args.content else settings.content_dir
    report = check_content(root)
    if report.risk is None:
        raise CliError("the content does not pass `content check`:\n" + "\n".join(report.errors))
    return report.risk


async def cmd_risk_check(args: argparse.Namespace, settings: Settings) -> int:
    detector = _detector(args, settings)
    if args.file in (None, "-"):
        lines: Any = sys.stdin
    else:
        try:
            lines = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
            lines = lines.splitlines()
        except OSError as error:
            raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    for line in lines:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        result = detector.screen(text)
        record = {
            "text": text,
            "level": result.level.label,
            "categories": [str(c) for c in result.categories],
            "matched": result.matched,
            "follow_up": result.follow_up.value if result.follow_up else None,
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


async def cmd_risk_eval(args: argparse.Namespace, settings: Settings) -> int:
    detector = _detector(args, settings)
    try:
        items = read_labelled(Path(args.file))
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    except EvalFileError as error:
        raise CliError(str(error)) from None
    evaluation = evaluate(detector, items)
    for outcome in evaluation.misses:
        kind = "FALSE ALARM" if outcome.false_alarm else "MISSED, ASKED" if outcome.asked else "MISSED"
        item = outcome.item
        print(
            f"{args.file}:{item.line}: {kind}: labelled {item.level.label}/{item.category}, "
            f"screened {outcome.result.level.label}: {item.text}"
        )
        for description in outcome.result.matched:
            print(f"    {description}")
    summary = evaluation.summary()
    recall = summary["recall"]
    assert isinstance(recall, dict)
    print(
        "recall: "
        + ", ".join(
            f"{level} {'-' if value is None else f'{value:.3f}'} ({summary['counts'][level]})"  # type: ignore[index]
            for level, value in recall.items()
        )
    )
    rate = evaluation.false_alarm_rate
    print(
        f"false alarms on none: {summary['false_alarms']} of {evaluation.count(RiskLevel.NONE)}"
        + ("" if rate is None else f" ({rate:.1%})")
    )
    reached = summary["reached"]
    assert isinstance(reached, dict)
    print(
        "paged or asked: "
        + ", ".join(f"{level} {'-' if value is None else f'{value:.3f}'}" for level, value in reached.items())
    )
    questions = evaluation.question_rate
    if questions is not None:
        print(f"questions on none: {questions:.1%}")
    print(f"median {summary['median_us']} microseconds per message")
    return 0


async def cmd_risk_train(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(args.content) if args.content else settings.content_dir
    problems: list[str] = []
    lexicon = load_lexicon(root, problems)
    examples = load_examples(root, problems)
    if lexicon is None or problems:
        raise CliError("the content does not pass `content check`:\n" + "\n".join(problems))
    if not examples:
        raise CliError(f"no labelled examples in {root}/*/risk/{EXAMPLES_FILE}")
    try:
        model = await asyncio.to_thread(train, examples, lexicon.normalizer, threshold=args.threshold)
    except (TrainingUnavailable, ValueError) as error:
        raise CliError(str(error)) from None
    path = root / MODEL_FILE
    await asyncio.to_thread(path.write_text, model.to_json(), encoding="utf-8")
    print(
        f"wrote {path}: {len(model.weights)} features from {model.examples} examples, "
        f"threshold {model.threshold}"
    )
    print("measure it on messages it has not seen: python -m bot risk eval FILE.tsv")
    return 0


async def cmd_keys_new(args: argparse.Namespace, settings: Settings) -> int:
    print(Fernet.generate_key().decode())
    return 0


async def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_encryption_key()

    async def work(session: AsyncSession) -> int:
        written = await key_rotation.rotate(session)
        audit.record(session, "keys.rotated", actor_type="cli", rows=sum(written.values()))
        for table, count in written.items():
            print(f"{table}: {count} rows")
        print(
            f"re-encrypted {sum(written.values())} rows with the first key of ENCRYPTION_KEY; "
            "the other keys can now be removed",
            file=sys.stderr,
        )
        return 0

    return await _with_session(settings, work)


# ---- parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="IOP Companion: a Telegram companion for patients in an Intensive Outpatient Program.",
        epilog="Settings come from the environment or a .env file: see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the bot (long polling, or --webhook)",
        description="Run the bot. Needs BOT_TOKEN, ENCRYPTION_KEY and a migrated database. Takes updates by "
        "long polling from TELEGRAM_API_BASE_URL, or with --webhook by Telegram posting them to WEBHOOK_URL.",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="serve Telegram's webhook on WEBHOOK_LISTEN:WEBHOOK_PORT (with /healthz, /readyz, /metrics); "
        "needs WEBHOOK_URL and WEBHOOK_SECRET; several such processes may share one PostgreSQL database",
    )
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo",
        help="chat with the bot on this machine, no Telegram needed",
        description="Start a local Telegram stand-in, a fresh demo database and the bot, "
        "and chat as the demo patient (or counselor) from the terminal.",
    )
    demo.add_argument(
        "--database",
        default="demo.sqlite3",
        help="demo database file, recreated each run (default: %(default)s)",
    )
    demo.set_defaults(handler=cmd_demo)

    database = commands.add_parser(
        "db", help="database migrations", description="Database schema migrations (Alembic)."
    )
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser(
        "upgrade",
        help="migrate to the newest schema",
        description="Migrate the database to REVISION (default: the newest).",
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate back",
        description="Migrate the database back to REVISION ('base' empties it).",
    )
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_db_downgrade)
    current = db_commands.add_parser(
        "current",
        help="show the schema revision",
        description="Print the schema revision; exit 1 if it is not the newest.",
    )
    current.set_defaults(handler=cmd_db_current)
    revision = db_commands.add_parser(
        "revision",
        help="write a new migration from the models (developers)",
        description="Compare the models with a database at the newest migration and write the "
        "difference as a new migration file under bot/migrations/versions/.",
    )
    revision.add_argument("--message", "-m", required=True, help="what the migration changes")
    revision.set_defaults(handler=cmd_db_revision)

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

    on_call = commands.add_parser(
        "oncall",
        help="the after-hours on-call roster",
        description=(
            "Who gets imminent alerts outside office hours (OFFICE_HOURS, in DEFAULT_TIMEZONE), besides the "
            "patient's own care team. Times are in the clinic's time zone."
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
    shift_set.set_defaults(handler=cmd_oncall_set)
    shift_list = oncall_commands.add_parser(
        "list",
        help="list current and future shifts",
        description="List on-call shifts not yet over: id, start, end, counselor id, Telegram link, name.",
    )
    shift_list.set_defaults(handler=cmd_oncall_list)
    shift_remove = oncall_commands.add_parser(
        "remove", help="remove a shift", description="Remove an on-call shift by its id."
    )
    shift_remove.add_argument("shift", type=int, metavar="SHIFT_ID")
    shift_remove.set_defaults(handler=cmd_oncall_remove)

    invite = commands.add_parser(
        "invite",
        help="create one-time invite codes",
        description="Create a one-time, expiring invite. The code is printed alone on the last "
        "line of stdout; the t.me deep link follows on stderr.",
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
            sub.add_argument("--lang", help="the patient's language (default: from their Telegram app)")
        sub.set_defaults(handler=cmd_invite)

    content = commands.add_parser(
        "content",
        help="check and preview content/ (for content editors)",
        description="Content editor tools.",
    )
    content_commands = content.add_subparsers(dest="content_command", required=True, metavar="ACTION")
    check = content_commands.add_parser(
        "check",
        help="validate every text and module",
        description="Validate content: YAML, schema, duplicate keys, template syntax, undefined variables, "
        "Telegram's length limits, translations. Problems print as path:line: message; exit 1 on any error.",
    )
    check.add_argument("directory", nargs="?", help="the content folder (default: CONTENT_DIR)")
    check.set_defaults(handler=cmd_content_check)
    preview = content_commands.add_parser(
        "preview",
        help="show a coping module as a patient gets it",
        description="Print a module step by step.",
    )
    preview.add_argument("module", help="the module id, e.g. box_breathing")
    preview.add_argument("--lang", default="en", help="language (default: en)")
    preview.set_defaults(handler=cmd_content_preview)

    assign = commands.add_parser(
        "assign",
        help="give a patient a new primary counselor (open escalations follow)",
        description="Make COUNSELOR the patient's primary counselor. The previous primary leaves the care "
        "team; open escalations nobody has acknowledged are paged again at once, to the new care team.",
    )
    assign.add_argument("alias", help="the patient's alias")
    assign.add_argument("counselor", type=int, help="the counselor's id")
    assign.set_defaults(handler=cmd_assign)

    keys = commands.add_parser("keys", help="encryption keys", description="Encryption key tools.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = key_commands.add_parser(
        "new",
        help="print a new ENCRYPTION_KEY",
        description="Print a new random Fernet key for ENCRYPTION_KEY.",
    )
    new.set_defaults(handler=cmd_keys_new)
    rotate = key_commands.add_parser(
        "rotate",
        help="re-encrypt all free text with the first key of ENCRYPTION_KEY",
        description="Put a new key first in ENCRYPTION_KEY (new,old), run this, then remove the old key. "
        "Free text stored before encryption is encrypted too.",
    )
    rotate.set_defaults(handler=cmd_keys_rotate)

    schedule_cli.add_parsers(commands, _with_session)
    records_cli.add_parsers(commands, _with_session)

    risk = commands.add_parser(
        "risk",
        help="audit the risk detector (for clinical leads)",
        description="Screen messages with the risk lexicon in content/, or measure it on labelled messages.",
    )
    risk_commands = risk.add_subparsers(dest="risk_command", required=True, metavar="ACTION")
    risk_check = risk_commands.add_parser(
        "check",
        help="screen messages, one per line",
        description="Screen one message per line (from FILE, or standard input with - or no FILE) and print "
        "one JSON object per line: text, level, categories, matched, follow_up.",
    )
    risk_check.add_argument("file", nargs="?", metavar="FILE|-")
    risk_check.set_defaults(handler=cmd_risk_check)
    risk_eval = risk_commands.add_parser(
        "eval",
        help="recall and false alarms on a labelled file",
        description="Read a tab-separated file with columns level, category, text; print every miss and "
        "false alarm, recall per level and the false-alarm rate on 'none' messages (flagged high or "
        "imminent).",
    )
    risk_eval.add_argument("file", metavar="FILE.tsv")
    risk_eval.set_defaults(handler=cmd_risk_eval)
    risk_train = risk_commands.add_parser(
        "train",
        help="fit the model beside the rules on content's labelled examples (needs scikit-learn)",
        description=f"Fit the model that asks 'are you safe right now?' when the rules find nothing high, on "
        f"the labelled examples in */risk/{EXAMPLES_FILE}, and write {MODEL_FILE} in the content folder.",
    )
    risk_train.add_argument(
        "--threshold",
        type=_probability,
        default=THRESHOLD,
        help=f"ask when the model's probability is at least this (default {THRESHOLD})",
    )
    risk_train.set_defaults(handler=cmd_risk_train)
    for sub in (risk_check, risk_eval, risk_train):
        sub.add_argument("--content", metavar="DIR", help="the content folder (default: CONTENT_DIR)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        exit_on_config_error(error)
        raise
    logs.configure(settings.log_level)
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except ConfigError as error:
        exit_on_config_error(error)
        raise
    except (
        CliError,
        db.SchemaNotCurrent,
        ContentError,
        WebhookError,
        *schedule_cli.ERRORS,
        *records_cli.ERRORS,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (OperationalError, DBAPIError, OSError) as error:
        print(f"error: cannot use the database ({type(error).__name__}); check DATABASE_URL", file=sys.stderr)
        log.debug("event=cli.database_error", exc_info=True)
        return 1
    except KeyboardInterrupt:
        return 130
