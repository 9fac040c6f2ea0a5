"""Handle the inbox: one task per chat (its updates in order), chats concurrently (bounded), failures retried
with backoff and parked after the last try; a flooding chat is answered once, not once per message; an
imminent message gets its crisis reply from content even when the database is down.

Handlers run through python-telegram-bot's `Application.process_update`. An update is marked done once its
replies went out (many updates in one write, a few times a second); a process that dies before that handles
it again on restart, so a reply is never lost, and what was in flight may be handled twice. A failure
after the handler's turn committed (a send) is not retried; one before it is. What failed is reported by the
error handler through `CURRENT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram.ext import Application

from bot.content.catalog import REFERENCE_LANGUAGE
from bot.core import presence, updates
from bot.core.db import transaction
from bot.core.models import InboxStatus, InboxUpdate, utcnow
from bot.core.presence import worker_name
from bot.intake import parse, store
from bot.intake.outcome import CURRENT, Outcome
from bot.outbox.limiter import urgent
from bot.risk import RiskLevel, Screening

if TYPE_CHECKING:
    from bot.core.config import Settings
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

CONCURRENCY = 32  # chats handled at once (a slow Telegram answer holds its chat's place)
ROWS_PER_CLAIM = 20  # a chat gives its place back after this many, so a flood cannot hold a slot
IDLE_SECONDS = 1.0  # look for due retries (and other processes' leftovers) at least this often
MEMORY_ROWS = 5_000  # rows claimed at insert and held in memory at most (beyond: served from the database)
# At start, the rows waiting in the inbox (oldest first, this many at most, a page at a time) are read by the
# rules, so that the chats with a message that pages are served first (a crash with a backlog: `start`).
START_READ_ROWS = 20_000
START_READ_PAGE = 500
START_READ_WAIT_SECONDS = 0.5  # how long the start waits for that reading before serving chats anyway
START_READ_CHARS = 2_000  # of a message, read for that ordering (a long one costs the rules milliseconds)
START_READ_SLICE_SECONDS = 0.005  # the reading lets the others run after this much CPU at a time
# A chat's rows held in memory at most: beyond, the chat's new rows are served from the database, so that a
# flood (whose screening waits while the intake is behind) leaves the memory to everyone else's.
MEMORY_ROWS_PER_CHAT = 1_000
DONE_EVERY_SECONDS = 0.05  # how long a handled row may wait to be marked done with others
CLOSE_GRACE_SECONDS = 10
FLOOD_BUDGET = 30  # messages (not button taps) a chat may have answered one by one within FLOOD_WINDOW
FLOOD_WINDOW_SECONDS = 60.0
FLOOD_NOTICE_EVERY_SECONDS = 600.0  # a flooding chat is told to slow down at most this often
# While the intake is behind (Telegram has more than a page waiting), a chat with a backlog or past its flood
# budget, whose messages would mostly be only screened, waits for it at most this long at a time: the intake
# comes first (a crisis message may be behind the flood).
FLOOD_DEFER_SECONDS = 5.0


def lease(settings: Settings) -> timedelta:
    """How long a claimed row stays with its worker (INBOX_LEASE_SECONDS): renewed while it is in use, so
    it ends only for a process that stopped renewing without ending (hung, or cut off from the database);
    a process that has ended loses its rows within seconds (bot.core.presence)."""
    return timedelta(seconds=settings.inbox_lease_seconds)


# Inside a flood, the semantic layer's "are you safe right now?" (when nothing else worries) is asked at most
# this often per chat; the rules' questions and every page still act each time (a clinical decision, flagged
# for review: README, "Fair intake").
FLOOD_QUESTION_EVERY_SECONDS = FLOOD_WINDOW_SECONDS
# While a chat's message that pages (a crisis) is being handled and its reply sent, the other chats' next
# messages wait for it (bot.intake.precedence), this long at most from when it began: it has the event loop
# and the database to itself instead of sharing them with the dozens of turns that start together when the
# intake catches up with a flood (bench/crisis_latency.py).
GIVE_WAY_SECONDS = 1.0

FloodNotice = Callable[[Update, Any], Awaitable[None]]  # a handler: (update, context)


async def answer_crisis_without_database(runtime: Runtime, bot: Bot, raw: dict[str, Any]) -> bool:
    """If the update is an imminent-risk message, send the crisis reply from content now, database or not.
    True if it was sent (or had been already)."""
    update_id = raw.get("update_id")
    said = parse.typed(raw)
    if said is None or not isinstance(update_id, int):
        return False
    if update_id in runtime.answered_without_database:
        return True
    screening = runtime.content.risk.screen(said.text).without_question()
    if screening.level is not RiskLevel.IMMINENT:
        return False
    languages = runtime.catalog.languages
    code = (said.language_code or "").split("-")[0].lower()
    language = code if code in languages else REFERENCE_LANGUAGE
    overdose = any(str(category) == "overdose" for category in screening.categories)
    # The care team is told once the database answers (the handler pages then, without a second reply).
    promise = runtime.text("promise.delayed", language)
    text = runtime.text("crisis.imminent", language, overdose=overdose, plan_contacts="", promise=promise)
    try:
        with urgent():
            await bot.send_message(said.chat_id, text)
    except Exception as error:
        log.error("event=intake.crisis_reply_failed update_id=%s kind=%s", update_id, type(error).__name__)
        return False
    runtime.answered_without_database.add(update_id)
    log.warning("event=intake.crisis_reply_without_database update_id=%s", update_id)
    return True


def read_ahead(runtime: Runtime, raws: Sequence[Any]) -> list[Screening | None]:
    """Screen the typed messages of `raws` (a chat's rows handled in one go, the webhook's posts written
    together) with one call of the semantic layer's encoder (`Detector.screen_many`): a fraction of its cost
    per message. The layer keeps their embeddings (`Layer.recent`), so the handler's own `screen` does not
    encode them again. Each raw's screening, None when it is not a typed message (or the read failed: then
    each is read when it is screened)."""
    typed = [_typed_text(raw) for raw in raws]
    texts = [text for text in typed if text is not None]
    if not texts:
        return [None] * len(raws)
    try:
        screened = iter(runtime.content.risk.screen_many(texts))
    except Exception as error:
        log.warning("event=intake.read_ahead_failed kind=%s", type(error).__name__)
        return [None] * len(raws)
    return [None if text is None else next(screened) for text in typed]


def prime(runtime: Runtime, raws: Sequence[Any]) -> None:
    """Let the semantic layer read the typed messages of a polled page (or of the webhook's posts written
    together) in one encoder call (`Detector.prime`) before their chats' rows are handled one chat at a time:
    most such pages hold one message each of many chats, and one call for all costs a fraction of one each.
    Only an optimisation."""
    texts = [text for raw in raws if (text := _typed_text(raw)) is not None]
    try:
        runtime.content.risk.prime(texts)
    except Exception as error:
        log.warning("event=intake.read_ahead_failed kind=%s", type(error).__name__)


def _typed_text(raw: Any) -> str | None:
    said = parse.typed(raw) if isinstance(raw, dict) else None
    return None if said is None else said.text


def _pages(runtime: Runtime, payload: str) -> bool:
    """Whether the rules page the update's typed message (its first START_READ_CHARS characters)."""
    try:
        text = _typed_text(json.loads(payload))
    except ValueError:
        return False  # handled (and reported) in its turn
    return text is not None and runtime.content.risk.rules(text[:START_READ_CHARS]).level >= RiskLevel.HIGH


