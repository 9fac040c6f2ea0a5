"""The C-SSRS screener (Columbia Suicide Severity Rating Scale, screen version) and Columbia's triage.

The patient is asked first whether they are willing to answer (`PERMISSION`, a step of its own: an answer to
it is never taken as an answer to a question). Then Columbia's self-report wording: questions 1 and 2; 3, 4
and 5 only after a yes to 2; then 6, and "was it in the past three months?" after a yes to 6. A patient
screened before (a screen answered within `REPEAT_WITHIN`) gets Columbia's "since last contact" version: the
same items about the time since that screen, and no "when?" question (behaviour since then is recent).

Triage: yes to 4 or 5, or behaviour in the past three months, is high risk (our imminent level); yes to 3, or
behaviour longer ago, is moderate (our high level: the care team is paged); yes to 1 or 2 alone is low: a
referral (a care-team flag for the next business day), not a page. Once the answers are high risk no further
question is asked: the urgent response comes first, and `not_asked` says which questions were skipped.

The screener informs the care team; it never closes anything. An escalation is only closed by a counselor, so
a patient who answers "no" to everything after an imminent message still gets a call.

When the patient declines ("Not now"), the bot asks the plain safety question instead ("are you safe right
now?"); that question, wherever it is asked, is tracked in the audit log (`ask_safety`, `safety_answered`)
so that one left unanswered is followed up (`unanswered_safety_checks`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import AuditEvent, Escalation, EscalationStatus, ScreenStatus, SuicideScreen
from bot.risk import RiskLevel
from bot.risk.levels import Category

PERMISSION: Final = "ask"  # the step before the first question: "Can I ask you a few short questions?"
REPEAT_WITHIN = timedelta(days=90)  # a screen answered this recently makes the next one "since last contact"


class Question(enum.StrEnum):
    """Each question as worded for its period: the answers record exactly what was asked."""

    WISH_DEAD = "wish_dead"
    THOUGHTS = "thoughts"
    METHOD = "method"
    INTENT = "intent"
    PLAN = "plan"
    BEHAVIOR = "behavior"
    BEHAVIOR_RECENT = "recent"
    # Since last contact (a repeat screen): the same items about the time since the last screen.
    WISH_DEAD_SINCE = "wish_dead_since"
    THOUGHTS_SINCE = "thoughts_since"
    METHOD_SINCE = "method_since"
    INTENT_SINCE = "intent_since"
    PLAN_SINCE = "plan_since"
    BEHAVIOR_SINCE = "behavior_since"


class Period(enum.StrEnum):
    PAST_MONTH = "past_month"  # ideation in the past month, behaviour ever (and whether in the past 3 months)
    SINCE_LAST = "since_last"  # everything since the last screen


class Item(enum.Enum):
    """Columbia's six items, whatever their period."""

    WISH_DEAD = 1
    THOUGHTS = 2
    METHOD = 3
    INTENT = 4
    PLAN = 5
    BEHAVIOR = 6


WORDING: dict[Period, dict[Item, Question]] = {
    Period.PAST_MONTH: {
        Item.WISH_DEAD: Question.WISH_DEAD,
        Item.THOUGHTS: Question.THOUGHTS,
        Item.METHOD: Question.METHOD,
        Item.INTENT: Question.INTENT,
        Item.PLAN: Question.PLAN,
        Item.BEHAVIOR: Question.BEHAVIOR,
    },
    Period.SINCE_LAST: {
        Item.WISH_DEAD: Question.WISH_DEAD_SINCE,
        Item.THOUGHTS: Question.THOUGHTS_SINCE,
        Item.METHOD: Question.METHOD_SINCE,
        Item.INTENT: Question.INTENT_SINCE,
        Item.PLAN: Question.PLAN_SINCE,
        Item.BEHAVIOR: Question.BEHAVIOR_SINCE,
    },
}
_PERIOD_OF = {q: period for period, items in WORDING.items() for q in items.values()}
_PERIOD_OF[Question.BEHAVIOR_RECENT] = Period.PAST_MONTH


class Trigger(enum.StrEnum):
    ALERTED = "alerted"  # after a message the care team was already told about
    AMBIGUOUS = "ambiguous"  # suicide-adjacent words that could mean several things: the answers decide
    MEASURE = "measure"  # a questionnaire's safety item (PHQ-9 item 9) above "not at all": at once, always


class ColumbiaRisk(enum.StrEnum):
    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


