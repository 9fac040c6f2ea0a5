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

# Patients given a question in one tick, at most: one transaction stays short even when thousands fall due at
# once (the first day after this is deployed, or after the bot was down); the rest follow at the next ticks.
OFFERS_PER_TICK = 200


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
    of those due today; for `OFFERS_PER_TICK` patients at most. A handful of queries, whatever the number of
    patients, reading columns, not objects, until it knows whom to ask."""
    window = timedelta(hours=runtime.settings.checkin_expiry_hours)
    settings = runtime.settings
    due_now: dict[int, tuple[str, datetime]] = {}  # patient id -> (time zone, today's check-in time)
    languages: dict[int, str] = {}
    for row in await session.execute(
        select(Patient.id, Patient.timezone, Patient.checkin_time, Patient.language).where(
            outbox.may_message(), Patient.checkin_time.is_not(None)
        )
    ):
        occurrence = scheduled_occurrence(row, now)
        if occurrence is not None and occurrence <= now < occurrence + window:
            due_now[row.id] = (row.timezone, occurrence)
            languages[row.id] = row.language
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
    # The oldest open questionnaire of each patient (the one to carry on): id, started, asked again on.
    first_open: dict[int, tuple[int, datetime, date | None]] = {}
    for measure_id, patient_id, started_at, reasked_on in await session.execute(
        select(Measure.id, Measure.patient_id, Measure.started_at, Measure.reasked_on)
        .where(Measure.patient_id.in_(ids), Measure.status == MeasureStatus.OPEN)
        .order_by(Measure.started_at, Measure.id)
    ):
        first_open.setdefault(patient_id, (measure_id, started_at, reasked_on))
    earliest = min(occurrence.date() for _, occurrence in due_now.values())
    offered_on: dict[int, set[date]] = defaultdict(set)
    for patient_id, day in await session.execute(
        select(Measure.patient_id, Measure.scheduled_for).where(
            Measure.patient_id.in_(ids), Measure.scheduled_for >= earliest
        )
    ):
        if day is not None:
            offered_on[patient_id].add(day)
    resume: dict[int, int] = {}  # patient id -> the questionnaire to ask again
    candidates: list[int] = []  # patients with nothing open and nothing offered today: maybe one is due
    for patient_id, (_, occurrence) in due_now.items():
        day = occurrence.date()
        waiting = first_open.get(patient_id)
        if patient_id in screening:
            continue  # crisis first: nothing over the screener
        if waiting is not None:
            measure_id, started_at, reasked_on = waiting
            if reasked_on != day and started_at < occurrence:  # else asked today already
                resume[patient_id] = measure_id
        elif day not in offered_on.get(patient_id, set()):
            candidates.append(patient_id)
    due = await _due(runtime, session, {pid: due_now[pid] for pid in candidates}, languages)
    chosen = [*resume, *due][:OFFERS_PER_TICK]
    if not chosen:
        return []
    patients = {p.id: p for p in await session.scalars(select(Patient).where(Patient.id.in_(chosen)))}
    messages: list[outbox.Planned] = []
    started: dict[int, list[Measure]] = {}
    for patient_id in chosen:
        patient = patients[patient_id]
        day = due_now[patient_id][1].date()
        if patient_id in resume:
            current = await session.get_one(Measure, resume[patient_id], with_for_update=True)
            current.reasked_on = day
            log.info("event=measure.reasked patient_id=%s measure_id=%s", patient_id, current.id)
            intro = runtime.text("measures.resumed", patient.language)
            messages.append(
                prompts.planned(runtime, patient, current, "measure_resume", intro, day=day.toordinal())
            )
            continue
        started[patient_id] = []
        for instrument_id in due[patient_id][: settings.measures_per_day]:
            definition = runtime.measures.reference(instrument_id)
            assert definition is not None  # `_due` names only questionnaires content has
            measure = await rules.start(
                session,
                patient,
                definition,
                now,
                expiry=timedelta(days=settings.measure_expiry_days),
                source=MeasureSource.SCHEDULED,
                scheduled_for=day,
                flush=False,  # all in one go below: this job runs in one process at a time
            )
            assert measure is not None
            started[patient_id].append(measure)
    await session.flush()
    for patient_id, created in started.items():
        patient = patients[patient_id]
        for measure in created:
            log.info(
                "event=measure.started patient_id=%s measure_id=%s instrument=%s source=scheduled",
                patient_id,
                measure.id,
                measure.instrument,
            )
        intro = prompts.opening(
            runtime, patient.language, created[0], "measures.intro_scheduled", count=len(created)
        )
        messages.append(prompts.planned(runtime, patient, created[0], "measure_prompt", intro))
    return messages


async def _due(
    runtime: Runtime,
    session: AsyncSession,
    patients: dict[int, tuple[str, datetime]],
    languages: dict[int, str],
) -> dict[int, list[str]]:
    """The questionnaires due today for each of `patients` (id -> time zone, today's check-in time), in the
    clinic's order; only those with one due. Questionnaires content does not have are left out (logged), and
    so are those whose translation in the patient's language is unofficial and not clinically reviewed
    (`InstrumentLibrary.offered_in`; /patient tells the counselor)."""
    if not patients:
        return {}
    settings = runtime.settings
    chosen = await rules.overrides(session, list(patients))
    longest = max(
        [days for _, days in settings.measures]
        + [days for plan in chosen.values() for days in plan.values() if days is not None],
        default=0,
    )
    # Only the questionnaires started within the longest interval can make one not due yet.
    started = await rules.last_started(
        session,
        {pid: zone for pid, (zone, _) in patients.items()},
        since=min(o for _, o in patients.values()) - timedelta(days=longest + 1),
    )
    order = rules.order(settings.measures, runtime.measures.ids())
    found: dict[int, list[str]] = {}
    for patient_id, (_, occurrence) in patients.items():
        every = rules.effective(settings.measures, chosen.get(patient_id, {}))
        due = scoring.due(every, started.get(patient_id, {}), occurrence.date(), order)
        known = [i for i in due if runtime.measures.reference(i) is not None]
        if len(known) < len(due):
            log.warning("event=measure.unknown_instrument patient_id=%s", patient_id)
        offered = [i for i in known if runtime.measures.offered_in(i, languages[patient_id])]
        if len(offered) < len(known):
            log.info("event=measure.held_back patient_id=%s", patient_id)
        if offered:
            found[patient_id] = offered
    return found
