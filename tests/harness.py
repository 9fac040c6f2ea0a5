"""The real bot (bot.app.serve) running over real HTTP against the local Telegram stand-in, and the command
line (bot.cli.main) run in this process."""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jinja2 import ChainableUndefined
from jinja2.sandbox import SandboxedEnvironment
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import serve
from bot.cli import main
from bot.content import Catalog
from bot.content_check.check import Report, check_content
from bot.content_check.loader import Content, checked_content, fingerprint, load_content
from bot.core import db
from bot.core.config import Settings
from bot.core.models import Counselor, CounselorRole, InviteKind, Patient, utcnow
from bot.core.people import add_counselor, is_telegram_user
from bot.enrollment.invites import issue_invite
from bot.risk import promise
from bot.risk.callbacks import ALERT, AlertAction, AlertButton
from bot.runtime import Runtime
from devtools.simulator import BotMessage, TelegramStandIn

TEST_TOKEN = "123456789:TEST-token-for-the-local-stand-in"
TEST_ENCRYPTION_KEY = "3YqCcwW2osn6N0g5gj8tLZc4iUYWXFwjtvQ0URv_lok="  # for tests only
TEST_WEBHOOK_SECRET = "test-webhook-secret-0123456789"  # for tests only
# The clinic every test bot names (`run` needs these settings; texts use them: bot.core.config.Clinic)
TEST_CLINIC = {
    "PROGRAM_NAME": "Riverside IOP",
    "CLINIC_PHONE": "555-0100",
    "AFTER_HOURS_PHONE": "555-0199",
}
TEST_CLINIC_VALUES = {name.lower(): value for name, value in TEST_CLINIC.items()}  # as texts name them
SHIPPED_CONTENT = Path(__file__).resolve().parent.parent / "content"
_user_ids = itertools.count(5000)

# How long a test waits for the bot before it fails. A bot answers in a fraction of a second; on a busy
# machine (`make test` runs several test processes on two cores, beside whatever else runs) a reply that loads
# content or draws a chart can take seconds. A passing test never waits this long: a generous bound is free.
PATIENCE = 30.0
# How long a `python -m bot` process may take to start serving (imports, the content check, migrations).
STARTUP = 120.0


def document(suffix: str) -> Callable[[BotMessage], bool]:
    """For `wait_for`: a document the bot sent whose file name ends with `suffix` (".json", ".html")."""

    def is_document(message: BotMessage) -> bool:
        return message.kind == "document" and (message.file_name or "").endswith(suffix)

    is_document.__name__ = f"a {suffix} document"
    return is_document


@functools.cache
def _shipped_report(stamp: str) -> Report:
    return check_content(SHIPPED_CONTENT)


@functools.cache
def _shipped_content(stamp: str) -> Content:
    return checked_content(_shipped_report(stamp), SHIPPED_CONTENT, stamp)


def load_content_once(root: Path) -> Content:
    """`load_content`, except that the shipped content/ is loaded and checked once per test run, then shared.

    Loading checks every text, module and risk phrase (seconds); tests never edit the shipped folder (those
    that edit content copy it first) and nothing changes a Content in place. Any other folder, or the shipped
    one once a file in it changes (the fingerprint the bot itself watches), is loaded afresh as the bot would.
    """
    if Path(root).resolve() != SHIPPED_CONTENT:
        return load_content(root)
    return _shipped_content(fingerprint(root))


def shipped_check() -> Report:
    """`content check` of the shipped content/: the same check `load_content_once` made (tests read it, never
    change it)."""
    return _shipped_report(fingerprint(SHIPPED_CONTENT))


# ---- texts from content/ -----------------------------------------------------------------------------------
# A test expects what a content key renders, never a copy of its wording: a clinician's edit to a text then
# breaks no test, and a test still fails when the bot sends the wrong text.

_GAP = "\x00"


class _Gap(ChainableUndefined):
    """A variable the test left out: renders as a gap, is false in an `if` and empty in a `for`."""

    def __str__(self) -> str:
        return _GAP


_gapped = SandboxedEnvironment(undefined=_Gap, autoescape=False, keep_trailing_newline=False)


def _with_gaps(catalog: Catalog, key: str, language: str, variables: dict[str, object]) -> str:
    def t(other: str) -> str:
        return _with_gaps(catalog, other, language, {})

    source = catalog.entry(key, language).source
    return _gapped.from_string(source).render(t=t, **variables).strip()