# Our alert level for each result. LOW is a referral: a care-team flag, not an escalation (see `REFERRAL`).
LEVELS = {
    ColumbiaRisk.HIGH: RiskLevel.IMMINENT,
    ColumbiaRisk.MODERATE: RiskLevel.HIGH,
    ColumbiaRisk.LOW: RiskLevel.NONE,
    ColumbiaRisk.NONE: RiskLevel.NONE,
}
REFERRAL = ColumbiaRisk.LOW


def period_of(screen: SuicideScreen) -> Period | None:
    """Which version the screen is asking (None before the patient agreed to it)."""
    for key in (screen.step, *screen.answers):
        if key is not None and key in _PERIOD_OF:
            return _PERIOD_OF[Question(key)]
    return None


def _said(answers: dict[str, bool], item: Item) -> bool | None:
    """The answer to an item in whichever period it was asked (None: not asked)."""
    for period in Period:
        found = answers.get(WORDING[period][item])
        if found is not None:
            return found
    return None


def next_question(answers: dict[str, bool], period: Period = Period.PAST_MONTH) -> Question | None:
    """The next question to ask given the answers so far, or None when the screener is complete (all
    asked, or already high risk)."""
    if triage(answers) is ColumbiaRisk.HIGH:
        return None
    return next((q for q in _path(answers, period) if q not in answers), None)


def _path(answers: dict[str, bool], period: Period) -> list[Question]:
    """The questions the whole screener asks, given these answers (as far as they tell)."""
    wording = WORDING[period]
    path = [wording[Item.WISH_DEAD], wording[Item.THOUGHTS]]
    if _said(answers, Item.THOUGHTS):
        path += [wording[Item.METHOD], wording[Item.INTENT], wording[Item.PLAN]]
    path.append(wording[Item.BEHAVIOR])
    if period is Period.PAST_MONTH and answers.get(Question.BEHAVIOR) is True:
        path.append(Question.BEHAVIOR_RECENT)
    return path


def not_asked(screen: SuicideScreen) -> list[Question]:
    """The questions a complete screen skipped because it stopped at a high-risk answer (for the care
    team: "not asked" is not "no")."""
    period = period_of(screen)
    if screen.status is not ScreenStatus.COMPLETE or period is None:
        return []
    answers = screen.answers
    return [q for q in _path(answers, period) if q not in answers and q is not Question.BEHAVIOR_RECENT]


def triage(answers: dict[str, bool]) -> ColumbiaRisk:
    """Columbia's triage of the answers given (a partial screener is triaged on what it has)."""

    def yes(item: Item) -> bool:
        return _said(answers, item) is True

    recent_behavior = (
        answers.get(Question.BEHAVIOR) is True and answers.get(Question.BEHAVIOR_RECENT) is True
    ) or (answers.get(Question.BEHAVIOR_SINCE) is True)
    if yes(Item.INTENT) or yes(Item.PLAN) or recent_behavior:
        return ColumbiaRisk.HIGH
    if yes(Item.METHOD) or yes(Item.BEHAVIOR):
        return ColumbiaRisk.MODERATE
    if yes(Item.WISH_DEAD) or yes(Item.THOUGHTS):
        return ColumbiaRisk.LOW
    return ColumbiaRisk.NONE


def open_screen_query(patient_id: int | ColumnElement[int]) -> Select[SuicideScreen]:
    return (
        select(SuicideScreen)
        .where(SuicideScreen.patient_id == patient_id, SuicideScreen.status == ScreenStatus.OPEN)
        .order_by(SuicideScreen.id.desc())
        .limit(1)
    )


async def open_screen(session: AsyncSession, patient_id: int) -> SuicideScreen | None:
    return await session.scalar(open_screen_query(patient_id))


async def finished_since(session: AsyncSession, patient_id: int, since: datetime) -> bool:
    found = await session.scalar(
        select(SuicideScreen.id)
        .where(
            SuicideScreen.patient_id == patient_id,
            SuicideScreen.status == ScreenStatus.COMPLETE,
            SuicideScreen.finished_at > since,
        )
        .limit(1)
    )
    return found is not None


async def period_for(session: AsyncSession, patient_id: int, now: datetime) -> Period:
    """ "Since last contact" for a patient who answered a screen (at least one question) within
    `REPEAT_WITHIN`; the past-month version otherwise."""
    recent = await session.scalars(
        select(SuicideScreen.answers)
        .where(
            SuicideScreen.patient_id == patient_id,
            SuicideScreen.status.in_((ScreenStatus.COMPLETE, ScreenStatus.UNANSWERED)),
            SuicideScreen.answered_at >= now - REPEAT_WITHIN,
        )
        .order_by(SuicideScreen.id.desc())
        .limit(20)
    )
    return Period.SINCE_LAST if any(answers for answers in recent) else Period.PAST_MONTH


