"""Aftercare: check-ins at 1, 2, 4, 8 and 12 weeks after discharge, for a patient who opts in.

At discharge the patient is offered them (`OFFER_DAYS` to say yes). Yes plans all five at once, each at the
patient's own check-in time (or `DEFAULT_TIME`) in their time zone, counted from the day of the yes (the day
of discharge for most; a later yes does not find its first weeks already due, and each check-in still says
how many weeks it has been since discharge: `weeks_since_discharge`), and
makes the patient's status AFTERCARE: no daily prompts or session reminders, but the crisis path, /sos and the
safety plan work as before (`IN_CARE`). Each check-in is short (craving, mood, any use, and after a use what
was used and how, told to the care team as in the daily check-in) and asks "are you connected to ongoing
care?"; it stays open `WINDOW`, and what was answered goes to the counselor's digest.
"I'd like help" with ongoing care tells the care team. When the last one closes (or the patient stops),
the patient is discharged as before. Without a yes, discharge is what it always was. Nothing here knows
about Telegram.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin import rules as checkin_rules
from bot.core import audit
from bot.core.models import AftercareCheckIn, AftercareStatus, AuditEvent, Patient, PatientStatus
from bot.privacy.discharge import discharged_at, latest_discharge
from bot.risk import use

WEEKS = (1, 2, 4, 8, 12)
WINDOW = timedelta(days=3)  # a check-in stays open this long
OFFER_DAYS = timedelta(days=14)  # the offer at discharge can be taken up this long
DEFAULT_TIME = time(18, 0)  # for a patient without a check-in time
CRAVING_RANGE = (0, 10)
MOOD_RANGE = (1, 5)
CONNECTED = ("yes", "not_yet", "help")


DECLINED = "aftercare.declined"  # the audit action of a "no" to the offer: final


class Question(enum.StrEnum):
    CRAVING = "craving"
    MOOD = "mood"
    USE = "use"
    USE_WHAT = "use_what"  # after a "yes" only, as in the check-in
    USE_HOW = "use_how"  # "alone? injected?", only when it could still change the tier (bot.risk.use)
    CONNECTED = "connected"


ORDER = tuple(Question)
USE_QUESTIONS = frozenset({Question.USE_WHAT, Question.USE_HOW})  # the answers that tier a reported use
USE_HOW = checkin_rules.USE_HOW  # "alone", "injected", "neither": the check-in's answers


class Closed(Exception):
    """The check-in is not open (answered, closed, or someone else's)."""


class Invalid(ValueError):
    """Not an answer to this question."""


async def planned(session: AsyncSession, patient_id: int) -> bool:
    """Whether the patient ever opted in (their check-ins exist)."""
    found = await session.scalar(select(exists().where(AftercareCheckIn.patient_id == patient_id)))
    return bool(found)


async def offer_open(session: AsyncSession, patient: Patient, now: datetime) -> bool:
    """Discharged less than `OFFER_DAYS` ago from the program (active, with consent: the offer was made), and
    neither opted in nor said no since."""
    if patient.status is not PatientStatus.DISCHARGED or await planned(session, patient.id):
        return False
    discharged = await latest_discharge(session, patient.id)
    if discharged is None or (discharged.detail or {}).get("previous") != PatientStatus.ACTIVE.value:
        return False
    left = discharged.at
    declined = await session.scalar(
        select(
            exists().where(
                AuditEvent.action == DECLINED,
                AuditEvent.subject_type == "patient",
                AuditEvent.subject_id == patient.id,
                AuditEvent.at >= left,
            )
        )
    )
    return left >= now - OFFER_DAYS and not declined


async def accept(session: AsyncSession, patient: Patient, now: datetime) -> list[AftercareCheckIn]:
    """Opt in: plan the five check-ins from the day of the yes (`now`), the first about a week later, and the
    patient is in aftercare."""
    zone = ZoneInfo(patient.timezone)
    clock = patient.checkin_time or DEFAULT_TIME
    day = now.astimezone(zone).date()
    rows = [
        AftercareCheckIn(
            patient_id=patient.id,
            week=week,
            due_at=datetime.combine(day + timedelta(weeks=week), clock, tzinfo=zone),
        )
        for week in WEEKS
    ]
    session.add_all(rows)
    patient.status = PatientStatus.AFTERCARE
    await session.flush()
    _audit(session, patient, "aftercare.accepted", now)
    return rows


async def weeks_since_discharge(
    session: AsyncSession, patient: Patient, row: AftercareCheckIn, now: datetime
) -> int:
    """Whole weeks since discharge, for the check-in's hello: its week, or more after a later yes."""
    left = await discharged_at(session, patient)
    return max(row.week, (now - left) // timedelta(weeks=1))


def decline(session: AsyncSession, patient: Patient, now: datetime) -> None:
    _audit(session, patient, DECLINED, now)


async def stop(session: AsyncSession, patient: Patient, now: datetime) -> bool:
    """The patient stops aftercare: what is planned or open is cancelled; discharged as before."""
    if patient.status is not PatientStatus.AFTERCARE:
        return False
    for row in await session.scalars(
        select(AftercareCheckIn).where(
            AftercareCheckIn.patient_id == patient.id,
            AftercareCheckIn.status.in_((AftercareStatus.PLANNED, AftercareStatus.OPEN)),
        )
    ):
        row.status, row.step, row.finished_at = AftercareStatus.CANCELLED, None, now
    patient.status = PatientStatus.DISCHARGED
    _audit(session, patient, "aftercare.stopped", now)
    return True


def _audit(session: AsyncSession, patient: Patient, action: str, now: datetime) -> None:
    audit.record(
        session,
        action,
        actor_type="patient",
        actor_id=patient.id,
        subject_type="patient",
        subject_id=patient.id,
    )


async def open_due(session: AsyncSession, now: datetime) -> list[tuple[AftercareCheckIn, Patient]]:
    """Check-ins that have come due for patients in aftercare: opened here (once), before anything is sent.
    One due long ago (the bot was down) is opened late rather than never, unless a later one is due too."""
    rows = (
        await session.execute(
            select(AftercareCheckIn, Patient)
            .join(Patient, Patient.id == AftercareCheckIn.patient_id)
            .where(
                AftercareCheckIn.status == AftercareStatus.PLANNED,
                AftercareCheckIn.due_at <= now,
                Patient.status == PatientStatus.AFTERCARE,
            )
            .order_by(AftercareCheckIn.patient_id, AftercareCheckIn.week.desc())
            .with_for_update(skip_locked=True, of=AftercareCheckIn)
        )
    ).all()
    opened: list[tuple[AftercareCheckIn, Patient]] = []
    seen: set[int] = set()
    for row, patient in rows:
        if patient.id in seen:  # an older one overtaken by a later one: not asked any more
            row.status, row.finished_at = AftercareStatus.MISSED, now
            continue
        seen.add(patient.id)
        row.status, row.step = AftercareStatus.OPEN, Question.CRAVING.value
        row.asked_at, row.closes_at = now, now + WINDOW
        opened.append((row, patient))
    return opened


def _require(row: AftercareCheckIn, patient_id: int, question: Question, now: datetime) -> None:
    if row.patient_id != patient_id or row.status is not AftercareStatus.OPEN:
        raise Closed
    if row.closes_at is not None and now >= row.closes_at:
        raise Closed
    if row.step != question.value:
        raise Invalid("not the current question")


def answer(
    row: AftercareCheckIn, patient_id: int, question: Question, value: str, now: datetime
) -> Question | None:
    """Save an answer (or "skip"); the next question, None when done."""
    _require(row, patient_id, question, now)
    if value == "skip":
        row.skipped = [*(row.skipped or []), question.value]
    elif question in (Question.CRAVING, Question.MOOD):
        low, high = CRAVING_RANGE if question is Question.CRAVING else MOOD_RANGE
        number = int(value) if value.isdecimal() else -1
        if not low <= number <= high:
            raise Invalid("out of range")
        if question is Question.CRAVING:
            row.craving = number
        else:
            row.mood = number
        row.answered_at = now
    elif question is Question.USE:
        if value not in ("yes", "no"):
            raise Invalid("yes or no")
        row.used = value == "yes"
        row.answered_at = now
    elif question is Question.USE_WHAT:
        if value not in use.CHOICES:
            raise Invalid("unknown substance")
        return answer_use(row, patient_id, question, use.UseReport(frozenset({use.Substance(value)})), now)
    elif question is Question.USE_HOW:
        if value not in USE_HOW:
            raise Invalid("unknown answer")
        so_far = use_report(row) or use.UseReport()
        how = use.UseReport(so_far.substances, alone=value == "alone", injected=value == "injected")
        return answer_use(row, patient_id, question, how, now)
    else:
        if value not in CONNECTED:
            raise Invalid("unknown answer")
        row.connected = value
        row.answered_at = now
    return _move_on(row, question, now)


def answer_use(
    row: AftercareCheckIn, patient_id: int, question: Question, report: use.UseReport, now: datetime
) -> Question | None:
    """An answer to "What did you use?" (tapped, or typed and read into `report`) or to "Were you alone, or
    did you inject?"; the next question."""
    _require(row, patient_id, question, now)
    if question not in USE_QUESTIONS:
        raise Invalid("not a question about use")
    row.use_report = report.as_json()
    row.answered_at = now
    return _move_on(row, question, now)


def use_report(row: AftercareCheckIn) -> use.UseReport | None:
    """What the patient said was used and how; None if "What did you use?" was skipped or not answered."""
    return use.UseReport.from_json(row.use_report)


def use_settled(row: AftercareCheckIn, answered: Question, following: Question | None) -> bool:
    """True when the answer just given is the last word on a reported use: the care team is told now (as in
    the check-in: bot.checkin.rules.use_tier_settled)."""
    if not row.used:
        return False
    if answered is Question.USE_WHAT:
        return following is not Question.USE_HOW
    return answered is Question.USE_HOW


def _asked(row: AftercareCheckIn, question: Question) -> bool:
    if question is Question.USE_WHAT:
        return row.used is True
    if question is Question.USE_HOW:
        return use.asks_how(row.used, use_report(row))
    return True


def _move_on(row: AftercareCheckIn, answered: Question, now: datetime) -> Question | None:
    """The next question that applies (what was used only after a "yes"), or done."""
    following = next((q for q in ORDER[ORDER.index(answered) + 1 :] if _asked(row, q)), None)
    row.step = following.value if following is not None else None
    if following is None:
        row.status, row.finished_at = AftercareStatus.COMPLETE, now
    return following


async def asking_about_use(session: AsyncSession, patient_id: int, now: datetime) -> AftercareCheckIn | None:
    """The patient's open check-in if it is asking what was used, or whether they were alone or injected
    (typed words can answer those)."""
    rows = await session.scalars(
        select(AftercareCheckIn)
        .where(AftercareCheckIn.patient_id == patient_id, AftercareCheckIn.status == AftercareStatus.OPEN)
        .with_for_update()
    )
    asking = {question.value for question in USE_QUESTIONS}
    for row in rows:  # `step` is encrypted: compared here, not by the database
        if row.step in asking and (row.closes_at is None or now < row.closes_at):
            return row
    return None


async def use_unanswered(session: AsyncSession, now: datetime, wait: timedelta) -> list[AftercareCheckIn]:
    """Open check-ins where the patient said they used and then left "What did you use?" or "Were you alone?"
    unanswered for `wait`: the care team must not wait for an answer that may never come (as in the daily
    check-in: bot.checkin.rules.use_unanswered)."""
    found = await session.scalars(
        select(AftercareCheckIn)
        .where(AftercareCheckIn.status == AftercareStatus.OPEN, AftercareCheckIn.answered_at <= now - wait)
        .with_for_update(skip_locked=True)
    )
    asked = {q.value for q in USE_QUESTIONS}
    return [row for row in found if row.used is True and row.step in asked]  # `used`, `step`: encrypted


def give_up_on_use_answer(row: AftercareCheckIn, now: datetime) -> None:
    """The use question left unanswered (see `use_unanswered`) counts as skipped; the check-in moves on."""
    question = Question(row.step or Question.USE_WHAT)
    row.skipped = [*(row.skipped or []), question.value]
    _move_on(row, question, now)


async def close_expired(session: AsyncSession, now: datetime) -> list[AftercareCheckIn]:
    due = list(
        await session.scalars(
            select(AftercareCheckIn)
            .where(AftercareCheckIn.status == AftercareStatus.OPEN, AftercareCheckIn.closes_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for row in due:
        row.status = AftercareStatus.PARTIAL if row.answered_at is not None else AftercareStatus.MISSED
        row.step, row.finished_at = None, now
    return due


async def end_finished(session: AsyncSession, now: datetime) -> list[Patient]:
    """Patients in aftercare with nothing planned or open any more: discharged as before (once)."""
    waiting = select(AftercareCheckIn.patient_id).where(
        AftercareCheckIn.status.in_((AftercareStatus.PLANNED, AftercareStatus.OPEN))
    )
    patients = list(
        await session.scalars(
            select(Patient)
            .where(Patient.status == PatientStatus.AFTERCARE, Patient.id.not_in(waiting))
            .with_for_update(skip_locked=True)
        )
    )
    for patient in patients:
        patient.status = PatientStatus.DISCHARGED
        audit.record(
            session, "aftercare.ended", actor_type="system", subject_type="patient", subject_id=patient.id
        )
    return patients


@dataclass(frozen=True)
class Remaining:
    weeks: tuple[int, ...]  # the check-ins still to come


async def remaining(session: AsyncSession, patient_id: int) -> Remaining:
    weeks = await session.scalars(
        select(AftercareCheckIn.week)
        .where(AftercareCheckIn.patient_id == patient_id, AftercareCheckIn.status == AftercareStatus.PLANNED)
        .order_by(AftercareCheckIn.week)
    )
    return Remaining(tuple(weeks))
