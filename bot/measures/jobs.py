"""The questionnaires' time-driven work: close expired ones, and at each patient's check-in time offer the
questionnaires due (or carry on with one left open).

A questionnaire is due when the patient's schedule (the MEASURES setting, or a counselor's choice) says so:
at the first check-in time after set-up, then every so many days after it was last offered. It is offered at
the patient's check-in time (within the check-in's own window, CHECKIN_EXPIRY_HOURS, so a bot that was down
at that moment still offers it that evening), at most MEASURES_PER_DAY a day, one after the other. One left
unanswered is asked again, where it stopped, at the next check-in time, until it expires. Nothing is offered
while the suicide screener is open: crisis first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.checkin.rules import scheduled_occurrence
from bot.core.db import transaction
from bot.core.models import (
    Measure,
    MeasureSource,
    MeasureStatus,
    Patient,
    ScreenStatus,
    SuicideScreen,
    utcnow,
)
from bot.measures import prompts, rules, scoring
from bot.outbox import store as outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def measures_tick(runtime: Runtime) -> None:
    """Close expired questionnaires, then offer those due at the check-in time (through the outbox, in the
    same transaction as the questionnaires they ask)."""
    now = utcnow()
    async with transaction(runtime.sessions) as session:
        for measure in await rules.close_expired(session, now):
            log.info("event=measure.expired measure_id=%s patient_id=%s", measure.id, measure.patient_id)
    async with transaction(runtime.sessions) as session:
        queued = await outbox.enqueue(session, await offers(runtime, session, now))
    if queued:
        runtime.wake_outbox()


async def offers(runtime: Runtime, session: AsyncSession, now: datetime) -> list[outbox.Planned]:
    """The questions to send now: for each patient whose check-in time has come (and is not past the
    check-in's window), the current question of a questionnaire left open (once a day), or the first question
    of those due today. A handful of queries, whatever the number of patients."""
    window = timedelta(hours=runtime.settings.checkin_expiry_hours)
    patients = await session.scalars(
        select(Patient).where(outbox.may_message(), Patient.checkin_time.is_not(None))
    )
    due_now: dict[int, tuple[Patient, datetime]] = {}
    for patient in patients:
        occurrence = scheduled_occurrence(patient, now)
        if occurrence is not None and occurrence <= now < occurrence + window:
            due_now[patient.id] = (patient, occurrence)
    if not due_now:
        return []
    ids = list(due_now)
    screening = set(
        await session.scalars(
            select(SuicideScreen.patient_id).where(
                SuicideScreen.patient_id.in_(ids), SuicideScreen.status == ScreenStatus.OPEN
            )
        )
    )
    open_by: dict[int, list[Measure]] = defaultdict(list)
    for measure in await session.scalars(
        select(Measure)
        .where(Measure.patient_id.in_(ids), Measure.status == MeasureStatus.OPEN)
        .order_by(Measure.started_at, Measure.id)
    ):
        open_by[measure.patient_id].append(measure)
    offered_on: dict[int, set[date]] = defaultdict(set)
    earliest = min(occurrence.date() for _, occurrence in due_now.values())
    for patient_id, day in await session.execute(
        select(Measure.patient_id, Measure.scheduled_for).where(
            Measure.patient_id.in_(ids), Measure.scheduled_for >= earliest
        )
    ):
        if day is not None:
            offered_on[patient_id].add(day)
    chosen = await rules.overrides(session, ids)
    started = await rules.last_started(session, {pid: p.timezone for pid, (p, _) in due_now.items()})
    settings = runtime.settings
    order = rules.order(settings.measures, runtime.measures.ids())
    messages: list[outbox.Planned] = []
    for patient_id, (patient, occurrence) in due_now.items():
        day = occurrence.date()
        if patient_id in screening:
            continue  # crisis first: nothing over the screener
        waiting = open_by.get(patient_id)
        if waiting:
            current = waiting[0]
            if current.reasked_on == day or current.started_at >= occurrence:
                continue  # asked today already
            current.reasked_on = day
            log.info("event=measure.reasked patient_id=%s measure_id=%s", patient_id, current.id)
            intro = runtime.text("measures.resumed", patient.language)
            messages.append(
                prompts.planned(runtime, patient, current, "measure_resume", intro, day=day.toordinal())
            )
            continue
        if day in offered_on.get(patient_id, set()):
            continue
        every = rules.effective(settings.measures, chosen.get(patient_id, {}))
        due = scoring.due(every, started.get(patient_id, {}), day, order)
        created: list[Measure] = []
        for instrument_id in due:
            if len(created) >= settings.measures_per_day:
                break
            definition = runtime.measures.reference(instrument_id)
            if definition is None:
                log.warning("event=measure.unknown_instrument instrument=%s", instrument_id)
                continue
            started_now = await rules.start(
                session,
                patient,
                definition,
                now,
                expiry=timedelta(days=settings.measure_expiry_days),
                source=MeasureSource.SCHEDULED,
                scheduled_for=day,
            )
            if started_now is not None:
                created.append(started_now)
                log.info(
                    "event=measure.started patient_id=%s measure_id=%s instrument=%s source=scheduled",
                    patient_id,
                    started_now.id,
                    instrument_id,
                )
        if created:
            first = created[0]
            intro = prompts.opening(
                runtime, patient.language, first, "measures.intro_scheduled", count=len(created)
            )
            messages.append(prompts.planned(runtime, patient, first, "measure_prompt", intro))
    return messages
