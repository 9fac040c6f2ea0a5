"""The Stanley–Brown safety plan (bot/risk/safety_plan.py): the walk-through, editing one step, what a crisis
shows, and the one plan per patient kept in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.content.catalog import load_catalog
from bot.core import db
from bot.core.models import SafetyPlan
from bot.risk import safety_plan as plans
from bot.risk.safety_plan import MAX_LENGTH, STEPS, Step
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]

IN_ORDER = [
    "warning_signs",
    "coping",
    "distraction",
    "help_people",
    "professionals",
    "safe_environment",
    "reason_for_living",
]


def _plan(**texts: str | None) -> SafetyPlan:
    return SafetyPlan(patient_id=1, walkthrough=False, editing=None, **texts)


def _texts(plan: SafetyPlan) -> dict[str, str | None]:
    return {name: getattr(plan, name) for name in IN_ORDER}


# ---- the steps ---------------------------------------------------------------------------------------------


def test_steps_are_stanley_brown_in_order_and_each_is_a_column() -> None:
    assert [step.value for step in STEPS] == IN_ORDER
    columns = set(SafetyPlan.__table__.columns.keys())
    assert set(IN_ORDER) <= columns


def test_crisis_steps_are_the_people_and_the_professionals() -> None:
    assert plans.CRISIS_STEPS == (Step.HELP_PEOPLE, Step.PROFESSIONALS)


# ---- begin -------------------------------------------------------------------------------------------------


def test_begin_without_a_step_walks_through_from_the_first() -> None:
    plan = _plan()
    assert plans.begin(plan) is Step.WARNING_SIGNS
    assert plan.walkthrough is True
    assert plan.editing == "warning_signs"


@pytest.mark.parametrize("step", STEPS)
def test_begin_with_a_step_edits_only_that_step(step: Step) -> None:
    plan = _plan()
    assert plans.begin(plan, step) is step
    assert plan.walkthrough is False
    assert plan.editing == step.value


def test_begin_one_step_during_a_walk_through_leaves_the_walk_through() -> None:
    plan = _plan()
    plans.begin(plan)
    plans.begin(plan, Step.PROFESSIONALS)
    assert (plan.walkthrough, plan.editing) == (False, "professionals")


# ---- save: the walk-through and single steps ---------------------------------------------------------------


def test_a_walk_through_asks_every_step_in_order_and_ends_after_the_last() -> None:
    plan = _plan()
    plans.begin(plan)
    for index, step in enumerate(STEPS):
        expected_next = STEPS[index + 1] if index + 1 < len(STEPS) else None
        assert plans.editing(plan) is step
        assert plans.save(plan, step, f"  my {step.value}  ") is expected_next
        if expected_next is not None:
            assert plan.walkthrough is True and plan.editing == expected_next.value
    assert plan.editing is None and plan.walkthrough is False
    assert _texts(plan) == {name: f"my {name}" for name in IN_ORDER}


def test_skipping_in_a_walk_through_keeps_what_was_there() -> None:
    plan = _plan(coping="call my sponsor", distraction="walk the dog")
    plans.begin(plan)
    assert plans.save(plan, Step.WARNING_SIGNS, "can't sleep") is Step.COPING
    assert plans.save(plan, Step.COPING, None) is Step.DISTRACTION
    assert plans.save(plan, Step.DISTRACTION, None) is Step.HELP_PEOPLE
    assert plan.coping == "call my sponsor" and plan.distraction == "walk the dog"
    assert plan.warning_signs == "can't sleep"


def test_skipping_the_last_step_still_ends_the_walk_through() -> None:
    plan = _plan()
    plans.begin(plan, Step.REASON_FOR_LIVING)
    plan.walkthrough = True  # as the walk-through leaves it when it reaches the last step
    assert plans.save(plan, Step.REASON_FOR_LIVING, None) is None
    assert plan.editing is None and plan.walkthrough is False


@pytest.mark.parametrize("step", STEPS)
def test_editing_one_step_ends_after_that_step(step: Step) -> None:
    before = {name: f"old {name}" for name in IN_ORDER}
    plan = _plan(**before)
    plans.begin(plan, step)
    assert plans.save(plan, step, "new text") is None
    assert plan.editing is None and plan.walkthrough is False
    assert _texts(plan) == {**before, step.value: "new text"}


def test_keep_in_a_single_step_edit_changes_nothing_and_ends() -> None:
    plan = _plan(help_people="Mom 555-0100")
    plans.begin(plan, Step.HELP_PEOPLE)
    assert plans.save(plan, Step.HELP_PEOPLE, None) is None
    assert plan.help_people == "Mom 555-0100"
    assert plan.editing is None


def test_text_is_stripped() -> None:
    plan = _plan()
    plans.begin(plan, Step.COPING)
    plans.save(plan, Step.COPING, "\n  breathe, then text Sam \t ")
    assert plan.coping == "breathe, then text Sam"


@pytest.mark.parametrize("blank", ["", " ", "\n\t  \n"])
def test_empty_or_blank_text_clears_the_step(blank: str) -> None:
    plan = _plan(safe_environment="give my pills to Ana")
    plans.begin(plan, Step.SAFE_ENVIRONMENT)
    assert plans.save(plan, Step.SAFE_ENVIRONMENT, blank) is None
    assert plan.safe_environment is None


def test_clearing_in_a_walk_through_still_moves_on() -> None:
    plan = _plan(warning_signs="old")
    plans.begin(plan)
    assert plans.save(plan, Step.WARNING_SIGNS, "   ") is Step.COPING
    assert plan.warning_signs is None


def test_text_of_exactly_the_limit_is_kept() -> None:
    plan = _plan()
    plans.begin(plan, Step.WARNING_SIGNS)
    plans.save(plan, Step.WARNING_SIGNS, "x" * MAX_LENGTH)
    assert plan.warning_signs == "x" * MAX_LENGTH


def test_the_limit_counts_after_stripping() -> None:
    plan = _plan()
    plans.begin(plan, Step.WARNING_SIGNS)
    plans.save(plan, Step.WARNING_SIGNS, "   " + "x" * MAX_LENGTH + "\n\n")
    assert plan.warning_signs == "x" * MAX_LENGTH


@pytest.mark.parametrize("walkthrough", [True, False])
def test_text_over_the_limit_is_refused_and_changes_nothing(walkthrough: bool) -> None:
    plan = _plan(coping="keep me")
    plans.begin(plan)
    plans.save(plan, Step.WARNING_SIGNS, None)
    if not walkthrough:
        plans.begin(plan, Step.COPING)
    with pytest.raises(ValueError, match="too long"):
        plans.save(plan, Step.COPING, "y" * (MAX_LENGTH + 1))
    assert plan.coping == "keep me"
    assert plan.editing == "coping" and plan.walkthrough is walkthrough


def test_a_step_not_being_edited_is_refused() -> None:
    plan = _plan(distraction="music")
    plans.begin(plan)
    with pytest.raises(ValueError, match="not the step being edited"):
        plans.save(plan, Step.DISTRACTION, "something else")
    assert plan.distraction == "music"
    assert plan.editing == "warning_signs" and plan.walkthrough is True


@pytest.mark.parametrize("step", STEPS)
def test_nothing_is_saved_when_nothing_is_being_edited(step: Step) -> None:
    plan = _plan()
    with pytest.raises(ValueError):
        plans.save(plan, step, "text")
    with pytest.raises(ValueError):
        plans.save(plan, step, None)
    assert getattr(plan, step.value) is None and plan.editing is None


def test_a_finished_edit_refuses_a_second_save() -> None:
    plan = _plan()
    plans.begin(plan, Step.PROFESSIONALS)
    plans.save(plan, Step.PROFESSIONALS, "Dr. Lee 555-0199")
    with pytest.raises(ValueError):
        plans.save(plan, Step.PROFESSIONALS, "someone else")
    assert plan.professionals == "Dr. Lee 555-0199"


# ---- stop --------------------------------------------------------------------------------------------------


def test_stop_ends_the_walk_through_and_keeps_what_was_typed() -> None:
    plan = _plan()
    plans.begin(plan)
    plans.save(plan, Step.WARNING_SIGNS, "isolating")
    plans.save(plan, Step.COPING, "shower")
    plans.stop(plan)
    assert plan.editing is None and plan.walkthrough is False
    assert plans.editing(plan) is None
    assert (plan.warning_signs, plan.coping) == ("isolating", "shower")
    with pytest.raises(ValueError):
        plans.save(plan, Step.DISTRACTION, "tv")


def test_stop_with_nothing_being_edited_is_harmless() -> None:
    plan = _plan(coping="run")
    plans.stop(plan)
    assert (plan.editing, plan.walkthrough, plan.coping) == (None, False, "run")


# ---- filled and editing ------------------------------------------------------------------------------------


def test_filled_of_no_plan_is_empty() -> None:
    assert plans.filled(None) == []
    assert plans.filled(_plan()) == []


def test_filled_lists_the_steps_with_text_in_order() -> None:
    plan = _plan(reason_for_living="my kids", coping="", warning_signs="anger", professionals="Dr. Lee")
    assert plans.filled(plan) == [
        (Step.WARNING_SIGNS, "anger"),
        (Step.PROFESSIONALS, "Dr. Lee"),
        (Step.REASON_FOR_LIVING, "my kids"),
    ]


def test_editing_of_no_plan_or_nothing_being_edited_is_none() -> None:
    assert plans.editing(None) is None
    assert plans.editing(_plan()) is None


@pytest.mark.parametrize("step", STEPS)
def test_editing_reads_the_step(step: Step) -> None:
    plan = _plan()
    plan.editing = step.value
    assert plans.editing(plan) is step


@pytest.mark.parametrize("unknown", ["bogus", "", "WARNING_SIGNS", "reasons"])
def test_editing_an_unknown_value_is_none(unknown: str) -> None:
    plan = _plan()
    plan.editing = unknown  # e.g. a step renamed or removed since it was stored
    assert plans.editing(plan) is None


# ---- crisis contacts ---------------------------------------------------------------------------------------


def test_crisis_contacts_of_no_plan_is_none() -> None:
    assert plans.crisis_contacts(None) is None


def test_crisis_contacts_none_when_neither_people_nor_professionals() -> None:
    everything_else = {
        name: f"text {name}" for name in IN_ORDER if name not in {"help_people", "professionals"}
    }
    assert plans.crisis_contacts(_plan(**everything_else)) is None
    assert plans.crisis_contacts(_plan(help_people="", professionals="")) is None


def test_crisis_contacts_only_people() -> None:
    assert plans.crisis_contacts(_plan(help_people="Mom 555-0100", coping="run")) == "Mom 555-0100"


def test_crisis_contacts_only_professionals() -> None:
    assert plans.crisis_contacts(_plan(professionals="Dr. Lee 555-0199")) == "Dr. Lee 555-0199"


def test_crisis_contacts_people_then_professionals_on_separate_lines() -> None:
    plan = _plan(
        warning_signs="anger",
        help_people="Mom 555-0100",
        professionals="Dr. Lee 555-0199",
        reason_for_living="my kids",
    )
    assert plans.crisis_contacts(plan) == "Mom 555-0100\nDr. Lee 555-0199"


# ---- the database ------------------------------------------------------------------------------------------


async def test_no_plan_until_one_is_edited(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    async with sessions() as session:
        assert await plans.plan_of(session, patient_id) is None


async def test_plan_for_editing_creates_once(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        created = await plans.plan_for_editing(session, patient_id)
        assert created.id is not None
        assert created.patient_id == patient_id
        assert created.walkthrough is False and created.editing is None
        assert plans.filled(created) == []
        assert await plans.plan_for_editing(session, patient_id) is created
    async with db.transaction(sessions) as session:
        again = await plans.plan_for_editing(session, patient_id)
        assert again.id == created.id
        found = await plans.plan_of(session, patient_id)
        assert found is again
        count = await session.scalar(select(func.count()).select_from(SafetyPlan))
    assert count == 1


async def test_each_patient_has_their_own_plan(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    other_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        mine = await plans.plan_for_editing(session, patient_id)
        plans.begin(mine, Step.HELP_PEOPLE)
        plans.save(mine, Step.HELP_PEOPLE, "Mom")
    async with db.transaction(sessions) as session:
        assert await plans.plan_of(session, other_id) is None
        theirs = await plans.plan_for_editing(session, other_id)
        assert theirs.id != mine.id
        assert plans.filled(theirs) == []


async def test_a_walk_through_saved_step_by_step_is_kept(sessions: Sessions) -> None:
    """As the bot runs it: each message is its own transaction, so stopping halfway loses nothing."""
    patient_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        plans.begin(await plans.plan_for_editing(session, patient_id))
    for step in STEPS[:4]:
        async with db.transaction(sessions) as session:
            plan = await plans.plan_of(session, patient_id)
            assert plan is not None and plans.editing(plan) is step and plan.walkthrough is True
            plans.save(plan, step, f" {step.value} text ")
    async with sessions() as session:
        saved = await plans.plan_of(session, patient_id)
    assert saved is not None
    assert plans.editing(saved) is Step.PROFESSIONALS and saved.walkthrough is True
    assert plans.filled(saved) == [(step, f"{step.value} text") for step in STEPS[:4]]
    assert plans.crisis_contacts(saved) == "help_people text"


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_full_plan_at_the_longest_fits_one_telegram_message(language: str) -> None:
    catalog = load_catalog(Path(__file__).resolve().parent.parent / "content")
    sections = "\n\n".join(
        f"{catalog.render(f'plan.steps.{step.value}.title', language)}\n{'x' * MAX_LENGTH}" for step in STEPS
    )
    for key, extra in (
        ("plan.view", {}),
        ("plan.counselor_view", {"alias": "P-12345", "time": "Nov 23, 14:05"}),
    ):
        assert len(catalog.render(key, language, sections=sections, **extra)) <= 4096
