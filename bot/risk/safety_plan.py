"""The safety plan (Stanley–Brown): six steps and a reason for living, in the patient's own words.

Building it walks through the steps in order; changing one step later edits only that step. Each step's text
is saved the moment it is typed, so stopping halfway loses nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.careteam.flags import FlagKind
from bot.core.models import CareFlag, SafetyPlan

MAX_LENGTH = 400  # characters per step: read in a crisis, and the whole plan must fit one message
EDIT_TIMEOUT = timedelta(minutes=30)


class Step(enum.StrEnum):
    """The steps in order; each value is also the column that holds it."""

    WARNING_SIGNS = "warning_signs"
    COPING = "coping"
    DISTRACTION = "distraction"
    HELP_PEOPLE = "help_people"
    PROFESSIONALS = "professionals"
    SAFE_ENVIRONMENT = "safe_environment"
    REASON_FOR_LIVING = "reason_for_living"


STEPS = tuple(Step)
CRISIS_STEPS = (Step.HELP_PEOPLE, Step.PROFESSIONALS)  # the contacts shown in a crisis


async def plan_of(session: AsyncSession, patient_id: int) -> SafetyPlan | None:
    return await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))


def being_edited_query(patient_id: int | ColumnElement[int]) -> Select[SafetyPlan]:
    """The patient's plan if a step of it is being typed (whether too long ago: see `editing`)."""
    return select(SafetyPlan).where(SafetyPlan.patient_id == patient_id, SafetyPlan.editing.is_not(None))


async def plan_for_editing(session: AsyncSession, patient_id: int) -> SafetyPlan:
    plan = await plan_of(session, patient_id)
    if plan is None:
        plan = SafetyPlan(patient_id=patient_id, walkthrough=False)
        session.add(plan)
        await session.flush()
    return plan


def text_of(plan: SafetyPlan, step: Step) -> str | None:
    value = getattr(plan, step.value)
    return value if isinstance(value, str) and value else None


def filled(plan: SafetyPlan | None) -> list[tuple[Step, str]]:
    if plan is None:
        return []
    return [(step, text) for step in STEPS if (text := text_of(plan, step)) is not None]


def editing(plan: SafetyPlan | None, now: datetime | None = None) -> Step | None:
    """The step being typed; with `now`, None once the patient has left it for EDIT_TIMEOUT (a plan left
    open must not swallow what they type days later)."""
    if plan is None or plan.editing is None:
        return None
    if now is not None and plan.updated_at is not None and now - plan.updated_at > EDIT_TIMEOUT:
        return None
    try:
        return Step(plan.editing)
    except ValueError:
        return None


def begin(plan: SafetyPlan, step: Step | None = None) -> Step:
    """Start the walk-through at the first step, or edit one step on its own."""
    plan.walkthrough = step is None
    plan.editing = (step or STEPS[0]).value
    return Step(plan.editing)


def save(plan: SafetyPlan, step: Step, text: str | None) -> Step | None:
    """Keep `text` for `step` (None keeps what was there: Skip or Keep) and return the step to ask next."""
    if plan.editing != step.value:
        raise ValueError("not the step being edited")
    if text is not None:
        cleaned = text.strip()
        if len(cleaned) > MAX_LENGTH:
            raise ValueError("too long")
        setattr(plan, step.value, cleaned or None)
    following = STEPS[STEPS.index(step) + 1] if plan.walkthrough and step is not STEPS[-1] else None
    plan.editing = following.value if following else None
    if following is None:
        plan.walkthrough = False
    return following


def stop(plan: SafetyPlan) -> None:
    plan.editing = None
    plan.walkthrough = False


def crisis_contacts(plan: SafetyPlan | None) -> str | None:
    """The patient's own people and professionals to reach, for the crisis message."""
    if plan is None:
        return None
    texts = [text for step in CRISIS_STEPS if (text := text_of(plan, step)) is not None]
    return "\n".join(texts) or None


def reason_for_living(plan: SafetyPlan | None) -> str | None:
    """The one thing most important to the patient, in their words: shown back to them in a crisis."""
    return text_of(plan, Step.REASON_FOR_LIVING) if plan is not None else None


PLAN_FLAGS = (FlagKind.SAFETY_PLAN_MADE, FlagKind.SAFETY_PLAN_CHANGED)
TOLD_WINDOW = EDIT_TIMEOUT  # one notice per sitting: steps saved within this long of the last notice add none


def change_to_tell(was_empty: bool) -> FlagKind:
    return FlagKind.SAFETY_PLAN_CHANGED if not was_empty else FlagKind.SAFETY_PLAN_MADE


async def care_team_told_lately(session: AsyncSession, patient_id: int, now: datetime) -> bool:
    """Whether the care team was told of a made or changed plan within TOLD_WINDOW: a walk-through of seven
    steps is one notice, not seven."""
    kinds = await session.scalars(  # encrypted: compared here, among the few flags of the last minutes
        select(CareFlag.kind).where(
            CareFlag.patient_id == patient_id, CareFlag.created_at > now - TOLD_WINDOW
        )
    )
    return any(kind in {k.value for k in PLAN_FLAGS} for kind in kinds)
