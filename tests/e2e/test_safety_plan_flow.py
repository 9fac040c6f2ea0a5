"""/safetyplan built step by step and shown; its contacts in a crisis; the counselor's view; /alerts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import AuditEvent, SafetyPlan, utcnow
from bot.risk.callbacks import ALERT, AlertButton
from bot.risk.escalation import seen
from bot.risk.safety_plan import EDIT_TIMEOUT, MAX_LENGTH
from devtools.simulator import BotMessage
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import BotHarness, alert_button


async def _plan(harness: BotHarness, patient_id: int) -> SafetyPlan | None:
    async with harness.runtime.sessions() as session:
        return await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))


async def test_a_plan_is_built_step_by_step_shown_and_changed(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)

    step = await harness.start_safety_plan(user)
    step = await harness.say(user, "I stop answering my phone", harness.part("plan.steps.coping.title"))
    step = await harness.tap(
        user, step, harness.text("plan.skip_button"), harness.part("plan.steps.distraction.title")
    )
    # Stop halfway: what was typed is kept.
    await harness.tap(user, step, harness.text("plan.stop_button"), harness.part("plan.stopped"))
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.warning_signs == "I stop answering my phone"
    assert plan.coping is None and plan.editing is None
    # Text typed now is not taken as a plan step.
    await harness.say(user, "the bus was late", harness.part("input.not_understood"))

    shown = await harness.say(user, "/safetyplan", harness.part("plan.view"))
    assert "I stop answering my phone" in (shown.text or "") and "988" in (shown.text or "")
    assert harness.part("plan.empty_step") in (shown.text or "")
    which = await harness.tap(user, shown, harness.text("plan.edit_button"), harness.part("plan.edit_which"))
    step = await harness.tap(
        user,
        which,
        harness.text("plan.steps.help_people.title"),
        harness.part("plan.steps.help_people.prompt"),
    )
    shown = await harness.say(user, "My sister Ana 555-0134", harness.part("plan.view"))
    assert "My sister Ana 555-0134" in (shown.text or "")

    # Changing a step that has words shows them and offers to keep them.
    which = await harness.tap(user, shown, harness.text("plan.edit_button"), harness.part("plan.edit_which"))
    step = await harness.tap(
        user,
        which,
        harness.text("plan.steps.warning_signs.title"),
        harness.part("plan.ask", text="I stop answering my phone"),
    )
    shown = await harness.tap(user, step, harness.text("plan.keep_button"), harness.part("plan.view"))
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.warning_signs == "I stop answering my phone"

    # Too long is refused with the limit, and nothing is lost.
    which = await harness.tap(user, shown, harness.text("plan.edit_button"), harness.part("plan.edit_which"))
    prompt = harness.runtime.text("plan.steps.professionals.prompt", "en", prefilled="")
    await harness.tap(user, which, harness.text("plan.steps.professionals.title"), prompt.splitlines()[0])
    await harness.say(user, "x" * (MAX_LENGTH + 1), harness.part("plan.too_long", limit=MAX_LENGTH))
    await harness.say(user, "Dr. Lee 555-0199", harness.part("plan.view"))
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.professionals == "Dr. Lee 555-0199"
    assert plan.help_people == "My sister Ana 555-0134"


async def test_the_whole_walk_through_then_a_stale_skip(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    first = await harness.start_safety_plan(user)
    answers = ["Isolating", "A walk", "The gym", "Ana 555-0134", "Dr. Lee", "Pills to my sister"]
    for answer in answers:
        await harness.say(user, answer, harness.part("plan.skip_button"))
    shown = await harness.say(user, "My kids", harness.part("plan.view"))
    assert all(a in (shown.text or "") for a in [*answers, "My kids"])
    # The Skip button of the first step, tapped now, does nothing to the finished plan.
    await harness.tap(user, first, harness.text("plan.skip_button"), harness.part("input.button_expired"))
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.warning_signs == "Isolating" and plan.reason_for_living == "My kids"


async def test_crisis_shows_the_plan_contacts_and_the_counselor_can_see_the_plan(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    stranger_user, _ = await harness.link_counselor("Eve")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    patient = await harness.patient(user)
    assert patient is not None

    alert = None
    await harness.start_safety_plan(user)
    await harness.say(user, "Isolating", harness.part("plan.steps.coping.title"))
    await harness.say(user, "A walk", harness.part("plan.steps.distraction.title"))
    step = await harness.say(user, "The gym", harness.part("plan.steps.help_people.title"))
    await harness.say(user, "My sister Ana 555-0134", harness.part("plan.steps.professionals.title"))
    step = await harness.say(user, "Dr. Lee 555-0199", harness.part("plan.steps.safe_environment.title"))
    await harness.tap(user, step, harness.text("plan.stop_button"), harness.part("plan.stopped"))

    reply = await harness.say(user, "this is goodbye. thank you for everything", "988")
    assert "My sister Ana 555-0134" in (reply.text or "") and "Dr. Lee 555-0199" in (reply.text or "")
    assert "Isolating" not in (reply.text or "")

    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    [escalation] = await _escalations(harness, patient_id)
    shown = await harness.tap(
        counselor_user, alert, harness.text("escalation.plan_button"), harness.part("plan.counselor_view")
    )
    assert patient.alias in (shown.text or "") and "Isolating" in (shown.text or "")
    async with harness.runtime.sessions() as session:
        viewed = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "escalation.safety_plan_viewed")
        )
    assert viewed is not None and viewed.subject_id == escalation.id

    # A counselor off the care team cannot see it.
    query = await harness.standin.tap_raw(stranger_user, 1, f"esc:{escalation.id}:plan")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("escalation.refused") in str(answer.get("text"))
    assert not [m for m in harness.standin.transcript(stranger_user) if "Isolating" in (m.text or "")]


async def test_alerts_lists_open_escalations_and_an_acknowledgement_shows_everywhere(
    harness: BotHarness,
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    other_user, _ = await harness.link_counselor("Eve")
    first_user, second_user = harness.new_user_id(), harness.new_user_id()
    first_id = await harness.enroll(first_user, counselor_id)
    await harness.enroll(second_user, counselor_id)
    await harness.say(other_user, "/alerts", harness.part("escalation.none_open"))

    await harness.say(first_user, "i relapsed last night", harness.part("use.told_high"))
    await harness.say(second_user, "took 30 xanax", "911")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )

    mark = harness.standin.mark(counselor_user)
    await harness.standin.send_text(counselor_user, "/alerts")
    header = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.open_list", count=2, more=0), after=mark
    )
    listed = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.listed_open"), after=mark
    )
    # The most urgent first.
    assert harness.text("escalation.levels.imminent") in (listed.text or "") and harness.text(
        "escalation.categories.overdose"
    ) in (listed.text or "")
    assert header.message_id < listed.message_id

    # Acknowledging from the list shows on the original alert too.
    [escalation] = await _escalations(harness, first_id)
    relapse_copy = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.categories.relapse"), after=mark
    )
    ack = alert_button(relapse_copy, "ack")
    assert ALERT.parse(ack) == AlertButton(escalation.id, "ack", seen(escalation))
    await harness.standin.tap(counselor_user, relapse_copy.message_id, ack)
    # Both copies of the relapse alert (the page and the listed one) now say who acknowledged it.
    page = next(
        m
        for m in harness.standin.transcript(counselor_user)[:mark]
        if harness.part("escalation.categories.relapse") in (m.text or "")
    )
    for message_id in (page.message_id, relapse_copy.message_id):

        def acknowledged(m: BotMessage, message_id: int | None = message_id) -> bool:
            return m.message_id == message_id and harness.part(
                "escalation.acknowledged", counselor="Sam"
            ) in (m.text or "")

        await harness.standin.wait_for(counselor_user, acknowledged)


async def test_crisis_words_in_a_plan_step_are_asked_about_not_paged(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    await harness.start_safety_plan(user)

    # Warning signs are written in crisis words on purpose: kept, and asked about instead of paged.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "when i start thinking about killing myself")
    await harness.standin.wait_for(user, harness.part("crisis.safety_check"), after=mark)
    await harness.standin.wait_for(user, harness.part("plan.steps.coping.title"), after=mark)
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.warning_signs == "when i start thinking about killing myself"
    assert await _escalations(harness, patient_id) == []
    assert not [m for m in harness.standin.transcript(counselor_user) if "alert" in (m.text or "")]


async def test_a_plan_step_left_open_does_not_take_later_messages(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    await harness.start_safety_plan(user)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(SafetyPlan)
            .where(SafetyPlan.patient_id == patient_id)
            .values(updated_at=utcnow() - EDIT_TIMEOUT - timedelta(minutes=1))
        )
    await harness.say(user, "the bus was late", harness.part("input.not_understood"))
    plan = await _plan(harness, patient_id)
    assert plan is not None and plan.warning_signs is None
