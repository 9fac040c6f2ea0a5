"""Medication support: a patient's reminders (opt-in, set by them or their counselor), the daily dose question
and its answers, and refill or shot reminders.

A daily dose is asked about at the plan's `dose_time` in the patient's own time zone; the question stays open
for `DOSE_WINDOW` (a "Not yet" is asked once more `ASK_AGAIN` later, the window stretched if it would close
before then). Two days in a row answered "Missed", or
"Ran out" on any day, tell the care team that day (once per run of missed days). A day left unanswered counts
as neither taken nor missed. The monthly naltrexone shot has no daily question, only its due-day reminders.
All state is in the database (`medication_plans`, `dose_days`), so a restart loses nothing and any process
can carry on. Nothing here knows about Telegram.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import DoseDay, DoseStatus, MedicationKind, MedicationPlan, Patient, PatientStatus
from bot.outbox import store as outbox

DAILY = frozenset(
    {
        MedicationKind.BUPRENORPHINE,
        MedicationKind.METHADONE,
        MedicationKind.NALTREXONE_DAILY,
        MedicationKind.OTHER,
    }
)
# Opioid agonists: running out means withdrawal within a day or so, and a high risk of overdose if the patient
# turns to other opioids.
AGONISTS = frozenset({MedicationKind.BUPRENORPHINE, MedicationKind.METHADONE})
# Naltrexone blocks opioids; once it wears off (a missed dose, a late shot) a smaller amount can cause an
# overdose than before treatment (VIVITROL label, "Vulnerability to opioid overdose").
NALTREXONE = frozenset({MedicationKind.NALTREXONE_DAILY, MedicationKind.NALTREXONE_MONTHLY})
SHOT_INTERVAL = timedelta(days=28)  # VIVITROL: 380 mg every 4 weeks or once a month
DOSE_WINDOW = timedelta(hours=12)  # the day's question is open this long after the dose time
ASK_AGAIN = timedelta(hours=2)  # after "Not yet"
AGAIN_OPEN = timedelta(hours=2)  # the second question stays open at least this long
MISSED_RUN_FLAG = 2  # days in a row answered "Missed" that tell the care team
SUPPLY_DAYS_BEFORE = (2, 0)  # refill or shot reminders: two days before, and on the day
SUPPLY_WINDOW = timedelta(hours=12)  # a supply reminder missed (bot down) still goes this long after its time
DEFAULT_REMINDER_TIME = time(9, 0)  # for supply reminders when no dose or check-in time is set
MAX_NAME = 60  # characters kept of a medicine's typed name
COMMON_DOSE_TIMES = (time(7, 0), time(8, 0), time(9, 0), time(12, 0), time(18, 0), time(21, 0))
SUPPLY_CHOICES = (7, 14, 28)  # "in N days" buttons for the next refill
SHOT_CHOICES = (7, 14, 21, 28)  # ... and for the next shot


class Closed(Exception):
    """The day's question has closed (or belongs to another patient)."""


class Invalid(ValueError):
    """Not a valid value for a plan."""


class SetBy(enum.StrEnum):
    PATIENT = "patient"
    COUNSELOR = "counselor"


def is_daily(kind: MedicationKind) -> bool:
    return kind in DAILY


def _zone(patient: Patient) -> ZoneInfo:
    return ZoneInfo(patient.timezone)


def local_today(patient: Patient, now: datetime) -> date:
    return now.astimezone(_zone(patient)).date()


async def plan_of(session: AsyncSession, patient_id: int) -> MedicationPlan | None:
    return await session.scalar(select(MedicationPlan).where(MedicationPlan.patient_id == patient_id))


def ready(plan: MedicationPlan) -> bool:
    """Whether the plan has what its reminders need: a dose time (daily kinds) or a shot day (the shot)."""
    if is_daily(plan.kind):
        return plan.dose_time is not None
    return plan.next_supply is not None


def _audit(session: AsyncSession, plan: MedicationPlan, action: str, by: SetBy, actor_id: int) -> None:
    audit.record(
        session,
        f"medication.{action}",
        actor_type=by.value,
        actor_id=actor_id,
        subject_type="patient",
        subject_id=plan.patient_id,
        plan_id=plan.id,
        kind=plan.kind.value,
    )