@dataclass
class _Flood:
    handled: deque[float] = field(default_factory=deque)
    noticed_at: float | None = None
    asked_at: float | None = None  # the semantic layer's question last let through inside the flood
    first_at: float | None = None  # the chat last made the others give way (`_may_go_first`)


class InboxProcessor:
    """One per process. The poller hands it what it stored (`claimant`, `stored`); `wake()` makes it look at
    the database now; `run()` until `close()`.

    Where a chat's rows come from: the poller stores a page already claimed by this worker (while there is
    room in memory: MEMORY_ROWS) and hands the rows over, so handling them costs no claim and no search.
    Rows only the database has (stored by the webhook or before memory had room, left by a process that
    stopped or died, due again after a failure) are found by a search every IDLE_SECONDS, or named by
    whoever stored them; such a chat is served from the database (`claim_chat`, in order, its rows held in
    memory included) until its backlog there is gone, and its rows in memory wait for that: order per chat
    holds. Handled rows are marked done together, a few times a second (DONE_EVERY_SECONDS), after their
    replies went out."""

    def __init__(
        self,
        runtime: Runtime,
        application: Application,  # type: ignore[type-arg]
        *,
        flood_notice: FloodNotice,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.runtime = runtime
        self.application = application
        self.flood_notice = flood_notice
        self.concurrency = concurrency
        self.worker = worker_name("in")
        self.lease = lease(runtime.settings)
        self._taking_back = presence.TakingBack(runtime.sessions, InboxUpdate)  # rows of ended processes
        self._woken = asyncio.Event()
        self._closing = False
        self._chats: dict[int | None, asyncio.Task[None]] = {}
        self._floods: dict[int | None, _Flood] = {}
        self._task: asyncio.Task[None] | None = None
        self._memory: dict[int | None, deque[store.Claimed]] = {}  # claimed at insert, not begun
        self._held = 0  # rows in _memory
        self._in_db: set[int | None] = set()  # chats to serve from the database first
        self._alarming: set[int | None] = set()  # of those, the ones to serve before the others (`start`)
        self._reader: asyncio.Task[None] | None = None  # reads what was waiting at start (`_read_backlog`)
        self._generation = 0  # times the presence lock was found lost (`lock_lost`)
        self._claimed_in = 0  # ... as of the last `claimant` (the rows it names are stored with that)
        self._not_before: dict[int | None, float] = {}  # chats held by another worker: look again then
        self._search_now = True  # look for rows only the database has at the next pass
        self._done: list[int] = []  # handled, replies sent, not marked done yet
        self._writing: set[int] = set()  # being marked done now (by the recorder or a store: take_done)
        self._done_added = asyncio.Event()
        self._recorder: asyncio.Task[None] | None = None
        self._final = False  # closing: the recorder writes what is left and ends
        self._intake_behind = False  # the poller's last page was full: Telegram has more waiting
        self._deferred: dict[int | None, float] = {}  # chats waiting for the intake (`_defers`), since when

    def wake(self) -> None:
        """Look at the database now (something was stored there without being named)."""
        self._search_now = True
        self._woken.set()

    def lock_lost(self) -> None:
        """This process's presence lock could not be confirmed for a while, or had to be taken again
        (bot.core.presence): meanwhile another process may have judged it gone and taken its rows. The rows
        held in memory are forgotten and their chats served from the database, where only the rows still
        ours (or free again) are claimed."""
        self._generation += 1  # rows in hand stop at the next one (`_chat`), a store under way is not kept
        self._in_db.update(self._memory)
        self._memory.clear()
        self._held = 0
        self._woken.set()

    def claimant(self, count: int) -> str | None:
        """The worker to store `count` new rows as claimed by, if there is room to hold them in memory."""
        if self._closing or self._task is None or self._held + count > MEMORY_ROWS:
            return None
        self._claimed_in = self._generation
        return self.worker

    def held_full(self, chats: Collection[int | None]) -> set[int | None]:
        """Those of `chats` with MEMORY_ROWS_PER_CHAT rows in memory already: their new rows are to be stored
        unclaimed (and are served from the database, after the rows in memory)."""
        return {chat for chat in chats if len(self._memory.get(chat, ())) >= MEMORY_ROWS_PER_CHAT}

    def stored(self, rows: Sequence[store.Incoming], *, claimed: bool) -> None:
        """Rows just stored: claimed by this worker (handled from memory), or not (served from the database).
        An update sent again is not among them: it was stored once, and is handled once. Rows claimed before
        the presence lock was found lost are served from the database (`lock_lost`)."""
        claimed = claimed and self._claimed_in == self._generation
        for row in rows:
            if claimed:
                self._memory.setdefault(row.chat_key, deque()).append(
                    store.Claimed(row.update_id, row.chat_key, row.payload, 0)
                )
                self._held += 1
            else:
                self._in_db.add(row.chat_key)
        if rows:
            self._woken.set()

    def intake_behind(self, behind: bool) -> None:
        """The poller's word after each page: True while Telegram has more waiting than one page (the page
        came back full). Meanwhile a chat with a backlog or past its flood budget waits (`_defers`), so that
        every update behind a flood (a crisis message among them) is fetched and stored first."""
        if self._intake_behind and not behind:
            self._woken.set()
        self._intake_behind = behind

    async def start(self) -> None:
        """Begin handling. Rows that a process which has ended still holds (killed, say, just after a fetch:
        a crisis message among them) are taken back instead of waiting for their lease to run out
        (bot.core.presence): on SQLite at once, on PostgreSQL once that process is known to be gone. Chats
        with rows already in the inbox are served from the database first, so that what came before the
        start is handled before what comes after."""
        if self.runtime.engine.dialect.name != "sqlite":
            await self._taking_back.look()  # the first look: it finds the missing, judged a few seconds on
        async with transaction(self.runtime.sessions) as session:
            if self.runtime.engine.dialect.name == "sqlite":
                await store.release_all(session, None)  # one process per database: any claim is a dead one's
            self._in_db.update(await store.chats_pending(session))
        if self._in_db:
            # What was waiting is read while the chats are served, but the start waits a moment for it: a
            # backlog of a few pages is read before the first chat is served.
            self._reader = asyncio.create_task(self._read_backlog(), name="inbox-backlog")
            await asyncio.wait({self._reader}, timeout=START_READ_WAIT_SECONDS)
        self._recorder = asyncio.create_task(self._record(), name="inbox-done")
        self._task = asyncio.create_task(self._run(), name="inbox")

    async def _read_backlog(self) -> None:
        """Read what was waiting in the inbox at start with the rules alone, a page at a time, and put the
        chats with a message that pages before the others (`_first`): after a crash with a backlog of
        hundreds of chats, a crisis message among them is not handled in whatever order they come. Only a
        chat's first ROWS_PER_CLAIM rows count (what its first turn handles), and only chats not served yet;
        it lets the others run every START_READ_SLICE_SECONDS of CPU. Only an ordering: every message is
        screened in full when it is handled."""
        after, read, found = -1, 0, 0
        slice_ends = time.perf_counter() + START_READ_SLICE_SECONDS
        try:
            while read < START_READ_ROWS and not self._closing:
                async with self.runtime.sessions() as session:
                    page = await store.pending_payloads(
                        session, after=after, limit=START_READ_PAGE, per_chat=ROWS_PER_CLAIM
                    )
                for _, chat_id, payload in page:
                    if (
                        chat_id not in self._alarming
                        and chat_id in self._in_db
                        and chat_id not in self._chats
                        and _pages(self.runtime, payload)
                    ):
                        self._alarming.add(chat_id)
                        self._woken.set()
                        found += 1
                    if time.perf_counter() >= slice_ends:
                        await asyncio.sleep(0)
                        slice_ends = time.perf_counter() + START_READ_SLICE_SECONDS
                if len(page) < START_READ_PAGE:
                    break
                after, read = page[-1][0], read + len(page)
        except Exception as error:  # only an ordering: the rows are handled (and screened) all the same
            log.warning("event=intake.read_waiting_failed kind=%s", type(error).__name__)
        if found:
            log.warning("event=intake.alarming_waiting chats=%d", found)

    async def close(self) -> None:
        """Take no new chats; let the updates under way finish; mark what was handled; give back what was
        claimed and not begun."""
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self._woken.set()
        if self._task is not None:
            await self._task
        if self._chats:
            await asyncio.wait(set(self._chats.values()), timeout=CLOSE_GRACE_SECONDS)
        left = list(self._chats.values())
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        if self._recorder is not None:
            self._final = True
            self._done_added.set()
            await self._recorder
        with contextlib.suppress(Exception):
            async with transaction(self.runtime.sessions) as session:
                await store.release_all(session, self.worker)

    async def _run(self) -> None:
        renew_at = time.monotonic() + self.lease.total_seconds() / 3
        search_at = time.monotonic()
        while not self._closing:
            self._woken.clear()
            now = time.monotonic()
            try:
                if self._search_now or now >= search_at:
                    self._search_now = False
                    search_at = now + IDLE_SECONDS
                    await self._search()
                    # sooner when a process found missing can be judged gone then (bot.core.presence)
                    search_at = min(search_at, self._taking_back.due_at)
                if now >= renew_at:
                    renew_at = now + self.lease.total_seconds() / 3
                    if self._held or self._chats:
                        # Rows in memory or in hand stay ours while they wait: a lease that ran out would
                        # let another process take them (a duplicate, never a loss).
                        async with transaction(self.runtime.sessions) as session:
                            await store.renew(session, self.worker, utcnow(), self.lease)
            except Exception as error:  # the database may be down: try again shortly
                log.warning("event=intake.schedule_failed kind=%s", type(error).__name__, exc_info=True)
            self._schedule()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(search_at, renew_at) - time.monotonic())):
                    await self._woken.wait()

    async def _search(self) -> None:
        """Chats whose due rows only the database has: retries that fell due, other processes' leftovers,
        what the webhook stored."""
        await self._taking_back.look()
        async with transaction(self.runtime.sessions) as session:
            chats = await store.chats_with_work(
                session, self.worker, utcnow(), exclude=list(self._chats), limit=self.concurrency, mine=False
            )
        self._in_db.update(chats)

    def _schedule(self) -> None:
        """Start a task for each chat with work, oldest first, as far as the places allow."""
        free = self.concurrency - len(self._chats)
        if free <= 0:
            return
        now = time.monotonic()
        waiting = [
            (self._first(chat_id), chat_id)
            for chat_id in {*self._in_db, *self._memory}
            if chat_id not in self._chats
            and self._not_before.get(chat_id, 0.0) <= now
            and not self._defers(chat_id, now)
        ]
        waiting.sort(key=lambda item: item[0])
        for _, chat_id in waiting[:free]:
            self._not_before.pop(chat_id, None)
            self._deferred.pop(chat_id, None)
            task = asyncio.create_task(self._chat(chat_id), name=f"inbox-chat-{chat_id}")
            self._chats[chat_id] = task
            task.add_done_callback(functools.partial(self._chat_done, chat_id))
        log.debug("event=intake.scheduled chats=%d active=%d", min(free, len(waiting)), len(self._chats))

    def _defers(self, chat_id: int | None, now: float) -> bool:
        """Whether the chat waits for the intake to catch up (while the poller is behind, FLOOD_DEFER_SECONDS
        at most at a time): it has a backlog (a claim's worth of rows waiting: a flood, most of it to be only
        screened), or it is past its flood budget. A chat with a few new rows (a crisis message among them)
        is handled at once."""
        if not self._intake_behind:
            self._deferred.clear()
            return False
        flood = self._floods.get(chat_id)
        backlog = len(self._memory.get(chat_id, ())) >= ROWS_PER_CLAIM
        if not backlog and (flood is None or not self._flooding(flood, now)):
            return False
        return now - self._deferred.setdefault(chat_id, now) < FLOOD_DEFER_SECONDS

    def _first(self, chat_id: int | None) -> int:
        """The chat's oldest known update id (a chat to serve from the database goes first: its rows are
        older than anything in memory)."""
        if chat_id in self._alarming:
            return -2  # found at start with a message that pages: before everyone else (`start`)
        rows = self._memory.get(chat_id)
        return -1 if chat_id in self._in_db or not rows else rows[0].update_id

    def _chat_done(self, chat_id: int | None, _task: asyncio.Task[None]) -> None:
        self._chats.pop(chat_id, None)
        self._woken.set()  # a place is free, and the chat may have more

    async def _next_rows(self, chat_id: int | None) -> list[store.Claimed]:
        """Up to ROWS_PER_CLAIM of the chat's rows, in order: from the database while it has a backlog of
        the chat's (its rows in memory included, and then dropped from memory), else from memory."""
        if chat_id in self._in_db:
            async with transaction(self.runtime.sessions) as session:
                rows = await store.claim_chat(
                    session,
                    chat_id,
                    self.worker,
                    utcnow(),
                    lease=self.lease,
                    limit=ROWS_PER_CLAIM,
                    skip=[*self._done, *self._writing],
                )
            if rows is None:  # another worker holds the chat: its rows come first, look again shortly
                self._not_before[chat_id] = time.monotonic() + IDLE_SECONDS
                return []
            if len(rows) < ROWS_PER_CLAIM:
                self._in_db.discard(chat_id)
            taken = {row.update_id for row in rows}
            kept = self._memory.get(chat_id)
            if kept is not None and taken:
                left = deque(row for row in kept if row.update_id not in taken)
                self._held -= len(kept) - len(left)
                self._memory[chat_id] = left
            if rows:
                return rows
            if chat_id in self._in_db:
                return []
        kept = self._memory.get(chat_id)
        if not kept:
            self._memory.pop(chat_id, None)
            return []
        rows = [kept.popleft() for _ in range(min(ROWS_PER_CLAIM, len(kept)))]
        self._held -= len(rows)
        if not kept:
            self._memory.pop(chat_id, None)
        return rows

    async def _chat(self, chat_id: int | None) -> None:
        """Handle up to ROWS_PER_CLAIM of a chat's rows, then give the place back (a flood cannot hold it).
        A message that pages is urgent work (`Runtime.precedence`): the other chats' next rows wait for it."""
        pages = False
        try:
            rows = await self._next_rows(chat_id)
            if rows:  # (none while another process holds the chat: it stays first until they are ours)
                self._alarming.discard(chat_id)
            raws = [json.loads(row.payload) for row in rows]
            # A flood's twenty messages are all screened: read by the semantic layer in one call, not twenty.
            screenings = read_ahead(self.runtime, raws)
            alarming = any(s is not None and s.level >= RiskLevel.HIGH for s in screenings)
            # A typed message the read-ahead could not screen may be a crisis: it does not wait either.
            unread = any(
                s is None and _typed_text(raw) is not None for raw, s in zip(raws, screenings, strict=True)
            )
            if alarming and self._may_go_first(chat_id):
                self.runtime.precedence.take()
                pages = True
            # Only the once-a-minute hold on the others is limited; a chat with a message that pages (or one
            # not screened yet) never waits for another chat's crisis.
            waits = not (alarming or unread)
            generation = self._generation
            for row, raw, screening in zip(rows, raws, screenings, strict=True):
                if waits:
                    await self.runtime.precedence.give_way(GIVE_WAY_SECONDS)
                if self._closing:
                    return  # what is left goes back to the inbox (close)
                if self._generation != generation:
                    # The presence lock was found lost: another process may have taken these rows. The rest
                    # are claimed again from the database (only those still ours, or free again).
                    self._in_db.add(chat_id)
                    return
                if not await self._handle(row, raw, screening):
                    self._done.append(row.update_id)
                    self._done_added.set()
                # Let the others run between two rows: a flood's messages are screened without waiting on
                # anything, and twenty in a row would hold up the poller storing what came after them (a
                # crisis message among it).
                await asyncio.sleep(0)
        except Exception as error:
            log.warning("event=intake.chat_failed kind=%s", type(error).__name__)
        finally:
            if pages:
                self.runtime.precedence.give()

    def _may_go_first(self, chat_id: int | None) -> bool:
        """Whether the chat's rows may make the others give way now: once per FLOOD_WINDOW_SECONDS per chat,
        so that a flood of alarming messages cannot keep everyone else waiting."""
        flood = self._floods.setdefault(chat_id, _Flood())
        now = time.monotonic()
        if flood.first_at is not None and now - flood.first_at < FLOOD_WINDOW_SECONDS:
            return False
        flood.first_at = now
        return True

    async def _record(self) -> None:
        """Mark handled rows done, many in one write: one transaction a few times a second, not one per
        update. A process that dies first handles them again (the in-flight bound), never loses one."""
        failures = 0
        while True:
            await self._done_added.wait()
            if not self._final:
                await asyncio.sleep(DONE_EVERY_SECONDS)
            self._done_added.clear()
            writing = self.take_done()
            if writing:
                try:
                    async with transaction(self.runtime.sessions) as session:
                        await store.mark_done(session, writing, utcnow())
                    failures = 0
                    self.done_written(writing)
                except Exception as error:  # the database may be down: keep them and try again
                    failures += 1
                    log.warning("event=intake.mark_done_failed kind=%s", type(error).__name__)
                    self.done_not_written(writing)
                    if self._final and failures >= 3:
                        return  # handled again at the next start: a duplicate, never a loss
                    await asyncio.sleep(min(0.5 * failures, 5.0))
            if self._final and not self._done:
                return

    def served_from_database(self, chat_id: int | None) -> bool:
        """The chat has pending rows that only the database has (this process knows of them): a new row of
        it must be served from there too, after them."""
        return chat_id in self._in_db

    def take_done(self) -> list[int]:
        """The rows handled and not marked done yet, for a transaction about to be written anyway (the
        poller's next page, the webhook's next posts) to mark in passing: then marking them costs no commit
        of its own. The caller reports back with done_written or done_not_written."""
        taken, self._done = self._done, []
        self._writing.update(taken)
        return taken

    def done_written(self, update_ids: Sequence[int]) -> None:
        self._writing.difference_update(update_ids)

    def done_not_written(self, update_ids: Sequence[int]) -> None:
        """Their write failed: the recorder tries again."""
        self._writing.difference_update(update_ids)
        self._done = [*update_ids, *self._done]
        self._done_added.set()

    async def _handle(
        self, row: store.Claimed, raw: dict[str, Any], screening: Screening | None = None
    ) -> bool:
        """Hand one update to the handlers. False when it is finished (handled, or a flood's message stored
        and screened only): the caller marks it done; True when it failed and waits for another try.
        `screening`: its text's, when it was read ahead."""
        if (
            "message" in raw
            and self._over_budget(row.chat_key)
            and not self._answered_in_flood(row, raw, screening)
        ):
            await self._throttle(row, raw)
            return False
        update = Update.de_json(raw, self.application.bot)
        outcome = Outcome(row.update_id)
        token = CURRENT.set(outcome)
        try:
            await self.application.process_update(update)
        except Exception as error:  # PTB hands handler errors to on_error; this is anything else
            outcome.error = type(error).__name__
        finally:
            CURRENT.reset(token)
        self.runtime.metrics.inbox_handled.inc()
        if outcome.error is None or outcome.marked:
            # Marked done by the caller, after the replies went out: a process that dies before that
            # handles the update again on restart (the in-flight bound), rather than lose its reply.
            return False
        await self._failed(row, raw, outcome)
        return True

    async def _failed(self, row: store.Claimed, raw: dict[str, Any], outcome: Outcome) -> None:
        assert outcome.error is not None
        answered = await answer_crisis_without_database(self.runtime, self.application.bot, raw)
        status: InboxStatus | None = None
        try:
            async with transaction(self.runtime.sessions) as session:
                status = await store.mark_failed(
                    session,
                    row.update_id,
                    outcome.error,
                    utcnow(),
                    max_attempts=self.runtime.settings.inbox_max_attempts,
                )
        except Exception as error:  # the database is down: the lease runs out and the row is tried again
            log.warning(
                "event=intake.record_failed update_id=%s kind=%s", row.update_id, type(error).__name__
            )
        log.warning(
            "event=intake.failed update_id=%s attempt=%d status=%s kind=%s",
            row.update_id,
            row.attempts + 1,
            status,
            outcome.error,
        )
        if status is InboxStatus.PARKED:
            self.runtime.metrics.inbox_parked.inc()
        if not answered and row.attempts == 0:
            await self._apologise(raw, outcome.reference)

    async def _apologise(self, raw: dict[str, Any], reference: str | None) -> None:
        """Once per update, on its first failure: it will be tried again, but the person should not wait in
        silence. The sender's Telegram language is the best guess without the database."""
        chat_id = updates.chat_of(raw)
        if chat_id is None or chat_id < 0:
            return
        sender = next((b.get("from") for b in raw.values() if isinstance(b, dict) and "from" in b), None)
        code = sender.get("language_code") if isinstance(sender, dict) else None
        language = str(code or "").split("-")[0].lower()
        if language not in self.runtime.catalog.languages:
            language = REFERENCE_LANGUAGE
        text = self.runtime.text("error.generic", language, reference=reference or "-")
        try:
            await self.application.bot.send_message(chat_id, text)
        except Exception:
            log.warning("event=intake.apology_failed update_id=%s", raw.get("update_id"))

    # ---- fair intake -----------------------------------------------------------------------------------

    @staticmethod
    def _flooding(flood: _Flood, now: float) -> bool:
        """The chat has had its share of answers within the window (its next message is not answered)."""
        while flood.handled and now - flood.handled[0] > FLOOD_WINDOW_SECONDS:
            flood.handled.popleft()
        return len(flood.handled) >= FLOOD_BUDGET

    def _over_budget(self, chat_id: int | None) -> bool:
        """Count this update against its chat's budget; True once the chat has had its share of answers."""
        flood = self._floods.setdefault(chat_id, _Flood())
        now = time.monotonic()
        if self._flooding(flood, now):
            return True
        flood.handled.append(now)
        if len(self._floods) > 100_000:  # forget quiet chats now and then
            self._floods = {c: f for c, f in self._floods.items() if f.handled}
        return False

    def _answered_in_flood(
        self, row: store.Claimed, raw: dict[str, Any], screening: Screening | None = None
    ) -> bool:
        """Whether a message inside a flood is handled like any other (else it is stored, screened, counted
        and answered by the one "slow down" line). Always when the rules or the semantic layer page it, or
        the rules see any risk or ask (their screener, their "are you safe?"); when only the semantic
        layer's question worries, once per FLOOD_QUESTION_EVERY_SECONDS for the chat: the layer may ask about
        most of a flood's greetings, and a question for each would be a flood of our own."""
        if screening is None:
            said = parse.typed(raw)
            if said is None:
                return False
            screening = self.runtime.content.risk.screen(said.text)
        rules = screening.rules_only()
        if screening.level >= RiskLevel.HIGH:  # paged, by the rules or the layer
            return True
        if rules.level >= RiskLevel.MODERATE or rules.follow_up is not None:  # the rules' signal or question
            return True
        if not screening.semantic_question:
            return False
        flood = self._floods.setdefault(row.chat_key, _Flood())
        now = time.monotonic()
        if flood.asked_at is None or now - flood.asked_at > FLOOD_QUESTION_EVERY_SECONDS:
            flood.asked_at = now
            return True
        self.runtime.metrics.inbox_flood_questions_held.inc()
        log.info("event=intake.flood_question_held update_id=%s", row.update_id)
        return False

    async def _throttle(self, row: store.Claimed, raw: dict[str, Any]) -> None:
        flood = self._floods.setdefault(row.chat_key, _Flood())
        now = time.monotonic()
        if flood.noticed_at is None or now - flood.noticed_at > FLOOD_NOTICE_EVERY_SECONDS:
            flood.noticed_at = now
            log.info("event=intake.flood chat_update_id=%s", row.update_id)
            try:
                update = Update.de_json(raw, self.application.bot)
                context = self.application.context_types.context.from_update(update, self.application)
                await self.flood_notice(update, context)
            except Exception as error:
                log.warning("event=intake.flood_notice_failed kind=%s", type(error).__name__)
        self.runtime.metrics.inbox_throttled.inc()
