"""All time-driven work. APScheduler only drives it; the database is the source of truth.

Jobs run in the bot's event loop and keep no state of their own, so a restart loses nothing: a check-in
prompt, nudge or exercise step that fell due while the bot was down is picked up by the next tick.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from telegram import Bot

from bot import checkin, coping, flags
from bot.content import ContentError
from bot.content.loader import fingerprint
from bot.db import transaction
from bot.enrollment import purge_expired_invites
from bot.handlers import alerts, screener
from bot.handlers import checkin as checkin_handlers
from bot.handlers import coping as coping_handlers
from bot.handlers.base import Outgoing, send_all
from bot.models import CheckInSource, CheckInStatus, Patient, PatientStatus, utcnow

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

EXPIRED_INVITE_RETENTION = timedelta(days=30)
ABANDON_EXERCISE_AFTER = timedelta(hours=2)
STEP_TICK_SECONDS = 1  # exercise pauses are short: look for ended pauses every second
# Unsent first alerts (a crash right after the commit) and re-pages are looked for this often.
ESCALATION_TICK_SECONDS = 10


async def purge_invites(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        removed = await purge_expired_invites(session, older_than=EXPIRED_INVITE_RETENTION)
    if removed:
        log.info("event=invites.purged count=%d", removed)


async def checkin_tick(runtime: Runtime, bot: Bot) -> None:
    """Close expired check-ins (flagging long runs of missed ones), nudge once, and prompt who is due."""
    await _close_expired(runtime, bot)
    now = utcnow()
    nudges: list[Outgoing] = []
    async with transaction(runtime.sessions) as session:
        after = timedelta(minutes=runtime.settings.checkin_nudge_minutes)
        for row, patient in await checkin.due_nudges(session, now, after=after):
            log.info("event=checkin.nudged patient_id=%s checkin_id=%s", patient.id, row.id)
            nudges.append(checkin_handlers.nudge(runtime, patient, row))
    await send_all(bot, nudges)
    async with transaction(runtime.sessions) as session:
        patients = list(
            await session.scalars(
                select(Patient).where(
                    Patient.status == PatientStatus.ACTIVE, Patient.checkin_time.is_not(None)
                )
            )
        )
        prompts = await checkin_handlers.scheduled_prompts(runtime, session, patients)
    await send_all(bot, prompts)


async def _close_expired(runtime: Runtime, bot: Bot) -> None:
    now = utcnow()
    notices: list[Outgoing] = []
    threshold = runtime.settings.missed_checkins_flag
    async with transaction(runtime.sessions) as session:
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
            notices.extend(checkin_handlers.render_notice(runtime, n) for n in raised)
        abandoned = await coping.abandon_stale(session, now, after=ABANDON_EXERCISE_AFTER)
    if abandoned:
        log.info("event=coping.abandoned count=%d", abandoned)
    await send_all(bot, notices)


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


def build_scheduler(runtime: Runtime, bot: Bot) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    settings = runtime.settings
    scheduler.add_job(purge_invites, "interval", hours=6, args=[runtime], id="purge_invites")
    scheduler.add_job(
        checkin_tick,
        "interval",
        seconds=settings.scheduler_tick_seconds,
        args=[runtime, bot],
        id="checkin_tick",
        next_run_time=utcnow(),
    )
    scheduler.add_job(step_tick, "interval", seconds=STEP_TICK_SECONDS, args=[runtime, bot], id="step_tick")
    scheduler.add_job(
        alerts.page_due,
        "interval",
        seconds=ESCALATION_TICK_SECONDS,
        args=[runtime, bot],
        id="page_escalations",
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        screener.close_stalled,
        "interval",
        seconds=ESCALATION_TICK_SECONDS,
        args=[runtime, bot],
        id="close_stalled_screens",
    )
    if settings.content_watch_seconds > 0:
        scheduler.add_job(
            watch_content,
            "interval",
            seconds=settings.content_watch_seconds,
            args=[runtime],
            id="watch_content",
        )
    return scheduler