def part_of(catalog: Catalog, key: str, language: str = "en", /, **variables: object) -> str:
    """A stable fragment of a text to search a transcript or a reply for: the longest piece of its first line
    that no variable left out touches, or, when that piece is short (a line like "{{ level }} alert: {{ alias
    }}"), the longest such piece of the whole text. Variables given are filled in as the bot would."""
    rendered = _with_gaps(catalog, key, language, variables)
    lines = [line for line in rendered.splitlines() if line.strip(_GAP + " ")]
    for scope, enough in ((lines[:1], 12), (lines, 1)):
        pieces = [piece.strip() for line in scope for piece in line.split(_GAP)]
        best = max(pieces, key=len, default="")
        if len(best) >= enough and any(c.isalpha() for c in best):
            return best
    raise AssertionError(f"{key!r} ({language}) has no words outside its variables")


def shipped_catalog() -> Catalog:
    """The shipped content/'s texts, loaded once per run (for tests with no running bot)."""
    return load_content_once(SHIPPED_CONTENT).catalog


def text(key: str, language: str = "en", /, **variables: object) -> str:
    """A shipped text, rendered as the bot renders it (every variable it uses must be given)."""
    return shipped_catalog().render(key, language, **variables)


def part(key: str, language: str = "en", /, **variables: object) -> str:
    """`part_of` the shipped texts."""
    return part_of(shipped_catalog(), key, language, **variables)


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait for `condition` (checked every 50 ms; it may be a coroutine function, e.g. a database query) with
    a deadline; for states the transcript does not show."""
    deadline = time.monotonic() + timeout

    async def holds() -> bool:
        found = condition()
        return await found if inspect.isawaitable(found) else found

    while not await holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    """A loopback port nothing listens on now (the OS may hand it out again later, rarely)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alert_button(message: BotMessage, action: AlertAction) -> str:
    """The data of an alert's button for `action` (acknowledge, resolve, ...), read through its codec: it
    also carries what the counselor saw (bot.risk.callbacks)."""
    for _, data in message.buttons():
        button = ALERT.parse(data)
        if isinstance(button, AlertButton) and button.action == action:
            return data
    raise AssertionError(f"no {action!r} button in {message.buttons()}")


