"""Escalations: risk signals the care team must answer, re-paged and widened until a counselor does.

An escalation is written (and committed) before anyone is told, so a crash can delay an alert but never lose
it: the scheduler pages every open escalation that was never alerted or whose next page is due. Who is paged
widens with each unanswered page: the primary counselor(s), then the backups, then every supervisor. After the
last configured step the alert repeats at the last gap until someone acknowledges it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.config import Settings
from bot.core.models import (
    AssignmentRole,
    CareAssignment,
    Counselor,
    CounselorRole,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    Patient,
    RiskSignal,
)
from bot.risk import Category, RiskLevel, Screening

PATTERN_WINDOW = timedelta(hours=48)
DETAIL_LIMIT = 3000  # characters of a patient's words kept behind one escalation
DETAIL_SEPARATOR = "\n---\n"  # between the messages behind one escalation


class Outcome(enum.StrEnum):
    """How an alert was resolved: what the counselor did about it."""

    SAFE = "safe"
    EMERGENCY = "emergency"
    FALSE_ALARM = "false_alarm"
    OTHER = "other"


class Verdict(enum.StrEnum):
    """The resolving counselor's word on whether the alert was right: the label the clinical lead reviews
    (`python -m bot risk export-labels`) before adding the message to the detector's examples."""

    REAL_CONCERN = "real_concern"
    FALSE_ALARM = "false_alarm"


# Resolve asks the verdict first: a false alarm resolves there; a real concern then asks these outcomes.
REAL_CONCERN_OUTCOMES = (Outcome.SAFE, Outcome.EMERGENCY, Outcome.OTHER)


def implied_verdict(outcome: Outcome) -> Verdict | None:
    """The verdict an outcome says by itself (older "How was it resolved?" buttons carry only an outcome):
    a false alarm is one, emergency services sent is a real concern, the others say neither."""
    if outcome is Outcome.FALSE_ALARM:
        return Verdict.FALSE_ALARM
    if outcome is Outcome.EMERGENCY:
        return Verdict.REAL_CONCERN
    return None


def effective_level(screening: Screening, recent_moderate: int, settings: Settings) -> RiskLevel:
    """Several moderate signals within 48 hours add up to a high one."""
    if screening.level is RiskLevel.MODERATE and recent_moderate + 1 >= settings.moderate_signals_raise:
        return RiskLevel.HIGH
    return screening.level


async def record_signal(
    session: AsyncSession,
    patient: Patient,
    screening: Screening,
    source: str,
    now: datetime,
    settings: Settings,
) -> RiskLevel:
    """Keep the level and categories of a screened message (never its words); return the level it
    counts as."""
    if screening.level is RiskLevel.NONE:
        return RiskLevel.NONE
    levels = await session.scalars(  # levels are encrypted: counted here, not by the database
        select(RiskSignal.level).where(
            RiskSignal.patient_id == patient.id, RiskSignal.at > now - PATTERN_WINDOW
        )
    )
    recent = sum(1 for level in levels if level == RiskLevel.MODERATE.label)
    session.add(
        RiskSignal(
            patient_id=patient.id,
            at=now,
            level=screening.level.label,
            categories=[str(c) for c in screening.categories],
            source=source,
        )
    )
    return effective_level(screening, recent, settings)


def repage_gaps(level: RiskLevel, settings: Settings) -> tuple[float, ...]:
    return settings.repage_imminent_minutes if level is RiskLevel.IMMINENT else settings.repage_high_minutes


def next_page_at(level: RiskLevel, stage: int, paged_at: datetime, settings: Settings) -> datetime:
    """When to page again if nobody acknowledges: each gap counts from the first alert."""
    gaps = repage_gaps(level, settings)
    if stage < len(gaps):
        previous = gaps[stage - 1] if stage > 0 else 0.0
        return paged_at + timedelta(minutes=gaps[stage] - previous)
    repeat = gaps[-1] - (gaps[-2] if len(gaps) > 1 else 0.0)
    return paged_at + timedelta(minutes=repeat)


@dataclass(frozen=True)
class Raised:
    escalation: Escalation
    page_now: bool  # False when the signal joined an open escalation that needs no new alert


def _append_detail(escalation: Escalation, detail: str) -> None:
    joined = f"{escalation.detail}{DETAIL_SEPARATOR}{detail}" if escalation.detail else detail
    escalation.detail = joined[-DETAIL_LIMIT:]  # the newest words; an alert's details fit one message


async def _open_in_window(
    session: AsyncSession, patient: Patient, category: Category, now: datetime, settings: Settings
) -> Escalation | None:
    """The patient's newest unresolved escalation of this category with a signal inside the grouping window,
    locked against a re-page of the same escalation at the same moment (its stage). The category is
    encrypted: the patient's few unresolved escalations in the window are read and compared here."""
    window = now - timedelta(hours=settings.escalation_group_hours)
    found = await session.scalars(
        select(Escalation)
        .where(
            Escalation.patient_id == patient.id,
            Escalation.status != EscalationStatus.RESOLVED,
            Escalation.last_signal_at > window,
        )
        .order_by(Escalation.id.desc())
        .with_for_update()
    )
    return next((e for e in found if e.category == category.value), None)


