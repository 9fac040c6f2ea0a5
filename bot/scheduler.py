"""All time-driven work. APScheduler only drives it; the database is the source of truth.

Jobs run in the bot's event loop and keep no state of their own, so a restart loses nothing: a check-in
prompt, nudge or exercise step that fell due while the bot was down is picked up by the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.checkin.jobs import checkin_tick
from bot.content import ContentError
from bot.content_check.loader import fingerprint
from bot.coping import jobs as coping_jobs
from bot.coping import rules as coping
from bot.core.db import JobLocks, transaction
from bot.core.models import utcnow
from bot.enrollment.jobs import purge_invites
from bot.handlers import coping as coping_handlers
from bot.handlers import privacy as privacy_handlers
from bot.intake import jobs as inbox_jobs
from bot.measures.jobs import measures_tick
from bot.medcare.jobs import aftercare_tick, medication_tick
from bot.outbox.dispatcher import Dispatcher
from bot.risk import jobs as risk_jobs
from bot.risk import paging
from bot.schedule import jobs as schedule_jobs
from bot.workspace import digests

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

STEP_TICK_SECONDS = 1  # exercise pauses are short: look for ended pauses every second
DIGEST_TICK_SECONDS = 300  # a digest goes within 5 minutes of its time
# Unsent first alerts (a crash right after the commit) and re-pages are looked for this often.
ESCALATION_TICK_SECONDS = 10
STOP_GRACE_SECONDS = 15  # on shutdown, how long jobs under way may take to finish


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
        await runtime.reload_content()
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
        self.locks = JobLocks(engine) if engine is not None else None
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
                if not alone or self.locks is None:
                    await job(*args)
                    return
                async with self.locks.exclusive(f"job:{id}") as held:
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
        self.aps.shutdown(wait=False)
        if self._running:
            # Their locks stay held until they end or the process exits: another process must not start the
            # same work while they are still in it.
            log.warning("event=scheduler.stop_timeout jobs=%d", len(self._running))
        elif self.locks is not None:
            await self.locks.close()


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
    scheduler.every(3600, inbox_jobs.purge_handled, runtime, id="purge_inbox", alone=True)
    scheduler.every(
        settings.scheduler_tick_seconds, checkin_tick, runtime, id="checkin_tick", now=True, alone=True
    )
    scheduler.every(
        settings.scheduler_tick_seconds, medication_tick, runtime, id="medication_tick", now=True, alone=True
    )
    scheduler.every(
        settings.scheduler_tick_seconds, aftercare_tick, runtime, id="aftercare_tick", now=True, alone=True
    )
    scheduler.every(
        settings.scheduler_tick_seconds, measures_tick, runtime, id="measures_tick", now=True, alone=True
    )
    scheduler.every(
        settings.plan_tick_seconds, schedule_jobs.plan, runtime, id="plan_reminders", now=True, alone=True
    )
    scheduler.every(
        settings.scheduler_tick_seconds,
        coping_jobs.abandon_stale,
        runtime,
        id="abandon_exercises",
        alone=True,
    )
    scheduler.every(STEP_TICK_SECONDS, step_tick, runtime, bot, id="step_tick", alone=True)
    scheduler.every(
        DIGEST_TICK_SECONDS, digests.send_digests, runtime, id="send_digests", now=True, alone=True
    )
    scheduler.every(
        ESCALATION_TICK_SECONDS, paging.page_due, runtime, id="page_escalations", now=True, alone=True
    )
    scheduler.every(
        ESCALATION_TICK_SECONDS, risk_jobs.close_stalled, runtime, id="close_stalled_screens", alone=True
    )
    scheduler.every(
        ESCALATION_TICK_SECONDS,
        risk_jobs.follow_up_safety_checks,
        runtime,
        id="follow_up_safety_checks",
        alone=True,
    )
    # A /deleteme that waited for the patient's alerts runs soon after the last one is resolved.
    scheduler.every(
        ESCALATION_TICK_SECONDS,
        privacy_handlers.erase_deferred,
        runtime,
        bot,
        id="erase_deferred",
        alone=True,
    )
    if settings.content_watch_seconds > 0:
        scheduler.every(settings.content_watch_seconds, watch_content, runtime, id="watch_content")
    return scheduler