@dataclass
class BotHarness:
    standin: TelegramStandIn
    settings: Settings
    webhook: bool = False  # updates posted to the bot (bot.webhook) instead of long polling
    runtime: Runtime = field(init=False)
    _stop: asyncio.Event = field(init=False)
    _task: asyncio.Task[None] = field(init=False)

    @classmethod
    @asynccontextmanager
    async def running(cls, settings: Settings, *, webhook: bool = False) -> AsyncIterator[BotHarness]:
        async with TelegramStandIn(patience=PATIENCE) as standin:
            update: dict[str, object] = {"telegram_api_base_url": standin.base_url}
            if webhook:
                port = free_port()
                update |= {
                    "webhook_url": f"http://127.0.0.1:{port}/telegram",
                    "webhook_port": port,
                    "webhook_secret": SecretStr(TEST_WEBHOOK_SECRET),
                }
            harness = cls(standin, settings.model_copy(update=update), webhook=webhook)
            await harness.start()
            try:
                yield harness
            finally:
                await harness.stop()

    async def start(self) -> None:
        """A new process, as far as the bot can tell: new Runtime, Application, scheduler and engine."""
        self.runtime = Runtime.create(self.settings)
        self._stop = asyncio.Event()
        calls = len(self.standin.calls)
        self._task = asyncio.create_task(
            serve(self.runtime, self._stop, poll_timeout=1, webhook=self.webhook)
        )
        if self.webhook:  # Telegram posts to us only once we have told it where
            await self.standin.wait_for_call("setWebhook", after=calls, finished=True, timeout=15)

    async def stop(self) -> None:
        """The bot stopped as SIGTERM stops it. Its engine's connections stay open for the next bot in this
        event loop (tests/conftest.py `_statements_compiled_once`): the stop gave every one of them back,
        its job locks let go."""
        self._stop.set()
        await asyncio.wait_for(self._task, timeout=15)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    # ---- set-up helpers -----------------------------------------------------------------------------------

    @staticmethod
    def new_user_id() -> int:
        return next(_user_ids)

    async def add_counselor(self, name: str = "Dana", role: CounselorRole = CounselorRole.COUNSELOR) -> int:
        async with db.transaction(self.runtime.sessions) as session:
            counselor = await add_counselor(session, name=name, role=role, timezone="America/New_York")
            return counselor.id

    async def invite(
        self, kind: InviteKind, counselor_id: int, *, ttl: timedelta = timedelta(hours=1), **extra: str
    ) -> str:
        async with db.transaction(self.runtime.sessions) as session:
            issued = await issue_invite(session, kind=kind, counselor_id=counselor_id, ttl=ttl, **extra)  # type: ignore[arg-type]
            return issued.code

    async def patient(self, user_id: int) -> Patient | None:
        async with self.runtime.sessions() as session:
            return await session.scalar(select(Patient).where(is_telegram_user(Patient, session, user_id)))

    async def counselor(self, counselor_id: int) -> Counselor:
        async with self.runtime.sessions() as session:
            return await session.get_one(Counselor, counselor_id)

    async def link_counselor(
        self, name: str = "Dana", role: CounselorRole = CounselorRole.COUNSELOR
    ) -> tuple[int, int]:
        """A counselor who has linked their Telegram account with a counselor invite. Returns (Telegram user
        id, counselor id)."""
        user = self.new_user_id()
        counselor_id = await self.add_counselor(name, role)
        code = await self.invite(InviteKind.COUNSELOR, counselor_id)
        await self.say(user, f"/start {code}", self.part("counselor.welcome", name=name, role=role.value))
        return user, counselor_id

    # ---- texts, as this bot's content (edits reloaded) renders them --------------------------------------

    def text(self, key: str, language: str = "en", /, **variables: object) -> str:
        return self.runtime.text(key, language, **variables)

    def part(self, key: str, language: str = "en", /, **variables: object) -> str:
        """A stable fragment of the text (see `part_of`)."""
        return part_of(self.runtime.catalog, key, language, **variables)

    def module_title(self, module_id: str, language: str = "en") -> str:
        """A coping exercise's title, as its content file names it."""
        module = self.runtime.modules.get(module_id, language)
        assert module is not None, module_id
        return module.title

    def promise(self, language: str = "en", timezone: str = "America/New_York") -> str:
        """What a patient (in `timezone`) is promised now about an alert that paged nobody on call: the care
        team today in office hours, else when the office opens and the after-hours number."""
        now = utcnow()
        kept = promise.by_the_hour(self.runtime.settings, now)
        return promise.render(self.runtime, kept, timezone, language, now)

    # ---- conversation helpers ----------------------------------------------------------------------------

    async def start_safety_plan(self, user_id: int) -> BotMessage:
        """/safetyplan and its start button: the first step's question, waiting for the patient's words."""
        intro = await self.say(user_id, "/safetyplan", self.part("plan.intro"))
        return await self.tap(
            user_id, intro, self.text("plan.start_button"), self.part("plan.steps.warning_signs.title")
        )

    async def say(self, user_id: int, text: str, expect: str, **options: object) -> BotMessage:
        """Send text as the user and wait for a bot message (sent after it) containing `expect`."""
        mark = self.standin.mark(user_id)
        await self.standin.send_text(user_id, text, **options)  # type: ignore[arg-type]
        return await self.standin.wait_for(user_id, expect, after=mark)

    async def my_data(self, user_id: int) -> tuple[dict[str, Any], str]:
        """Send /mydata as the user and wait for its two files: the JSON, parsed, and the page to read."""
        mark = self.standin.mark(user_id)
        await self.standin.send_text(user_id, "/mydata")
        as_json = await self.standin.wait_for(user_id, document(".json"), after=mark)
        as_page = await self.standin.wait_for(user_id, document(".html"), after=mark)
        assert as_json.file_bytes is not None and as_page.file_bytes is not None
        return json.loads(as_json.file_bytes), as_page.file_bytes.decode("utf-8")

    async def tap(self, user_id: int, message: BotMessage, label: str, expect: str) -> BotMessage:
        buttons = message.buttons()
        exact = [d for text, d in buttons if text.lower() == label.lower()]
        data = (exact or [d for text, d in buttons if label.lower() in text.lower()] or [None])[0]
        assert data is not None, f"no button {label!r} in {buttons}"
        mark = self.standin.mark(user_id)
        await self.standin.tap(user_id, message.message_id, data)
        return await self.standin.wait_for(user_id, expect, after=mark)

    async def resolve_alert(
        self,
        counselor_user: int,
        alert: BotMessage,
        counselor: str,
        outcome: str = "safe",
        language: str = "en",
        *,
        shown_on: BotMessage | None = None,
    ) -> BotMessage:
        """The counselor taps Resolve on an alert, says whether it was a real concern or a false alarm (an
        `outcome` of false_alarm), and for a real concern picks the outcome; returns the alert (or the copy
        `shown_on`) once it says `counselor` resolved it. `language`: the counselor's."""
        verdicts = await self.tap(
            counselor_user,
            alert,
            self.text("escalation.resolve_button", language),
            self.part("escalation.choose_verdict", language),
        )
        if outcome == "false_alarm":
            last, label = verdicts, self.text("escalation.verdicts.false_alarm", language)
        else:
            last = await self.tap(
                counselor_user,
                verdicts,
                self.text("escalation.verdicts.real_concern", language),
                self.part("escalation.choose_outcome", language),
            )
            label = self.text(f"escalation.outcomes.{outcome}", language)
        data = next(d for text, d in last.buttons() if text == label)
        await self.standin.tap(counselor_user, last.message_id, data)
        resolved = self.part("escalation.resolved", language, counselor=counselor)

        shown = (shown_on or alert).message_id

        def this_alert_resolved(message: BotMessage) -> bool:
            return message.message_id == shown and resolved in (message.text or "")

        return await self.standin.wait_for(counselor_user, this_alert_resolved)

    async def enroll(
        self,
        user_id: int,
        counselor_id: int | None = None,
        *,
        finish_setup: bool = True,
        language: str = "en",
        alias: str | None = None,
    ) -> int:
        """Invite (with `alias`, or a generated one), /start, consent and (optionally) the whole set-up,
        choosing `language`. Returns the patient id."""
        counselor_id = counselor_id or await self.add_counselor()
        code = await self.invite(InviteKind.PATIENT, counselor_id, **({"alias": alias} if alias else {}))
        consent = await self.say(user_id, f"/start {code}", self.part("consent.screen"))
        zone_question = await self.tap(
            user_id, consent, self.text("consent.accept_button"), self.part("onboarding.ask_timezone")
        )
        if finish_setup:
            time_question = await self.tap(
                user_id,
                zone_question,
                self.text("onboarding.zones.new_york"),
                self.part("onboarding.ask_checkin_time"),
            )
            language_question = await self.tap(
                user_id, time_question, "20:00", self.part("onboarding.ask_language")
            )
            name = self.text("language_name", language)
            done = self.text("onboarding.done", language, zone="", checkin_time="", language_name="")
            mark = self.standin.mark(user_id)
            await self.tap(user_id, language_question, name, done.splitlines()[0])
            # set-up ends with one more question, in a message of its own (naloxone at home: issue 22)
            await self.standin.wait_for(user_id, self.part("naloxone.ask", language), after=mark)
        patient = await self.patient(user_id)
        assert patient is not None
        return patient.id