async def add_detail(
    session: AsyncSession,
    patient: Patient,
    category: Category,
    detail: str,
    now: datetime,
    settings: Settings,
) -> Escalation | None:
    """Words that belong to an open escalation raised without them (a use disclosed with a tap, then what was
    used typed in answer to the next question): kept behind "Show details". No new page: nothing got worse."""
    existing = await _open_in_window(session, patient, category, now, settings)
    if existing is not None and detail.strip():
        _append_detail(existing, detail.strip())
    return existing


async def raise_escalation(
    session: AsyncSession,
    patient: Patient,
    level: RiskLevel,
    category: Category,
    source: str,
    detail: str | None,
    now: datetime,
    settings: Settings,
) -> Raised:
    """Open an escalation, or join an open one for the same patient and category within the grouping
    window. A stronger signal raises the open one and pages again; an imminent signal always pages."""
    existing = await _open_in_window(session, patient, category, now, settings)
    if existing is not None:
        stronger = level > RiskLevel.parse(existing.level)
        existing.last_signal_at = now
        if detail:
            _append_detail(existing, detail)
        if stronger:
            existing.level = level.label
        page = stronger or level is RiskLevel.IMMINENT
        if page:
            existing.status = EscalationStatus.OPEN
            existing.acknowledged_at = existing.acknowledged_by = None
            existing.next_page_at = now
            existing.paged_signal_at = now
        audit.record(
            session,
            "escalation.joined",
            actor_type="system",
            subject_type="patient",
            subject_id=patient.id,
            escalation_id=existing.id,
            level=level.label,
            paged=page,
        )
        return Raised(existing, page)
    escalation = Escalation(
        patient_id=patient.id,
        level=level.label,
        category=category.value,
        source=source,
        detail=detail[-DETAIL_LIMIT:] if detail else None,
        created_at=now,
        last_signal_at=now,
        paged_signal_at=now,
        next_page_at=now,
    )
    session.add(escalation)
    await session.flush()
    audit.record(
        session,
        "escalation.opened",
        actor_type="system",
        subject_type="patient",
        subject_id=patient.id,
        escalation_id=escalation.id,
        level=level.label,
        category=category.value,
    )
    return Raised(escalation, True)


async def recipients(
    session: AsyncSession, escalation: Escalation, on_call: Sequence[Counselor] = ()
) -> list[Counselor]:
    """Who this stage pages: primary counselors; from stage 1 also backups; from stage 2 also supervisors;
    and at every stage whoever is `on_call` (after hours, for imminent alerts). A stage that would page
    nobody reachable pages the next wider circle instead."""
    team = (
        await session.execute(
            select(Counselor, CareAssignment.role)
            .join(CareAssignment, CareAssignment.counselor_id == Counselor.id)
            .where(CareAssignment.patient_id == escalation.patient_id, Counselor.active.is_(True))
            .order_by(Counselor.id)
        )
    ).all()
    supervisors = list(
        await session.scalars(
            select(Counselor)
            .where(Counselor.role == CounselorRole.SUPERVISOR, Counselor.active.is_(True))
            .order_by(Counselor.id)
        )
    )
    circles = [
        [c for c, role in team if role is AssignmentRole.PRIMARY],
        [c for c, _ in team],
        [c for c, _ in team] + supervisors,
    ]
    reachable: list[Counselor] = []
    for stage in range(min(escalation.stage, 2), 3):
        reachable = [c for c in circles[stage] if c.chat_id is not None]
        if reachable:
            break
    return list({c.id: c for c in [*reachable, *on_call] if c.chat_id is not None}.values())


async def due(session: AsyncSession, now: datetime) -> list[Escalation]:
    """Open escalations never alerted, or unacknowledged and due for their next page, the most urgent
    first (the level is encrypted: sorted here)."""
    found = await session.scalars(
        select(Escalation)
        .where(
            Escalation.status == EscalationStatus.OPEN,
            Escalation.next_page_at.is_not(None),
            Escalation.next_page_at <= now,
        )
        .order_by(Escalation.id)
        .with_for_update(skip_locked=True)  # several processes: each escalation is re-paged by one
    )
    return sorted(found, key=lambda e: -RiskLevel.parse(e.level))


def mark_paged(escalation: Escalation, now: datetime, settings: Settings) -> None:
    """After a page went out: move to the next stage and say when to page again."""
    level = RiskLevel.parse(escalation.level)
    if escalation.alerted_at is None:
        escalation.alerted_at = now
    else:
        escalation.stage += 1
    escalation.next_page_at = next_page_at(level, escalation.stage, now, settings)