async def choose(
    session: AsyncSession,
    patient: Patient,
    kind: MedicationKind,
    *,
    by: SetBy,
    actor_id: int,
    name: str | None = None,
) -> MedicationPlan:
    """Start (or change) the patient's plan with this medicine. A new plan is not active until it is ready
    (`ready`); a changed one keeps going, with a dose time or a shot day that no longer fits cleared."""
    plan = await plan_of(session, patient.id)
    if plan is None:
        plan = MedicationPlan(
            patient_id=patient.id, kind=kind, set_by=by.value, active=False, show_name=False
        )
        session.add(plan)
    plan.kind = kind
    plan.other_name = name.strip()[:MAX_NAME] if kind is MedicationKind.OTHER and name else None
    plan.set_by = by.value
    if not is_daily(kind):
        plan.dose_time = None
    elif plan.next_supply is not None and not plan.active:
        plan.next_supply = None
    plan.active = plan.active and ready(plan)
    await session.flush()
    _audit(session, plan, "chosen", by, actor_id)
    return plan


def set_dose_time(plan: MedicationPlan, clock: time) -> None:
    if not is_daily(plan.kind):
        raise Invalid("the shot has no daily dose")
    plan.dose_time = clock
    plan.active = True


def set_next_supply(plan: MedicationPlan, day: date | None) -> None:
    """The next refill or pick-up (daily kinds; None: not known) or the next shot (which starts its
    reminders)."""
    if day is None and not is_daily(plan.kind):
        raise Invalid("the shot needs a day")
    plan.next_supply = day
    if not is_daily(plan.kind):
        plan.active = True


def stop(session: AsyncSession, plan: MedicationPlan, *, by: SetBy, actor_id: int) -> bool:
    """Stop the reminders (the plan is kept, inactive, so set-up can start again). False if already off."""
    if not plan.active:
        return False
    plan.active = False
    _audit(session, plan, "stopped", by, actor_id)
    return True


def supply_got(plan: MedicationPlan, today: date) -> date | None:
    """ "I got it" on a refill or shot reminder: the next shot is in 4 weeks; a refill's next day is asked."""
    plan.next_supply = today + SHOT_INTERVAL if not is_daily(plan.kind) else None
    return plan.next_supply