async def start(
    session: AsyncSession, patient_id: int, trigger: Trigger, escalation_id: int | None, now: datetime
) -> SuicideScreen:
    """A new screen, asking for permission first."""
    screen = SuicideScreen(
        patient_id=patient_id,
        escalation_id=escalation_id,
        trigger=trigger.value,
        step=PERMISSION,
        answers={},
        started_at=now,
    )
    session.add(screen)
    await session.flush()
    return screen


def _require_permission_step(screen: SuicideScreen) -> None:
    if screen.status not in (ScreenStatus.OPEN, ScreenStatus.UNANSWERED) or screen.step != PERMISSION:
        raise ValueError("not asking for permission")


def agree(screen: SuicideScreen, period: Period, now: datetime) -> Question:
    """The patient agreed to the questions: the first one, in `period`'s wording (a screen closed as
    unanswered while asking takes a late OK)."""
    _require_permission_step(screen)
    first = WORDING[period][Item.WISH_DEAD]
    screen.status = ScreenStatus.OPEN
    screen.step = first.value
    screen.answered_at = now
    return first


def decline(screen: SuicideScreen, now: datetime) -> None:
    """ "Not now": the screen closes with no answers and no result (not "no risk": nothing was asked)."""
    _require_permission_step(screen)
    screen.status = ScreenStatus.DECLINED
    screen.step = None
    screen.answered_at = screen.finished_at = now


def answer(screen: SuicideScreen, question: Question, yes: bool, now: datetime) -> Question | None:
    """Record an answer to the question being asked; return the next one (None: complete, and triaged).
    A screener closed as unanswered still takes a late answer to its last question, and carries on."""
    if screen.status not in (ScreenStatus.OPEN, ScreenStatus.UNANSWERED) or screen.step != question.value:
        raise ValueError("not the question being asked")
    screen.status = ScreenStatus.OPEN
    answers = {**screen.answers, question.value: yes}
    screen.answers = answers  # a new dict, so the JSON column sees the change
    screen.answered_at = now
    following = next_question(answers, _PERIOD_OF[question])
    screen.step = following.value if following else None
    if following is None:
        screen.status = ScreenStatus.COMPLETE
        screen.result = triage(answers).value
        screen.finished_at = now
    return following


async def stalled(session: AsyncSession, now: datetime, wait: timedelta) -> list[SuicideScreen]:
    """Open screeners with no answer for `wait` (counted from the last answer, or the start)."""
    screens = await session.scalars(
        select(SuicideScreen)
        .where(SuicideScreen.status == ScreenStatus.OPEN, SuicideScreen.started_at <= now - wait)
        .with_for_update(skip_locked=True)  # one being answered right now is left to its answer
    )
    return [s for s in screens if (s.answered_at or s.started_at) <= now - wait]


def close_unanswered(screen: SuicideScreen, now: datetime) -> ColumbiaRisk:
    """Close a screener nobody finished; the answers given so far are triaged and kept, and the question
    left open (`step`) can still be answered late."""
    if screen.status is not ScreenStatus.OPEN:
        raise ValueError("only an open screener can go unanswered")
    risk = triage(screen.answers)
    screen.status = ScreenStatus.UNANSWERED
    screen.result = risk.value
    screen.finished_at = now
    return risk


async def screens_of(session: AsyncSession, escalation_id: int) -> list[SuicideScreen]:
    """The screeners that informed this escalation, oldest first (for the counselor's details view)."""
    return list(
        await session.scalars(
            select(SuicideScreen)
            .where(SuicideScreen.escalation_id == escalation_id)
            .order_by(SuicideScreen.id)
        )
    )


async def linked_open(session: AsyncSession, screen: SuicideScreen) -> Escalation | None:
    linked = await session.get(Escalation, screen.escalation_id) if screen.escalation_id else None
    return linked if linked is not None and linked.status is not EscalationStatus.RESOLVED else None


async def category_of(session: AsyncSession, screen: SuicideScreen) -> Category:
    """What a positive screen adds to: the open escalation that led to it (so it joins, not duplicates)."""
    linked = await linked_open(session, screen)
    return Category(linked.category) if linked is not None else Category.SUICIDE