def _by_counselor(
    session: AsyncSession, action: str, counselor: Counselor, escalation_id: int, **detail: str
) -> None:
    audit.record(
        session,
        action,
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="escalation",
        subject_id=escalation_id,
        patients=(),
        **detail,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def seen(escalation: Escalation) -> int:
    """What a counselor's buttons on an alert say they saw: the time of its last message that paged, in
    milliseconds since 1970. A message that pages again (stronger, or imminent) changes it: a tap on the older
    buttons must not acknowledge or resolve what the counselor has not been paged about. A message that only
    adds its words at the same level pages nobody and changes nothing: the buttons the counselor has are
    still the alert's (its details show the new words). None recorded (an alert from before): the last
    message's time, so its buttons read as from before."""
    at = escalation.paged_signal_at or escalation.last_signal_at
    return (at - _EPOCH) // timedelta(milliseconds=1)


def as_seen(escalation: Escalation, seen_then: int) -> bool:
    """Is the escalation still as the counselor saw it when the buttons were sent?"""
    return seen_then == seen(escalation)


class Refusal(enum.StrEnum):
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    RESOLVED = "resolved"


async def may_act(session: AsyncSession, escalation: Escalation, counselor: Counselor) -> bool:
    """The patient's care team, and anyone this escalation paged (supervisors when it widened)."""
    on_team = await session.scalar(
        select(CareAssignment.id).where(
            CareAssignment.patient_id == escalation.patient_id, CareAssignment.counselor_id == counselor.id
        )
    )
    if on_team is not None:
        return True
    if escalation.status is EscalationStatus.RESOLVED:
        return False  # being paged once is no lasting licence to the patient's record
    paged = await session.scalar(
        select(EscalationAlert.id).where(
            EscalationAlert.escalation_id == escalation.id, EscalationAlert.counselor_id == counselor.id
        )
    )
    return paged is not None


async def find_for(
    session: AsyncSession, escalation_id: int, counselor: Counselor, action: str
) -> Escalation | Refusal:
    """The escalation, if this counselor may act on it; a refusal is written to the audit log."""
    escalation = await session.get(Escalation, escalation_id)
    if escalation is None or not await may_act(session, escalation, counselor):
        _by_counselor(session, "escalation.refused", counselor, escalation_id, attempted=action)
        return Refusal.NOT_FOUND if escalation is None else Refusal.NOT_ALLOWED
    return escalation


def acknowledge(session: AsyncSession, escalation: Escalation, counselor: Counselor, now: datetime) -> bool:
    """True if this counselor's tap acknowledged it (False if someone already had, or it is resolved)."""
    if escalation.status is not EscalationStatus.OPEN:
        return False
    escalation.status = EscalationStatus.ACKNOWLEDGED
    escalation.acknowledged_at = now
    escalation.acknowledged_by = counselor.id
    escalation.next_page_at = None
    _by_counselor(session, "escalation.acknowledged", counselor, escalation.id)
    return True


def resolve(
    session: AsyncSession,
    escalation: Escalation,
    counselor: Counselor,
    outcome: Outcome,
    now: datetime,
    verdict: Verdict | None = None,
) -> bool:
    """Close the escalation with its outcome and the counselor's verdict (without one, what the outcome
    implies; a false alarm is never a real concern). False if it was already resolved."""
    if escalation.status is EscalationStatus.RESOLVED:
        return False
    if outcome is Outcome.FALSE_ALARM or verdict is None:
        verdict = implied_verdict(outcome)
    if escalation.acknowledged_at is None:
        escalation.acknowledged_at, escalation.acknowledged_by = now, counselor.id
    escalation.status = EscalationStatus.RESOLVED
    escalation.resolved_at = now
    escalation.resolved_by = counselor.id
    escalation.outcome = outcome.value
    escalation.verdict = verdict.value if verdict else None
    escalation.next_page_at = None
    said = {"verdict": verdict.value} if verdict else {}
    _by_counselor(session, "escalation.resolved", counselor, escalation.id, outcome=outcome.value, **said)
    return True


def details_viewed(session: AsyncSession, escalation: Escalation, counselor: Counselor) -> None:
    _by_counselor(session, "escalation.details_viewed", counselor, escalation.id)


def plan_viewed(session: AsyncSession, escalation: Escalation, counselor: Counselor) -> None:
    _by_counselor(session, "escalation.safety_plan_viewed", counselor, escalation.id)


async def open_for(session: AsyncSession, counselor: Counselor) -> list[Escalation]:
    """Escalations not yet resolved that this counselor may act on: their patients', and any they were
    paged about. Unacknowledged first, then the most urgent, then the oldest."""
    team = select(CareAssignment.patient_id).where(CareAssignment.counselor_id == counselor.id)
    paged = select(EscalationAlert.escalation_id).where(EscalationAlert.counselor_id == counselor.id)
    found = await session.scalars(
        select(Escalation).where(
            Escalation.status != EscalationStatus.RESOLVED,
            Escalation.patient_id.in_(team) | Escalation.id.in_(paged),
        )
    )
    return sorted(
        found,
        key=lambda e: (
            e.status is not EscalationStatus.OPEN,
            -RiskLevel.parse(e.level),
            e.created_at,
        ),
    )


async def alerts_of(session: AsyncSession, escalation_id: int) -> list[EscalationAlert]:
    return list(
        await session.scalars(select(EscalationAlert).where(EscalationAlert.escalation_id == escalation_id))
    )
