"""All time-driven work. APScheduler only drives it; the database is the source of truth.

Jobs run in the bot's event loop and keep no state of their own, so a restart loses nothing: a check-in
prompt, nudge or exercise step that fell due while the bot was down is picked up by the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.checkin import rules as checkin
from bot.content import ContentError
from bot.content_check.loader import fingerprint
from bot.coping import rules as coping
from bot.core.db import exclusive, transaction
from bot.core.models import CheckInSource, CheckInStatus, Patient, utcnow
from bot.enrollment.invites import purge_expired_invites
from bot.handlers import alerts, screener
from bot.handlers import caseload as caseload_handlers
from bot.handlers import checkin as checkin_handlers
from bot.handlers import coping as coping_handlers
from bot.handlers import schedule as schedule_handlers
from bot.outbox import store as outbox
from bot.outbox.dispatcher import Dispatcher
from bot.workspace import flags
from bot.workspace import notices as notices_handlers

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

EXPIRED_INVITE_RETENTION = timedelta(days=30)
ABANDON_EXERCISE_AFTER = timedelta(hours=2)
STEP_TICK_SECONDS = 1  # exercise pauses are short: look for ended pauses every second
DIGEST_TICK_SECONDS = 300  # a digest goes within 5 minutes of its time
# Unsent first alerts (a crash right after the commit) and re-pages are looked for this often.
ESCALATION_TICK_SECONDS = 10
STOP_GRACE_SECONDS = 15  # on shutdown, how long jobs under way may take to finish


async def purge_invites(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        removed = await purge_expired_invites(session, older_than=EXPIRED_INVITE_RETENTION)
    if removed:
        log.info("event=invites.purged count=%d", removed)


async def checkin_tick(runtime: Runtime) -> None:
    """Close expired check-ins (flagging long runs of missed ones), nudge once, and prompt who is due. The
    messages go through the outbox, in the same transaction as the check-ins they belong to."""
    queued = await _close_expired(runtime)
    now = utcnow()
    async with transaction(runtime.sessions) as session:
        after = timedelta(minutes=runtime.settings.checkin_nudge_minutes)
        nudges = []
        for row, patient in await checkin.due_nudges(session, now, after=after):
            log.info("event=checkin.nudged patient_id=%s checkin_id=%s", patient.id, row.id)
            nudges.append(checkin_handlers.nudge(runtime, patient, row))
        queued += await outbox.enqueue(session, nudges)
    async with transaction(runtime.sessions) as session:
        patients = list(
            await session.scalars(
                select(Patient).where(outbox.may_message(), Patient.checkin_time.is_not(None))
            )
        )
        queued += await outbox.enqueue(
            session, await checkin_handlers.scheduled_prompts(runtime, session, patients)
        )
    if queued:
        runtime.wake_outbox()


async def _close_expired(runtime: Runtime) -> int:
    now = utcnow()
    threshold = runtime.settings.missed_checkins_flag
    async with transaction(runtime.sessions) as session:
        notices: list[outbox.Planned] = []
        for row in await checkin.close_expired(session, now):
            log.info("event=checkin.closed checkin_id=%s status=%s", row.id, row.status)
            if row.status is not CheckInStatus.MISSED or row.source is not CheckInSource.SCHEDULED:
                continue
            if await checkin.missed_in_a_row(session, row.patient_id) != threshold:
                continue  # flagged once per run of missed days, when it reaches the threshold
            patient = await session.get_one(Patient, row.patient_id)
            raised = await flags.raise_flag(
                session, patient, flags.FlagKind.MISSED_CHECKINS, now, count=threshold, checkin_id=row.id
            )
            notices.extend(notices_handlers.render_notice(runtime, n, key=str(row.id)) for n in raised)
        abandoned = await coping.abandon_stale(session, now, after=ABANDON_EXERCISE_AFTER)
        queued = await outbox.enqueue(session, notices)
    if abandoned:
        log.info("event=coping.abandoned count=%d", abandoned)
    return queued


async def step_tick(runtime: Runtime, bot: Bot) -> None:
    """Show the next step of every exercise whose pause has ended."""
    async with transaction(runtime.sessions) as session:
        due = [(run.id, run.step_index) for run in await coping.due_steps(session, utcnow())]
    for run_id, step in due:
        await coping_handlers.pause_over(runtime, bot, run_id, step)


async def watch_content(runtime: Runtime) -> None:
    """Serve edited content as soon as it is saved, if it passes the check; else keep the last good one."""
    stamp = fingerprint(runtime.settings.content_dir)
    if stamp in (runtime.content.fingerprint, runtime.refused_fingerprint):
        return
    try:
        runtime.reload_content()
    except ContentError as error:
        runtime.refused_fingerprint = stamp  # said once; the next edit is looked at again
        log.warning("event=content.reload_refused problems=%d", len(error.problems))
        for problem in error.problems[:20]:
            log.warning("event=content.problem %s", problem)  # file paths and rules: no health data
        return
    log.info("event=content.reloaded by=watcher")


class Scheduler:
    """APScheduler's AsyncIOScheduler with a graceful stop: no new job starts, and those under way finish
    their transaction instead of being cancelled in the middle of it.

    With several bot processes on one PostgreSQL database, a job marked `alone` runs in one process at a
    time (an advisory lock named after the job); the others skip that run. The outbox needs no such lock:
    its rows are claimed with leases and SKIP LOCKED, so every process sends."""

    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self.aps = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.engine = engine
        self._running: set[asyncio.Task[Any]] = set()

    def every(
        self,
        seconds: float,
        job: Callable[..., Awaitable[Any]],
        *args: Any,
        id: str,
        now: bool = False,
        max_instances: int = 1,
        alone: bool = False,
    ) -> None:
        async def tracked() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                if not alone or self.engine is None:
                    await job(*args)
                    return
                async with exclusive(self.engine, f"job:{id}") as held:
                    if held:
                        await job(*args)
                    else:
                        log.debug("event=job.skipped job=%s reason=running_elsewhere", id)
            finally:
                self._running.discard(task)

        first: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if now else {}  # None would pause it
        self.aps.add_job(tracked, "interval", seconds=seconds, id=id, max_instances=max_instances, **first)

    def run_at(self, job_id: str, when: datetime) -> None:
        """Run a job early (at `when`) if it is not due sooner anyway."""
        job = self.aps.get_job(job_id)
        if job is not None and (job.next_run_time is None or when < job.next_run_time):
            job.modify(next_run_time=when)

    def start(self) -> None:
        self.aps.start()

    async def stop(self) -> None:
        self.aps.pause()
        if self._running:
            await asyncio.wait(set(self._running), timeout=STOP_GRACE_SECONDS)
        if self._running:
            log.warning("event=scheduler.stop_timeout jobs=%d", len(self._running))
        self.aps.shutdown(wait=False)


def build_scheduler(runtime: Runtime, bot: Bot, dispatcher: Dispatcher) -> Scheduler:
    scheduler = Scheduler(runtime.engine)
    settings = runtime.settings
    # a wake-up may come as a run ends; `drain` itself never runs twice at once
    scheduler.every(
        settings.dispatch_tick_seconds, dispatcher.drain, id="dispatch_outbox", now=True, max_instances=2
    )
    dispatcher.on_wake(lambda when: scheduler.run_at("dispatch_outbox", when))
    runtime.wake_outbox = dispatcher.wake
    # The rest looks at the whole database: one process at a time.
    scheduler.every(6 * 3600, purge_invites, runtime, id="purge_invites", alone=True)
    scheduler.every(
        settings.scheduler_tick_seconds, checkin_tick, runtime, id="checkin_tick", now=True, alone=True
    )
    scheduler.every(
        settings.plan_tick_seconds, schedule_handlers.plan, runtime, id="plan_reminders", now=True, alone=True
    )
    scheduler.every(STEP_TICK_SECONDS, step_tick, runtime, bot, id="step_tick", alone=True)
    scheduler.every(
        DIGEST_TICK_SECONDS, caseload_handlers.send_digests, runtime, id="send_digests", now=True, alone=True
    )
    scheduler.every(
        ESCALATION_TICK_SECONDS, alerts.page_due, runtime, id="page_escalations", now=True, alone=True
    )
    scheduler.every(
        ESCALATION_TICK_SECONDS, screener.close_stalled, runtime, id="close_stalled_screens", alone=True
    )
    if settings.content_watch_seconds > 0:
        scheduler.every(settings.content_watch_seconds, watch_content, runtime, id="watch_content")
    return scheduler