# ---- "are you safe right now?" -----------------------------------------------------------------------------
# Asked when the screener is declined, when an imminent signal came softened, and when only the model worried.
# Each asking and each answer is an audit event (ids and codes only), so the question is followed up when it
# goes unanswered, even across restarts.

SAFETY_ASKED, SAFETY_ANSWERED, SAFETY_FOLLOWED_UP = (
    "safety_check.asked",
    "safety_check.answered",
    "safety_check.followed_up",
)


class SafetyReason(enum.StrEnum):
    DECLINED = "declined"  # the screener was declined
    SOFTENED = "softened"  # an imminent phrase read as negated, past, someone else's or a joke
    MODEL = "model"  # the model, not the rules, thought the message may be high or imminent


def ask_safety(
    session: AsyncSession, patient_id: int, reason: SafetyReason, trigger: Trigger | None = None
) -> None:
    audit.record(
        session,
        SAFETY_ASKED,
        actor_type="system",
        subject_type="patient",
        subject_id=patient_id,
        reason=reason.value,
        trigger=trigger.value if trigger is not None else None,
    )


def safety_answered(session: AsyncSession, patient_id: int, safe: bool) -> None:
    audit.record(
        session,
        SAFETY_ANSWERED,
        actor_type="patient",
        actor_id=patient_id,
        subject_type="patient",
        subject_id=patient_id,
        answer="safe" if safe else "help",
    )


def safety_followed_up(session: AsyncSession, patient_id: int, how: str) -> None:
    audit.record(
        session,
        SAFETY_FOLLOWED_UP,
        actor_type="system",
        subject_type="patient",
        subject_id=patient_id,
        how=how,
    )


@dataclass(frozen=True)
class SafetyQuestion:
    """The latest unanswered asking of the safety question for a patient."""

    patient_id: int
    reason: SafetyReason
    trigger: Trigger | None
    asked_at: datetime


async def _unanswered(
    session: AsyncSession, since: datetime, until: datetime, patient_id: int | None = None, lock: bool = False
) -> list[SafetyQuestion]:
    query = select(AuditEvent).where(
        AuditEvent.action == SAFETY_ASKED,
        AuditEvent.subject_type == "patient",
        AuditEvent.subject_id.is_not(None),
        AuditEvent.at > since,
        AuditEvent.at <= until,
    )
    if patient_id is not None:
        query = query.where(AuditEvent.subject_id == patient_id)
    if lock:  # several processes: each question is followed up by one
        query = query.with_for_update(skip_locked=True)
    latest: dict[int, AuditEvent] = {}
    for event in await session.scalars(query.order_by(AuditEvent.id)):
        assert event.subject_id is not None
        latest[event.subject_id] = event
    found: list[SafetyQuestion] = []
    for pid, event in latest.items():
        settled = await session.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.subject_type == "patient",
                AuditEvent.subject_id == pid,
                AuditEvent.action.in_((SAFETY_ANSWERED, SAFETY_FOLLOWED_UP)),
                AuditEvent.id > event.id,
            )
            .limit(1)
        )
        if settled is None:
            detail = event.detail or {}
            trigger = detail.get("trigger")
            found.append(
                SafetyQuestion(
                    pid,
                    SafetyReason(str(detail.get("reason"))),
                    Trigger(trigger) if trigger else None,
                    event.at,
                )
            )
    return found


async def unanswered_safety_checks(
    session: AsyncSession, now: datetime, wait: timedelta, horizon: timedelta = timedelta(days=7)
) -> list[SafetyQuestion]:
    """Safety questions asked at least `wait` ago (and less than `horizon`) with no answer and no follow-up
    since; one per patient, the latest."""
    return await _unanswered(session, now - horizon, now - wait, lock=True)


async def said_safe_since(session: AsyncSession, patient_id: int, since: datetime) -> bool:
    """Whether the patient answered "I'm safe" (a button, or a typed yes) after `since`."""
    events = await session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == SAFETY_ANSWERED,
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == patient_id,
            AuditEvent.at > since,
        )
    )
    return any((event.detail or {}).get("answer") == "safe" for event in events)


async def awaiting_safety_answer(
    session: AsyncSession, patient_id: int, now: datetime, within: timedelta
) -> SafetyQuestion | None:
    """The safety question this patient was asked less than `within` ago, if still unanswered."""
    found = await _unanswered(session, now - within, now, patient_id)
    return found[0] if found else None