def parse_day(text: str, today: date, language: str) -> date | None:
    """A day typed as 2026-12-20, or as month/day (day/month in Spanish), with an optional year; the next such
    day from today when no year is given. None when not a clear date, or a past one."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        parts = text.replace("-", "/").replace(".", "/").split("/")
        if len(parts) not in (2, 3) or not all(p.isdecimal() for p in parts):
            return None
        first, second = int(parts[0]), int(parts[1])
        month, day_of_month = (second, first) if language == "es" else (first, second)
        year = int(parts[2]) if len(parts) == 3 else today.year
        year = year + 2000 if year < 100 else year
        try:
            day = date(year, month, day_of_month)
        except ValueError:
            return None
        if len(parts) == 2 and day < today:
            try:
                day = day.replace(year=today.year + 1)
            except ValueError:
                return None
    return day if day >= today else None


# ---- the daily question ------------------------------------------------------------------------------------


def occurrence(plan: MedicationPlan, patient: Patient, now: datetime) -> datetime | None:
    """The latest local dose time at or before `now` (today's, or yesterday's before today's comes)."""
    if plan.dose_time is None:
        return None
    zone = _zone(patient)
    here = now.astimezone(zone)
    day = here.date() if here.time() >= plan.dose_time else here.date() - timedelta(days=1)
    return datetime.combine(day, plan.dose_time, tzinfo=zone)


async def begin_due(
    session: AsyncSession, plan: MedicationPlan, patient: Patient, now: datetime
) -> DoseDay | None:
    """Open today's dose question if it is due and not asked yet. A unique key on (patient, day) makes this
    safe when several bot processes tick at once."""
    if not plan.active or not is_daily(plan.kind) or patient.status is not PatientStatus.ACTIVE:
        return None
    at = occurrence(plan, patient, now)
    if at is None or not at <= now < at + DOSE_WINDOW:
        return None
    day = at.date()
    if await session.scalar(
        select(DoseDay.id).where(DoseDay.patient_id == patient.id, DoseDay.local_day == day)
    ):
        return None
    dose = DoseDay(patient_id=patient.id, local_day=day, asked_at=now, closes_at=at + DOSE_WINDOW)
    try:
        async with session.begin_nested():
            session.add(dose)
    except IntegrityError:
        return None  # another process asked first
    return dose


@dataclass(frozen=True)
class Answered:
    """What an answer means for the care team: `tell` is True when they hear about it now (two missed days in
    a row, or ran out); `missed_run` is the days in a row answered "Missed", today's included."""

    status: DoseStatus
    tell: bool
    missed_run: int


def answer(dose: DoseDay, patient_id: int, status: DoseStatus, now: datetime, missed_before: int) -> Answered:
    """Save the answer (a later answer the same day replaces an earlier one). `missed_before` is the run of
    "Missed" days just before this one (`missed_run_before`). A "Not yet" late in the window keeps the promise
    of a second question `ASK_AGAIN` later: the window then closes `AGAIN_OPEN` after it. A second "Not yet"
    is refused (Closed): the second question is the last."""
    if dose.patient_id != patient_id or now >= dose.closes_at:
        raise Closed
    if status not in (DoseStatus.TAKEN, DoseStatus.NOT_YET, DoseStatus.MISSED, DoseStatus.RAN_OUT):
        raise Invalid("not an answer")
    if status is DoseStatus.NOT_YET and dose.status is DoseStatus.NOT_YET:
        # "Not yet" is asked again once: the second question has no "Not yet" (`prompts.dose_buttons`), so
        # this is an older button. Each would put the window off by hours, into the next day's question.
        raise Closed
    dose.status = status
    dose.answered_at = now
    dose.ask_again_at = now + ASK_AGAIN if status is DoseStatus.NOT_YET else None
    if dose.ask_again_at is not None:
        dose.closes_at = max(dose.closes_at, dose.ask_again_at + AGAIN_OPEN)
    run = missed_before + 1 if status is DoseStatus.MISSED else 0
    tell = not dose.flagged and (status is DoseStatus.RAN_OUT or run == MISSED_RUN_FLAG)
    if tell:
        dose.flagged = True
    return Answered(status, tell, run)


async def missed_run_before(session: AsyncSession, patient_id: int, day: date) -> int:
    """Days in a row just before `day` answered "Missed" (a day without one, or another answer, ends it)."""
    rows = await session.execute(
        select(DoseDay.local_day, DoseDay.status)
        .where(
            DoseDay.patient_id == patient_id,
            DoseDay.local_day < day,
            DoseDay.local_day >= day - timedelta(days=MISSED_RUN_FLAG + 1),
        )
        .order_by(DoseDay.local_day.desc())
    )
    run, expected = 0, day - timedelta(days=1)
    for local_day, status in rows:
        if local_day != expected or status is not DoseStatus.MISSED:
            break
        run += 1
        expected -= timedelta(days=1)
    return run


async def close_expired(session: AsyncSession, now: datetime) -> int:
    """Questions past their window with no answer, or with only "Not yet", are closed as unanswered; how
    many."""
    due = list(
        await session.scalars(
            select(DoseDay)
            .where(DoseDay.status.in_((DoseStatus.ASKED, DoseStatus.NOT_YET)), DoseDay.closes_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for dose in due:
        dose.status = DoseStatus.UNANSWERED
    return len(due)


async def due_again(session: AsyncSession, now: datetime) -> list[tuple[DoseDay, Patient, MedicationPlan]]:
    """ "Not yet" answers whose second question is due (once: marked here, before anything is sent)."""
    rows = (
        await session.execute(
            select(DoseDay, Patient, MedicationPlan)
            .join(Patient, Patient.id == DoseDay.patient_id)
            .join(MedicationPlan, MedicationPlan.patient_id == DoseDay.patient_id)
            .where(
                DoseDay.status == DoseStatus.NOT_YET,
                DoseDay.ask_again_at <= now,
                DoseDay.closes_at > now,
                MedicationPlan.active.is_(True),
            )
            .with_for_update(skip_locked=True, of=DoseDay)
        )
    ).all()
    for dose, _, _ in rows:
        dose.ask_again_at = None
    return [(dose, patient, plan) for dose, patient, plan in rows]


async def recent_days(session: AsyncSession, patient_id: int, first: date) -> list[DoseDay]:
    return list(
        await session.scalars(
            select(DoseDay)
            .where(DoseDay.patient_id == patient_id, DoseDay.local_day >= first)
            .order_by(DoseDay.local_day)
        )
    )


# ---- refill and shot reminders -----------------------------------------------------------------------------


def reminder_clock(plan: MedicationPlan, patient: Patient) -> time:
    return plan.dose_time or patient.checkin_time or DEFAULT_REMINDER_TIME


def supply_due(plan: MedicationPlan, patient: Patient, now: datetime) -> list[int]:
    """The supply reminders due now (days before the supply day: 2, 0), within their window."""
    if not plan.active or plan.next_supply is None:
        return []
    zone, clock = _zone(patient), reminder_clock(plan, patient)
    due = []
    for before in SUPPLY_DAYS_BEFORE:
        at = datetime.combine(plan.next_supply - timedelta(days=before), clock, tzinfo=zone)
        if at <= now < at + SUPPLY_WINDOW:
            due.append(before)
    return due


async def plans_to_remind(session: AsyncSession) -> list[tuple[MedicationPlan, Patient]]:
    rows = await session.execute(
        select(MedicationPlan, Patient)
        .join(Patient, Patient.id == MedicationPlan.patient_id)
        .where(MedicationPlan.active.is_(True), outbox.may_message())
    )
    return [(plan, patient) for plan, patient in rows.all()]
