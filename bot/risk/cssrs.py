"""The C-SSRS screener (Columbia Suicide Severity Rating Scale, screen version) and Columbia's triage.

Questions 1 and 2 are asked first; 3, 4 and 5 only after a yes to 2; then 6, and "was it in the past three
months?" after a yes to 6. Triage: yes to 4 or 5, or behaviour in the past three months, is high risk (our
imminent level); yes to 3, or behaviour longer ago, is moderate; yes to 1 or 2 alone is low. Every yes is at
least our high level, since even a passive wish to be dead is one the care team should hear about. Once the
answers are high risk no further question is asked: the urgent response comes first.

The screener informs the care team; it never closes anything. An escalation is only closed by a counselor, so
a patient who answers "no" to everything after an imminent message still gets a call.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Escalation, EscalationStatus, ScreenStatus, SuicideScreen
from bot.risk import RiskLevel
from bot.risk.levels import Category


class Question(enum.StrEnum):
    WISH_DEAD = "wish_dead"
    THOUGHTS = "thoughts"
    METHOD = "method"
    INTENT = "intent"
    PLAN = "plan"
    BEHAVIOR = "behavior"
    BEHAVIOR_RECENT = "recent"


class Trigger(enum.StrEnum):
    ALERTED = "alerted"  # after a message the care team was already told about
    AMBIGUOUS = "ambiguous"  # suicide-adjacent words that could mean several things: the answers decide


class ColumbiaRisk(enum.StrEnum):
    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


LEVELS = {
    ColumbiaRisk.HIGH: RiskLevel.IMMINENT,
    ColumbiaRisk.MODERATE: RiskLevel.HIGH,
    ColumbiaRisk.LOW: RiskLevel.HIGH,
    ColumbiaRisk.NONE: RiskLevel.NONE,
}


def next_question(answers: dict[str, bool]) -> Question | None:
    """The next question to ask given the answers so far, or None when the screener is complete (all
    asked, or already high risk)."""
    if triage(answers) is ColumbiaRisk.HIGH:
        return None
    for question in (Question.WISH_DEAD, Question.THOUGHTS):
        if question not in answers:
            return question
    if answers[Question.THOUGHTS]:
        for question in (Question.METHOD, Question.INTENT, Question.PLAN):
            if question not in answers:
                return question
    if Question.BEHAVIOR not in answers:
        return Question.BEHAVIOR
    if answers[Question.BEHAVIOR] and Question.BEHAVIOR_RECENT not in answers:
        return Question.BEHAVIOR_RECENT
    return None


def triage(answers: dict[str, bool]) -> ColumbiaRisk:
    """Columbia's triage of the answers given (a partial screener is triaged on what it has)."""

    def yes(question: Question) -> bool:
        return answers.get(question) is True

    if (
        yes(Question.INTENT)
        or yes(Question.PLAN)
        or (yes(Question.BEHAVIOR) and yes(Question.BEHAVIOR_RECENT))
    ):
        return ColumbiaRisk.HIGH
    if yes(Question.METHOD) or yes(Question.BEHAVIOR):
        return ColumbiaRisk.MODERATE
    if yes(Question.WISH_DEAD) or yes(Question.THOUGHTS):
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


async def start(
    session: AsyncSession, patient_id: int, trigger: Trigger, escalation_id: int | None, now: datetime
) -> SuicideScreen:
    screen = SuicideScreen(
        patient_id=patient_id,
        escalation_id=escalation_id,
        trigger=trigger.value,
        step=Question.WISH_DEAD.value,
        answers={},
        started_at=now,
    )
    session.add(screen)
    await session.flush()
    return screen


def answer(screen: SuicideScreen, question: Question, yes: bool, now: datetime) -> Question | None:
    """Record an answer to the question being asked; return the next one (None: complete, and triaged).
    A screener closed as unanswered still takes a late answer to its last question, and carries on."""
    if screen.status is ScreenStatus.COMPLETE or screen.step != question.value:
        raise ValueError("not the question being asked")
    screen.status = ScreenStatus.OPEN
    answers = {**screen.answers, question.value: yes}
    screen.answers = answers  # a new dict, so the JSON column sees the change
    screen.answered_at = now
    following = next_question(answers)
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
