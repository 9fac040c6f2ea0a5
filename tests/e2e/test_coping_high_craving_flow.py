"""Coping at a high craving (issue 18, item 15, the parts built so far): "play the tape forward" is neither
offered nor run at a craving of 8 or more (another exercise is offered instead); the body scan carries a
trauma caveat, and breath-focused exercises say to switch to grounding if the breath makes anxiety worse;
five new modules (delay-distract-decide, DBT TIPP, STOP, reasons for recovery, if-then plans); at a
craving of 8 or more, a support person and "wait 15 minutes, then check on me" first, and an exercise that
starts within two taps.

Real HTTP, the real Application and database.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.content.modules import Category
from bot.coping.rules import CHECK_BACK_AFTER
from bot.core.models import CopingSession, CopingStatus, OutboxMessage, SafetyPlan, utcnow
from devtools.simulator import BotMessage
from tests.harness import BotHarness

TAPE = "play_the_tape_forward"


def _text(harness: BotHarness, key: str, language: str, **variables: object) -> str:
    return harness.runtime.text(key, language, **variables)


@pytest.mark.parametrize("language", ["en", "es"])
async def test_play_the_tape_forward_is_not_run_at_a_craving_of_8_or_more(
    harness: BotHarness, language: str
) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, language=language)
    modules = harness.runtime.modules
    tape, urge = modules.get(TAPE, language), modules.get("urge_surfing", language)
    assert tape is not None and urge is not None and tape.max_craving == 7

    async def start_tape() -> BotMessage:
        menu = await harness.say(user, "/cope", _text(harness, "coping.menu", language).splitlines()[0])
        category = _text(harness, "coping.categories.reflection", language)
        listing = await harness.tap(user, menu, category, "")
        label = _text(harness, "coping.module_button", language, title=tape.title, minutes=tape.minutes)
        return await harness.tap(user, listing, label, tape.title)

    rate = await start_tape()
    too_strong = _text(harness, "coping.too_strong", language, title=tape.title)
    offer = await harness.tap(user, rate, "8", too_strong)
    assert offer.text == too_strong
    assert [label for label, _ in offer.buttons()] == [
        _text(harness, "checkin.start_button", language, title=urge.title),
        _text(harness, "checkin.other_exercises_button", language),
    ]
    async with harness.runtime.sessions() as session:
        [run] = await session.scalars(select(CopingSession).where(CopingSession.patient_id == patient_id))
    assert (run.module_id, run.status, run.craving_before) == (TAPE, CopingStatus.ABANDONED, None)

    # The offered exercise starts at once; at 7 the tape runs as before.
    await harness.tap(user, offer, urge.title, urge.title)
    rate = await start_tape()
    first = await harness.tap(user, rate, "7", tape.steps[0].text.split("\n")[0][:30])
    assert tape.steps[0].text.split("\n")[0][:30] in (first.text or "")


@pytest.mark.parametrize("language", ["en", "es"])
async def test_breath_and_body_exercises_point_to_grounding(harness: BotHarness, language: str) -> None:
    modules = harness.runtime.modules
    grounding = modules.get("grounding_54321", language)
    assert grounding is not None
    short_name = grounding.title if language == "es" else "5-4-3-2-1 grounding"
    breath = [m for m in modules.in_language(language) if m.category is Category.BREATHING]
    assert {m.id for m in breath} == {"box_breathing", "breathing_478"}
    for module in [*breath, modules.get("body_scan", language)]:
        assert module is not None
        assert short_name in module.steps[0].text, module.id


NEW_MODULES = ("delay_distract_decide", "tipp", "stop_skill", "reasons_for_recovery", "if_then_plans")


@pytest.mark.parametrize("language", ["en", "es"])
async def test_the_new_modules_are_in_the_toolbox_and_run(harness: BotHarness, language: str) -> None:
    user = harness.new_user_id()
    await harness.enroll(user, language=language)
    modules = harness.runtime.modules
    menu_first_line = _text(harness, "coping.menu", language).splitlines()[0]
    for module_id in NEW_MODULES:
        module = modules.get(module_id, language)
        assert module is not None and module.steps, module_id
        menu = await harness.say(user, "/cope", menu_first_line)
        category = _text(harness, f"coping.categories.{module.category.value}", language)
        listing = await harness.tap(user, menu, category, "")
        label = _text(harness, "coping.module_button", language, title=module.title, minutes=module.minutes)
        assert label in [text for text, _ in listing.buttons()], module_id
    # STOP, start to finish: every step shown in order, then the "after" question.
    stop = modules.get("stop_skill", language)
    assert stop is not None
    menu = await harness.tap(user, listing, _text(harness, "coping.back_button", language), menu_first_line)
    listing = await harness.tap(user, menu, _text(harness, "coping.categories.mindfulness", language), "")
    label = _text(harness, "coping.module_button", language, title=stop.title, minutes=stop.minutes)
    rate = await harness.tap(user, listing, label, stop.title)
    message = await harness.tap(user, rate, "6", stop.steps[0].text.splitlines()[0])
    for step in stop.steps[1:]:
        message = await harness.tap(
            user, message, _text(harness, "coping.next_button", language), step.text.splitlines()[0]
        )
    await harness.standin.wait_for(user, _text(harness, "coping.rate_after", language).splitlines()[0])


@pytest.mark.parametrize("language", ["en", "es"])
async def test_at_8_or_more_a_support_person_a_wait_and_an_exercise_in_two_taps(
    harness: BotHarness, language: str
) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, language=language)
    urge = harness.runtime.modules.get("urge_surfing", language)
    assert urge is not None

    async def strong_offer() -> BotMessage:
        craving = await harness.say(
            user, "/checkin", _text(harness, "checkin.ask.craving", language).splitlines()[0]
        )
        return await harness.tap(
            user, craving, "9", _text(harness, "coping.strong.offer", language).splitlines()[0]
        )

    offer = await strong_offer()
    support, delay = (_text(harness, f"coping.strong.{k}_button", language) for k in ("support", "delay"))
    assert [label for label, _ in offer.buttons()][:3] == [
        support,
        delay,
        _text(harness, "checkin.start_button", language, title=urge.title),
    ]
    # No support person in a safety plan yet: how to add one, and 988.
    await harness.tap(
        user, offer, support, _text(harness, "coping.strong.no_support", language).splitlines()[0]
    )
    # With one: the people the patient named, to call or text now.
    async with harness.runtime.sessions() as session, session.begin():
        session.add(SafetyPlan(patient_id=patient_id, help_people="Ana 555-0100"))
    people = await harness.tap(user, offer, support, "Ana 555-0100")
    assert people.text == _text(harness, "coping.strong.support", language, plan_contacts="Ana 555-0100")

    # "Wait 15 minutes, then check on me": a message due in 15 minutes.
    before = utcnow()
    await harness.tap(user, offer, delay, _text(harness, "coping.strong.delayed", language).splitlines()[0])
    async with harness.runtime.sessions() as session:
        [row] = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "check_back", OutboxMessage.patient_id == patient_id
            )
        )
    assert before + CHECK_BACK_AFTER <= row.due_at <= utcnow() + CHECK_BACK_AFTER
    async with harness.runtime.sessions() as session, session.begin():
        now = utcnow()
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id).values(due_at=now, next_attempt_at=now)
        )
    harness.runtime.wake_outbox()
    check_back = await harness.standin.wait_for(
        user, _text(harness, "coping.strong.check_back", language).splitlines()[0]
    )
    # Still strong: the same choices again; the exercise starts with two taps (start, then the rating).
    again = await harness.tap(
        user,
        check_back,
        _text(harness, "coping.strong.strong_button", language),
        _text(harness, "coping.strong.offer", language).splitlines()[0],
    )
    rate = await harness.tap(
        user, again, _text(harness, "checkin.start_button", language, title=urge.title), urge.title
    )
    first = urge.steps[0].text.splitlines()[0]
    await harness.tap(user, rate, "9", first)