# ---- the command line --------------------------------------------------------------------------------------


@contextmanager
def standin_in_thread(**options: Any) -> Iterator[TelegramStandIn]:
    """A stand-in served by its own thread and event loop, for a test that runs `python -m bot run` in this
    process (its signal handlers need the main thread, and it runs its own event loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="standin", daemon=True)
    thread.start()
    standin = TelegramStandIn(**{"patience": PATIENCE, **options})
    try:
        asyncio.run_coroutine_threadsafe(standin.start(), loop).result(30)
        try:
            yield standin
        finally:
            asyncio.run_coroutine_threadsafe(standin.stop(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def serving(process: asyncio.subprocess.Process, standin: TelegramStandIn, *, after: int = 0) -> None:
    """Wait until `python -m bot run` in `process` polls `standin` for updates (a getUpdates call at index
    `after` of `standin.calls` or later: how many calls there were before the process started), within STARTUP
    seconds; fail at once, with its exit status, if it ends first."""
    polled = asyncio.ensure_future(standin.wait_for_call("getUpdates", timeout=STARTUP, after=after))
    ended = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait({polled, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (polled, ended):
            waiting.cancel()
    if not polled.cancelled() and polled.exception() is None:
        return
    if ended.done() and not ended.cancelled():
        raise AssertionError(f"the bot process ended (exit status {ended.result()}) before it polled")
    polled.result()  # the timeout's AssertionError


@dataclass(frozen=True)
class Ran:
    """What a `python -m bot` command did, as the shell sees it."""

    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _logging_put_back() -> Iterator[None]:
    """A command configures logging for its process (bot.core.logs): undo that once it is done."""
    root = logging.getLogger()
    handlers, levels = root.handlers[:], {"": root.level}
    levels |= {
        name: lg.level for name, lg in root.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(levels[""])
        for name, lg in list(root.manager.loggerDict.items()):
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(name, logging.NOTSET))


class CommandLine:
    """`python -m bot ARGS` in this process: bot.cli.main with the environment (the `cli` fixture sets it),
    standard input and output a shell gives it, and its exit status, SystemExit included. Its logging goes to
    the captured stderr, as in its own process. The command runs its own event loop: from an async test, run
    it in a thread (`await asyncio.to_thread(cli, ...)`)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *args: str, stdin: str = "", **env: str | None) -> Ran:
        """`env` sets variables for this command only; None unsets one."""
        self._capsys.readouterr()
        with pytest.MonkeyPatch.context() as patch, _logging_put_back():
            for name, value in env.items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            try:
                status = main(list(args))
            except SystemExit as done:  # argparse, --help, configuration errors
                status = _exit_status(done.code)
        out, err = self._capsys.readouterr()
        return Ran(status, out, err)


def _exit_status(code: object) -> int:
    """What the process would exit with after `raise SystemExit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
