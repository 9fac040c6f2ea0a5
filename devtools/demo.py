"""`python -m bot demo`: the real bot, a local Telegram stand-in and a fresh database, in a terminal.

The bot runs exactly as in production (`bot.app.serve`, long polling over HTTP); only Telegram is local.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import serve
from bot.core import db, logs
from bot.core.config import Clinic, Settings
from bot.core.models import CounselorRole, InviteKind, Patient, PatientStatus, SessionKind
from bot.core.people import add_counselor, is_telegram_user
from bot.enrollment.invites import issue_invite
from bot.runtime import Runtime
from devtools.simulator import BotMessage, TelegramStandIn

DEMO_TOKEN = "123456789:DEMO-local-stand-in-token-0000"  # noqa: S105 - only the local stand-in accepts it
DEMO_CLINIC = Clinic("Riverside Demo IOP", "555-0100", "555-0199")
PATIENT_ID, COUNSELOR_ID = 1001, 2001
CHATS = {"patient": PATIENT_ID, "counselor": COUNSELOR_ID}
HELP = """Commands:  #N  tap button N of the latest message with buttons
           !patient / !counselor   switch whose chat you are in
           !help   this list        !quit   leave (or Ctrl-D, Ctrl-C)
Anything else is sent to the bot as a message."""


Shown = tuple[str | None, tuple[tuple[str, str], ...], bool]


def _shown(message: BotMessage) -> Shown:
    """What the terminal shows of a message: its text, its buttons, whether it was deleted."""
    return (message.text, tuple(message.buttons()), message.deleted)


@dataclass
class Terminal:
    standin: TelegramStandIn
    out: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    current: str = "patient"
    shown: dict[int, dict[int, Shown]] = field(default_factory=lambda: {chat: {} for chat in CHATS.values()})
    """Per chat, each bot message as last printed: a change to it (an edit) is printed again."""
    colour: bool = field(default_factory=sys.stdout.isatty)

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def say(self, text: str) -> None:
        print(text, flush=True)

    def show(self, message: BotMessage, *, edited: bool = False) -> None:
        body = message.text or f"[{message.kind}]"
        if message.kind == "photo" and message.file_bytes:
            picture = Path(tempfile.gettempdir()) / f"iop-demo-{message.chat_id}-{message.message_id}.png"
            picture.write_bytes(message.file_bytes)
            body = f"[picture: open {picture}]\n{body}"
        heading = f"bot → {self.current} (edited its message):" if edited else f"bot → {self.current}:"
        self.say(self._paint(heading, "1;36") + "\n" + body)
        for number, (label, _data) in enumerate(message.buttons(), start=1):
            self.say(self._paint(f"   [#{number}] {label}", "33"))

    def _changed(self, message: BotMessage) -> bool:
        return self.shown[message.chat_id].get(message.message_id) != _shown(message)

    def print_changes(self, chat: int) -> None:
        """Print the chat's new messages, and the messages the bot edited since they were printed (a tick on
        a button, "Acknowledged by ...", an answer written into its question). Taking the buttons off a
        message, and deleting one, are not worth a line."""
        shown = self.shown[chat]
        for message in self.standin.transcript(chat):
            before, now = shown.get(message.message_id), _shown(message)
            if before == now:
                continue
            shown[message.message_id] = now
            if message.deleted:
                continue
            if before is None:
                self.show(message)
            elif before[0] != now[0] or now[1]:
                self.show(message, edited=True)

    async def follow(self) -> None:
        """Print the current chat's bot messages as they arrive or change."""
        chat = CHATS[self.current]
        while True:
            await self.standin.wait_for(chat, self._changed, timeout=365 * 86400)
            self.print_changes(chat)

    def latest_with_buttons(self) -> BotMessage | None:
        for message in reversed(self.standin.transcript(CHATS[self.current])):
            if message.buttons() and not message.deleted:
                return message
        return None

    async def tap(self, number_text: str) -> None:
        message = self.latest_with_buttons()
        buttons = message.buttons() if message else []
        if not number_text.isdecimal() or not 1 <= int(number_text) <= len(buttons) or message is None:
            self.say(f"(no button #{number_text} here; the latest message has {len(buttons)} buttons)")
            return
        label, data = buttons[int(number_text) - 1]
        self.say(self._paint(f"you tapped: {label}", "2"))
        query_id = await self.standin.tap(CHATS[self.current], message.message_id, data)
        answer = await self.standin.wait_for_callback_answer(query_id, timeout=10)
        if answer.get("text"):
            self.say(self._paint(f"(bot: {answer['text']})", "2"))


async def _lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _prepare(runtime: Runtime) -> tuple[str, str]:
    await db.upgrade(runtime.engine)
    async with db.transaction(runtime.sessions) as session:
        counselor = await add_counselor(
            session,
            name="Dana (demo counselor)",
            role=CounselorRole.COUNSELOR,
            timezone=runtime.settings.default_timezone,
        )
        ttl = timedelta(hours=1)
        counselor_invite = await issue_invite(
            session, kind=InviteKind.COUNSELOR, counselor_id=counselor.id, ttl=ttl
        )
        patient_invite = await issue_invite(
            session, kind=InviteKind.PATIENT, counselor_id=counselor.id, ttl=ttl, alias="Demo patient"
        )
    return counselor_invite.code, patient_invite.code


