"""The outbox's sender: claims due rows (`bot.outbox.store`), sends them within Telegram's limits, records
results.

Pacing: the application's limiter (bot.outbox.limiter) holds every call to the overall rate
(SEND_RATE_PER_SECOND, Telegram allows about 30/s), urgent rows in its urgent lane; here each chat gets at
most one outbox message a second. RetryAfter puts the row back for as long as Telegram asks; 403 (the patient
blocked the bot) marks them unreachable and tells the care team once; timeouts and 5xx are retried with
backoff; a row out of attempts is marked failed and logged.

Results are written in small batches by one recorder, so a crash repeats at most the rows in flight: claimed
and sent, not yet recorded: at most a batch and a half plus the sends under way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.core import presence
from bot.core.db import transaction
from bot.core.models import OutboxMessage, Priority, utcnow
from bot.core.presence import worker_name
from bot.outbox import store as outbox
from bot.outbox.limiter import urgent
from bot.outbox.markup import Rows

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

PER_CHAT_GAP = 1.0  # seconds between two outbox messages to one chat
CLOSE_GRACE_SECONDS = 10  # on shutdown, how long sends under way may take to finish and be recorded
RECORD_EVERY = 0.05  # seconds: how long a result may wait to be written with others
UNTRIED = ("shutdown", "lease_expired", "gone")  # outcomes of rows not sent, and not because Telegram refused
CLAIM_BACKOFF_BASE = timedelta(seconds=0.5)  # after a claim the database refused, the first wait
CLAIM_BACKOFF_MAX = timedelta(seconds=10)  # ... doubling up to this: never a tight loop of errors
URGENT_CLAIM_SECONDS = 1.0  # woken by urgent work, the claim is urgent work too until made, this long at most

FollowUp = Callable[[Bot], Awaitable[object]]
AfterSent = Callable[["Runtime", AsyncSession, outbox.Claimed, int], Awaitable[FollowUp | None]]
"""What to write once a row of a kind is sent (an alert page keeps its message id to edit it later), in the
transaction that records it; it may return a follow-up to run with the bot after the commit."""
Blocked = Callable[["Runtime", AsyncSession, int], Awaitable[None]]
"""What to do, in the transaction that records it, when a patient (by id) turns out to have blocked us."""


@dataclass(frozen=True)
class Outcome:
    row: outbox.Claimed
    message_id: int | None = None  # sent
    retry_after: float | None = None  # Telegram asked us to wait
    error: str | None = None
    final: bool = False  # refused for good (blocked, bad request): no retry


class Dispatcher:
    """One per process. `drain()` is the scheduler's dispatch job; `wake()` runs it now (a fresh alert)."""

    def __init__(
        self,
        runtime: Runtime,
        bot: Bot,
        *,
        after_sent: Mapping[str, AfterSent] | None = None,
        on_blocked: Blocked | None = None,
    ) -> None:
        self.runtime = runtime
        self.bot = bot
        self.after_sent = dict(after_sent or {})
        self.on_blocked = on_blocked
        self.worker = worker_name("out")
        # Rows a process that has ended was sending (killed with a crisis reply claimed, say) go again
        # within seconds, not when their lease runs out: looked for before a claim (bot.core.presence).
        self._taking_back = presence.TakingBack(runtime.sessions, OutboxMessage)
        settings = runtime.settings
        self.concurrency = settings.outbox_concurrency
        # Half a second of sending per claim: an alert enqueued meanwhile waits at most about that long.
        self.batch = max(5, min(500, int(settings.send_rate_per_second / 2)))
        self.lease = timedelta(seconds=settings.outbox_lease_seconds)
        self._next_slot: dict[int, float] = {}
        self._woken = asyncio.Event()
        self._running = False
        self._closing = False
        self._sending = 0  # sends under way
        self._follow_ups: set[asyncio.Task[None]] = set()
        self._wake_job: Callable[[datetime], None] | None = None
        self._claim_failures = 0  # claims refused in a row (the database locked, gone, or erring)
        self._resume_at: datetime | None = None  # after such a failure, no claim before then
        # Urgent work under way (`Runtime.precedence`, the other chats' turns give way to it): the urgent
        # rows claimed and not yet tried, and a wake-up by urgent work (a crisis turn's commit) until the
        # claim it asked for.
        self._urgent_held: set[int] = set()
        self._woken_urgently: asyncio.TimerHandle | None = None  # ends it if no claim comes meanwhile

    def on_wake(self, callback: Callable[[datetime], None]) -> None:
        """How to run `drain` at a given time (the scheduler moves its dispatch job)."""
        self._wake_job = callback

    def wake(self) -> None:
        if self.runtime.precedence.held and self._woken_urgently is None:
            # Woken by urgent work (a crisis turn that has just committed its reply): that goes on until
            # the reply is claimed (URGENT_CLAIM_SECONDS at most), and then until it is sent.
            loop = asyncio.get_running_loop()  # first: nothing is taken if there is no loop to give it back
            self._woken_urgently = loop.call_later(URGENT_CLAIM_SECONDS, self._claimed_urgently)
            self.runtime.precedence.take()
        self._woken.set()
        if not self._running and self._wake_job is not None:
            self._wake_job(utcnow())

    async def drain(self) -> int:
        """Send everything due, then return; runs again at once if woken meanwhile."""
        if self._running:
            return 0  # the pass under way claims again
        if self._closing:
            self._claimed_urgently()
            return 0
        if self._resume_at is not None and utcnow() < self._resume_at:
            self._claimed_urgently()  # nothing is claimed before then: the others need not wait for it
            if self._wake_job is not None:  # backing off after a refused claim: run at its end, not now
                self._wake_job(self._resume_at)
            return 0
        self._running = True
        total = 0
        try:
            while True:
                self._woken.clear()
                total += await self._drain_once()
                if not self._woken.is_set() or self._resume_at is not None:
                    break
        finally:
            self._running = False
            self._claimed_urgently()
        await self._wake_when_due()
        return total

    async def _wake_when_due(self) -> None:
        """Run again exactly when the next row falls due (a reminder at 17:00:00), not at the next tick."""
        if self._wake_job is None:
            return
        if self._resume_at is not None:  # the last claim failed: not at once, after the backoff
            self._wake_job(self._resume_at)
            return
        async with self.runtime.sessions() as session:
            due = await outbox.next_due(session)
        tick = timedelta(seconds=self.runtime.settings.dispatch_tick_seconds)
        if due is not None and due < utcnow() + tick:
            self._wake_job(max(due, utcnow()))

    async def _drain_once(self) -> int:
        queue: asyncio.Queue[outbox.Claimed | None] = asyncio.Queue()
        results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        recorder = asyncio.create_task(self._record(results))
        workers = [asyncio.create_task(self._work(queue, results)) for _ in range(self.concurrency)]
        handed = 0
        try:
            first = True
            while not self._closing:
                await self._taking_back.look()
                try:
                    async with transaction(self.runtime.sessions) as session:
                        now = utcnow()
                        if first:  # once a pass: what has become moot since the last one
                            await self._tidy(session, now)
                            first = False
                        rows = await outbox.claim(
                            session, self.worker, now, limit=self.batch, lease=self.lease
                        )
                except Exception as error:
                    # The database said no (locked, connection lost): send and record what is in hand,
                    # then try again after a backoff that grows while it keeps failing.
                    self._claim_failed(error)
                    break
                for row in rows:
                    if row.priority >= Priority.URGENT and row.id not in self._urgent_held:
                        self._urgent_held.add(row.id)  # a row claimed again after its lease: one hold
                        self.runtime.precedence.take()
                self._claimed_urgently()
                self._claim_failures, self._resume_at = 0, None
                if not rows:
                    # Nothing more due: let the sends under way finish, but claim again at once if woken
                    # meanwhile (a crisis reply must not wait for a slow or paced send to another chat).
                    await _until(
                        lambda: self._woken.is_set() or self._closing or (queue.empty() and not self._sending)
                    )
                    if self._woken.is_set() and not self._closing:
                        self._woken.clear()
                        continue
                    break
                for row in rows:
                    queue.put_nowait(row)
                handed += len(rows)
                # Claim the next batch when half of this one has been handed out, or at once when woken:
                # sends never wait on a claim, yet urgent rows enqueued meanwhile overtake, and a crash
                # leaves few rows claimed.
                await _until(
                    lambda: queue.qsize() <= self.batch // 2 or self._closing or self._woken.is_set()
                )
                self._woken.clear()
        except asyncio.CancelledError:
            # The process is going down hard: what was sent and not recorded may go again once its lease
            # ends, which is the in-flight window; nothing is lost.
            for task in [*workers, recorder]:
                task.cancel()
            self._give_back_holds()
            raise
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers, return_exceptions=True)
        results.put_nowait(None)
        await recorder
        self._give_back_holds()  # every row of the pass is tried or given back: none is urgent work now
        return handed

    def _give_back_holds(self) -> None:
        for _ in range(len(self._urgent_held)):
            self.runtime.precedence.give()
        self._urgent_held.clear()

    def _claimed_urgently(self) -> None:
        """The claim a wake-up by urgent work asked for has been made (or will not be soon)."""
        if self._woken_urgently is not None:
            self._woken_urgently.cancel()
            self._woken_urgently = None
            self.runtime.precedence.give()

    def _tried(self, row: outbox.Claimed) -> None:
        """An urgent row is no longer urgent work under way (tried, or waiting for its chat's pace)."""
        if row.id in self._urgent_held:
            self._urgent_held.discard(row.id)
            self.runtime.precedence.give()

    def _claim_failed(self, error: Exception) -> None:
        self._claim_failures += 1
        wait = min(CLAIM_BACKOFF_BASE * 2 ** min(self._claim_failures - 1, 10), CLAIM_BACKOFF_MAX)
        self._resume_at = utcnow() + wait
        if self._claim_failures == 1 or wait == CLAIM_BACKOFF_MAX:  # the first, then one per backoff at most
            log.exception("event=outbox.claim_failed failures=%d", self._claim_failures)
        else:
            log.warning(
                "event=outbox.claim_failed failures=%d error=%s", self._claim_failures, type(error).__name__
            )

    async def _tidy(self, session: AsyncSession, now: datetime) -> None:
        dropped = await outbox.drop_expired(session, now)
        moot = await outbox.cancel_unwanted(session, now)
        if dropped:
            log.info("event=outbox.dropped count=%d reason=expired", dropped)
        if moot:
            log.info("event=outbox.cancelled count=%d reason=patient_inactive", moot)

    async def close(self) -> None:
        """Stop claiming; let the sends under way finish and be recorded; give back what was not tried."""
        self._closing = True
        try:
            async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                await _until(lambda: not self._running)
        except TimeoutError:
            log.warning("event=outbox.close_timeout")
        if self._follow_ups:  # edits after a send (an acknowledgement shown on a late copy): let them finish
            await asyncio.wait(set(self._follow_ups), timeout=CLOSE_GRACE_SECONDS)

    async def _work(
        self, queue: asyncio.Queue[outbox.Claimed | None], results: asyncio.Queue[Outcome | None]
    ) -> None:
        while (row := await queue.get()) is not None:
            if self._closing:
                results.put_nowait(Outcome(row, error="shutdown"))  # given back untried
                self._tried(row)
                continue
            self._sending += 1
            try:
                results.put_nowait(await self._send(row))
            finally:
                self._sending -= 1
                self._tried(row)

    async def _pace(self, chat_id: int) -> None:
        """At most one outbox message per chat per second (Telegram's per-chat limit)."""
        now = time.monotonic()
        slot = max(now, self._next_slot.get(chat_id, 0.0))
        self._next_slot[chat_id] = slot + PER_CHAT_GAP
        if slot > now:
            await asyncio.sleep(slot - now)
        if len(self._next_slot) > 50_000:  # forget chats whose slot has long passed
            self._next_slot = {c: s for c, s in self._next_slot.items() if s > now}

    async def _send(self, row: outbox.Claimed) -> Outcome:
        if self._next_slot.get(row.chat_id, 0.0) > time.monotonic():
            self._tried(row)  # a crisis reply's second message, a second to go: the others need not wait
        await self._pace(row.chat_id)
        if self._closing:
            return Outcome(row, error="shutdown")  # given back untried
        if utcnow() >= row.claimed_until:
            return Outcome(row, error="lease_expired")  # another process may hold it now: do not send
        if not await self._still_held(row):
            return Outcome(row, error="gone")  # erased or cancelled since it was claimed: not sent
        markup = keyboard(row.buttons) if row.buttons else None
        try:
            with urgent(row.priority >= Priority.URGENT):  # ahead of everyone's replies waiting for the rate
                message = await self.bot.send_message(row.chat_id, row.text, reply_markup=markup)
        except RetryAfter as error:
            with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta: both are read
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = error.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return Outcome(row, retry_after=seconds, error="retry_after")
        except Forbidden:
            return Outcome(row, error="blocked", final=True)
        except BadRequest as error:
            log.warning("event=outbox.refused outbox_id=%s kind=%s", row.id, row.kind)
            return Outcome(row, error=f"bad_request:{error.message[:28]}", final=True)
        except TelegramError as error:  # timeouts, 5xx, network: try again later
            return Outcome(row, error=type(error).__name__)
        except Exception as error:  # never let one row stop the others
            log.exception("event=outbox.send_error outbox_id=%s", row.id)
            return Outcome(row, error=type(error).__name__)
        return Outcome(row, message_id=message.message_id)

    async def _still_held(self, row: outbox.Claimed) -> bool:
        """Read just before the send, after its wait for the chat's pace (up to seconds): a patient erased
        meanwhile (`/deleteme` right after `/mydata`) is sent nothing more. What remains is a send already
        on its way when the erasure commits. If the database cannot say, the row is sent (a crisis reply
        must not wait on it)."""
        try:
            async with self.runtime.sessions() as session:
                return await outbox.still_held(session, self.worker, row.id)
        except Exception as error:
            log.warning("event=outbox.check_failed outbox_id=%s kind=%s", row.id, type(error).__name__)
            return True

    async def _record(self, results: asyncio.Queue[Outcome | None]) -> None:
        done = False
        while not done:
            first = await results.get()
            batch: list[Outcome] = []
            if first is None:
                done = True
            else:
                batch.append(first)
                await asyncio.sleep(RECORD_EVERY)
                while not results.empty():
                    item = results.get_nowait()
                    if item is None:
                        done = True
                        break
                    batch.append(item)
            if batch:
                for outcome in batch:
                    if outcome.error is not None and outcome.error not in UNTRIED:
                        self.runtime.metrics.send_error(outcome.error)
                await self._write_with_retry(batch)

    async def _write_with_retry(self, batch: list[Outcome]) -> None:
        for attempt in range(3):
            try:
                await self._write(batch)
                return
            except Exception:
                if attempt == 2:
                    # The rows stay claimed until their lease ends, then go again: a repeat, never a loss.
                    log.exception("event=outbox.record_failed rows=%d", len(batch))
                    return
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _write(self, batch: list[Outcome]) -> None:
        settings = self.runtime.settings
        follow_ups: list[FollowUp] = []
        async with transaction(self.runtime.sessions) as session:
            now = utcnow()
            sent = [(o.row, o.message_id) for o in batch if o.message_id is not None]
            await outbox.mark_sent(session, self.worker, sent, now)
            for row, message_id in sent:
                hook = self.after_sent.get(row.kind)
                follow_up = await hook(self.runtime, session, row, message_id) if hook else None
                if follow_up is not None:
                    follow_ups.append(follow_up)
            for o in batch:
                if o.message_id is not None:
                    continue
                assert o.error is not None
                if o.final:
                    await outbox.mark_failed(session, self.worker, o.row, o.error)
                    log.warning(
                        "event=outbox.failed outbox_id=%s kind=%s error=%s", o.row.id, o.row.kind, o.error
                    )
                    if o.error == "blocked" and o.row.patient_id is not None and self.on_blocked:
                        await self.on_blocked(self.runtime, session, o.row.patient_id)
                    continue
                wait = timedelta(seconds=o.retry_after) if o.retry_after is not None else None
                if o.error in ("lease_expired", "gone"):
                    continue  # not ours any more, or no more
                if o.error == "shutdown":
                    await outbox.release(session, self.worker, [o.row])
                    continue
                if await outbox.mark_retry(
                    session,
                    self.worker,
                    o.row,
                    o.error,
                    now,
                    max_attempts=settings.outbox_max_attempts,
                    wait=wait,
                ):
                    log.error(
                        "event=outbox.gave_up outbox_id=%s kind=%s error=%s", o.row.id, o.row.kind, o.error
                    )
                else:
                    log.info("event=outbox.retry outbox_id=%s error=%s", o.row.id, o.error)
        for follow_up in follow_ups:  # their own tasks: recording the next results must not wait for them
            task = asyncio.create_task(self._follow(follow_up))
            self._follow_ups.add(task)
            task.add_done_callback(self._follow_ups.discard)

    async def _follow(self, follow_up: FollowUp) -> None:
        try:
            await follow_up(self.bot)
        except Exception as error:
            log.warning("event=outbox.follow_up_failed kind=%s", type(error).__name__)


def keyboard(rows: Rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the queue has no "shrunk below" event to wait on
        await asyncio.sleep(0.01)