async def _demo_sessions(runtime: Runtime) -> None:
    """Once the demo patient has finished set-up, put them in a group with a weekly session and one that
    starts within the hour, so its 1-hour reminder (with its RSVP buttons) arrives at once. The demo patient
    has no quiet hours: otherwise, run in the hour before their quiet hours end (06:00-07:00 where they live),
    that reminder would wait for 07:00."""
    from bot.schedule import rules as schedule
    from bot.schedule.jobs import plan

    while True:
        await asyncio.sleep(2)
        async with db.transaction(runtime.sessions) as session:
            demo_patient = is_telegram_user(Patient, session, PATIENT_ID)
            patient = await session.scalar(select(Patient).where(demo_patient))
            if patient is None or patient.status is not PatientStatus.ACTIVE:
                continue
            patient.quiet_start = patient.quiet_end  # equal: no quiet hours
            group = await schedule.group_named(session, "Demo evening IOP", create=True)
            await schedule.join_group(session, group, patient)
            zone = ZoneInfo(runtime.settings.default_timezone)
            now = datetime.now(zone).replace(tzinfo=None, second=0, microsecond=0)
            monday = (now + timedelta(days=7 - now.weekday())).replace(hour=18, minute=0)
            for starts, rule in (
                (now + timedelta(minutes=60), None),
                (monday, "FREQ=WEEKLY;BYDAY=MO,WE,TH;COUNT=36"),
            ):
                await schedule.add_session(
                    session,
                    title="Evening IOP group",
                    kind=SessionKind.GROUP,
                    starts_local=starts,
                    timezone=zone.key,
                    duration=timedelta(hours=3),
                    rrule=rule,
                    group=group,
                    location="Riverside Clinic, Group Room B",
                )
        await plan(runtime)
        return


async def run_demo(settings: Settings, *, database_path: Path) -> int:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database_path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - once, before anything runs
    log_file = database_path.with_name(f"{database_path.stem}.log")
    logs.configure("INFO", file=log_file)  # the terminal is the chat: the log goes to a file
    quit_now = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, quit_now.set)
    async with TelegramStandIn() as standin:
        demo_settings = settings.model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///{database_path}",
                "telegram_api_base_url": standin.base_url,
                "bot_token": SecretStr(DEMO_TOKEN),
                # a new database each run, so a new key: nothing to keep
                "encryption_key": settings.encryption_key or SecretStr(Fernet.generate_key().decode()),
                # a made-up clinic (555-01xx numbers are for fiction), unless the settings name one
                "program_name": settings.program_name or DEMO_CLINIC.program_name,
                "clinic_phone": settings.clinic_phone or DEMO_CLINIC.clinic_phone,
                "after_hours_phone": settings.after_hours_phone or DEMO_CLINIC.after_hours_phone,
            }
        )
        runtime = Runtime.create(demo_settings)
        counselor_code, patient_code = await _prepare(runtime)
        stop = asyncio.Event()
        bot = asyncio.create_task(serve(runtime, stop, poll_timeout=5))
        sessions = asyncio.create_task(_demo_sessions(runtime))
        terminal = Terminal(standin)
        stdin_fd = sys.stdin.fileno()
        try:
            terminal.say(
                f"IOP Companion demo: a local Telegram stand-in at {standin.base_url}, "
                f"database {database_path}, log {log_file}."
            )
            terminal.say(HELP)
            terminal.say(
                "You are the demo patient, who just opened their invite link. After set-up you join a\n"
                "demo group whose next session starts within the hour, and its reminder comes.\n"
            )
            await standin.send_text(COUNSELOR_ID, f"/start {counselor_code}", first_name="Dana")
            await standin.send_text(PATIENT_ID, f"/start {patient_code}", first_name="Alex")
            terminal.say(terminal._paint(f"patient: /start {patient_code}", "2"))
            await _chat(terminal, await _lines(), quit_now)
        finally:
            sessions.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await bot
            await runtime.engine.dispose()
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(stdin_fd, True)
            loop.remove_signal_handler(signal.SIGINT)
    terminal.say("Demo ended.")
    return 0


async def _chat(terminal: Terminal, reader: asyncio.StreamReader, quit_now: asyncio.Event) -> None:
    printer = asyncio.create_task(terminal.follow())
    quitting = asyncio.create_task(quit_now.wait())
    try:
        while True:
            line_task = asyncio.create_task(reader.readline())
            done, _ = await asyncio.wait({line_task, quitting}, return_when=asyncio.FIRST_COMPLETED)
            if quitting in done:
                line_task.cancel()
                return
            raw = line_task.result()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if line in ("!quit", "!exit"):
                return
            if line == "!help":
                terminal.say(HELP)
            elif line.lstrip("!") in CHATS and line.startswith("!"):
                printer.cancel()
                terminal.current = line[1:]
                terminal.say(f"--- now in the {terminal.current}'s chat ---")
                printer = asyncio.create_task(terminal.follow())
            elif line.startswith("#"):
                await terminal.tap(line[1:].strip())
            else:
                await terminal.standin.send_text(CHATS[terminal.current], line)
    finally:
        printer.cancel()
        quitting.cancel()
