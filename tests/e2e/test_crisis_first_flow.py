"""A crisis is never answered by another flow (issue 18, item 1): after a high or imminent reply an open
check-in is paused (its answers kept, /checkin carries it on), an exercise is stopped (no more timed steps),
and a safety-plan step or a "can't make it" reason is no longer waited for; the text goes to none of them.

Real HTTP, the real Application and database. What a turn replied is read from the outbox's urgent lane
(every reply of a crisis turn is a row there, written in the turn's transaction), so "nothing else was said"
is checked on what the turn decided, not on how long we waited for more messages.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.coping import rules as coping
from bot.core import db
from bot.core.models import (
    Attendance,
    CheckIn,
    CheckInStatus,
    CopingSession,
    CopingStatus,
    InviteKind,
    OutboxMessage,
    Patient,
    PatientStatus,
    Rsvp,
    SafetyPlan,
    SessionKind,
    utcnow,
)
from bot.handlers.base import URGENT_REPLY_KIND
from bot.outbox import store as outbox
from bot.schedule import rules as schedule
from tests.e2e.test_crisis_flow import UNLISTED, _escalations
from tests.harness import BotHarness

CRISIS = {"en": "im going to kill myself tonight", "es": "me voy a matar esta noche"}
WAIT = 15.0  # a crisis turn's replies go through the outbox, one a second per chat


async def _outbox_mark(harness: BotHarness) -> int:
    async with harness.runtime.sessions() as session:
        return await session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0))) or 0


async def _crisis_replies(harness: BotHarness, chat_id: int, after: int) -> list[str]:
    """What crisis turns replied in this chat since the outbox `after` mark, in order."""
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.kind == URGENT_REPLY_KIND,
                outbox.to_chat(session, chat_id),
                OutboxMessage.id > after,
            )
            .order_by(OutboxMessage.id)
        )
        return [str(row.payload["text"]) for row in rows]


async def _checkin(harness: BotHarness, patient_id: int) -> CheckIn:
    async with harness.runtime.sessions() as session:
        return await session.get_one(
            CheckIn,
            await session.scalar(select(func.max(CheckIn.id)).where(CheckIn.patient_id == patient_id)),
        )


def _expected_crisis_turn(harness: BotHarness, language: str) -> list[str]:
    """The imminent reply (no safety plan yet), then the screener's permission question: nothing else."""
    return [
        harness.text(
            "crisis.imminent", language, overdose=False, plan_contacts=None, promise=harness.promise(language)
        ),
        harness.text("cssrs.intro_alerted", language),
    ]


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_crisis_typed_in_a_check_in_pauses_it_and_checkin_carries_it_on(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)

    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving", language))
    triggers = await harness.tap(user, craving, "3", harness.part("checkin.ask.triggers", language))
    done = harness.text("checkin.buttons.done", language)
    await harness.tap(user, triggers, done, harness.part("checkin.ask.mood", language))

    # The mood question waits for a number; a crisis comes instead.
    mark, outbox_mark = harness.standin.mark(user), await _outbox_mark(harness)
    await harness.standin.send_text(user, CRISIS[language])
    permission = harness.text("cssrs.intro_alerted", language)
    await harness.standin.wait_for(user, permission, after=mark, timeout=WAIT)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert await _crisis_replies(harness, user, outbox_mark) == _expected_crisis_turn(harness, language)
    retry = harness.text("checkin.retry.mood", language)
    assert not any(retry in (m.text or "") for m in harness.standin.transcript(user)[mark:])

    paused = await _checkin(harness, patient_id)
    assert paused.status is CheckInStatus.PAUSED
    assert (paused.craving, paused.triggers, paused.step) == (3, [], "mood")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent"

    # Later, /checkin carries it on where it stopped, with the answers given before.
    resumed = await harness.say(user, "/checkin", harness.text("checkin.resumed", language))
    assert harness.part("checkin.ask.mood", language) in (resumed.text or "")
    # (Typed words would go to the screener's open question first: the check-in's buttons answer it.)
    await harness.tap(user, resumed, "4", harness.part("checkin.ask.sleep", language))
    carried_on = await _checkin(harness, patient_id)
    assert carried_on.id == paused.id and carried_on.status is CheckInStatus.OPEN
    assert (carried_on.craving, carried_on.mood) == (3, 4)


async def test_a_crisis_during_an_exercise_stops_it(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    menu = await harness.say(user, "/cope", harness.part("coping.menu"))
    breathing = await harness.tap(
        user, menu, harness.text("coping.categories.breathing"), harness.part("coping.category_intro")
    )
    start = await harness.tap(
        user, breathing, harness.module_title("box_breathing"), harness.part("coping.rate_before")
    )
    step = await harness.tap(user, start, "8", "· 1/")
    async with harness.runtime.sessions() as session:
        run = await session.scalar(select(CopingSession).where(CopingSession.patient_id == patient_id))
    assert run is not None and run.status is CopingStatus.RUNNING

    mark, outbox_mark = harness.standin.mark(user), await _outbox_mark(harness)
    await harness.standin.send_text(user, CRISIS["en"])
    await harness.standin.wait_for(user, harness.text("cssrs.intro_alerted"), after=mark, timeout=WAIT)
    assert await _crisis_replies(harness, user, outbox_mark) == _expected_crisis_turn(harness, "en")
    middle = harness.text(
        "coping.mid_exercise", title=harness.module_title("box_breathing"), number=1, total=1
    ).split("(")[0]
    assert not any(middle in (m.text or "") for m in harness.standin.transcript(user)[mark:])

    # Stopped: no step is due, ever; its Next button is stale.
    async with harness.runtime.sessions() as session:
        stopped = await session.get_one(CopingSession, run.id)
        due = await coping.due_steps(session, utcnow() + timedelta(days=1))
    assert stopped.status is CopingStatus.ABANDONED and stopped.next_step_at is None
    assert due == []
    next_label = harness.text("coping.next_button")
    data = next(d for label, d in step.buttons() if label == next_label)
    answer = await harness.standin.wait_for_callback_answer(
        await harness.standin.tap_raw(user, step.message_id, data)
    )
    assert answer.get("text") == harness.text("coping.stale")


async def test_a_crisis_sets_aside_a_reason_being_asked_and_a_plan_step(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)

    # "Can't make it" was just tapped: the bot waits for the reason.
    async with db.transaction(harness.runtime.sessions) as session:
        added = await schedule.add_session(
            session,
            title="Evening IOP group",
            kind=SessionKind.GROUP,
            starts_local=(utcnow() + timedelta(days=1)).replace(tzinfo=None, microsecond=0),
            timezone="UTC",
            duration=timedelta(hours=3),
            patient=await session.get_one(Patient, patient_id),
        )
        session.add(
            Attendance(
                patient_id=patient_id,
                session_id=added.id,
                occurrence=utcnow() + timedelta(days=1),
                response=Rsvp.CANNOT,
                awaiting_reason=True,
            )
        )
    # A slip disclosed (a high signal): the crisis reply, and the reason is no longer waited for.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "i relapsed last night")
    await harness.standin.wait_for(user, harness.part("use.told_high"), after=mark, timeout=WAIT)
    # What they type next is not taken as their reason for missing the session.
    await harness.say(user, "my car broke down", harness.text("input.not_understood"))
    async with harness.runtime.sessions() as session:
        [row] = await session.scalars(select(Attendance).where(Attendance.patient_id == patient_id))
    assert (row.awaiting_reason, row.reason) == (False, None)

    # A plan step being typed: crisis words there are asked about (by design), and "I need help now" is a
    # crisis reply that sets the plan step aside.
    await harness.start_safety_plan(user)
    question = await harness.say(
        user, "when i think about killing myself", harness.text("crisis.safety_check")
    )
    await harness.standin.wait_for(user, harness.part("plan.steps.coping.title"))
    mark = harness.standin.mark(user)
    await harness.tap(user, question, harness.text("crisis.not_safe_button"), "988")
    await harness.standin.wait_for(user, harness.text("cssrs.intro_alerted"), after=mark, timeout=WAIT)
    async with harness.runtime.sessions() as session:
        plan = await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))
    assert plan is not None and plan.editing is None
    assert plan.warning_signs == "when i think about killing myself"
    # The screener's question now waits for the text, not the plan.
    await harness.say(user, "call my sister", harness.text("cssrs.use_permission_buttons"))
    async with harness.runtime.sessions() as session:
        plan = await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))
    assert plan is not None and plan.coping is None


async def _writing_a_plan(harness: BotHarness) -> tuple[int, int, int]:
    """A counselor and their patient, at the first step of a new safety plan: (counselor user, patient user,
    patient id)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    await harness.start_safety_plan(user)
    return counselor_user, user, patient_id


async def _plan(harness: BotHarness, patient_id: int) -> SafetyPlan:
    async with harness.runtime.sessions() as session:
        plan = await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))
    assert plan is not None
    return plan


async def test_a_typed_no_in_a_plan_step_answers_are_you_safe_and_is_not_saved_as_a_step(
    harness: BotHarness,
) -> None:
    counselor_user, user, patient_id = await _writing_a_plan(harness)
    # Crisis words in a plan step are asked about; the plan's next step follows the question.
    await harness.say(
        user, "i just swallowed all my pills, i want to die", harness.text("crisis.safety_check")
    )
    await harness.standin.wait_for(user, harness.part("plan.steps.coping.title"))
    assert await _escalations(harness, patient_id) == []

    # "no" answers "are you safe right now?": a crisis reply and a page, and the plan's step is set aside.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "no")
    await harness.standin.wait_for(user, harness.text("cssrs.intro_alerted"), after=mark, timeout=WAIT)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent"
    plan = await _plan(harness, patient_id)
    assert plan.editing is None and plan.coping is None


async def test_crisis_words_that_add_up_in_a_plan_step_get_the_crisis_reply_not_an_error(
    harness: BotHarness,
) -> None:
    counselor_user, user, patient_id = await _writing_a_plan(harness)
    await harness.say(user, "when i start thinking i want to die", harness.text("crisis.safety_check"))
    await harness.standin.wait_for(user, harness.part("plan.steps.coping.title"))
    await harness.say(
        user, "i wish i was dead sometimes, then i call my sponsor", harness.text("crisis.safety_check")
    )
    await harness.standin.wait_for(user, harness.part("plan.steps.distraction.title"))

    # The third such message in two days is a pattern: it pages, and the crisis reply is the only answer.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "i want to die, i wish i was dead")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    await harness.standin.wait_for(user, harness.part("crisis.high"), after=mark, timeout=WAIT)
    error = harness.part("error.generic")
    assert not any(error in (m.text or "") for m in harness.standin.transcript(user)[mark:])
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "high"
    plan = await _plan(harness, patient_id)
    assert plan.editing is None and plan.distraction is None
    assert plan.coping == "i wish i was dead sometimes, then i call my sponsor"


@pytest.mark.parametrize("words", ["en", "es"])
async def test_a_crisis_typed_during_set_up_is_answered_and_paged_and_set_up_waits(
    harness: BotHarness, words: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, finish_setup=False)
    before = await harness.patient(user)
    assert before is not None and before.status is PatientStatus.ONBOARDING
    language = before.language  # set-up has not asked for theirs yet
    # Words only the semantic layer worries about: "are you safe right now?", left unanswered.
    await harness.say(user, UNLISTED, harness.text("crisis.safety_check", language))

    # The time-zone question waits for an answer; a crisis comes instead (in either language).
    mark, outbox_mark = harness.standin.mark(user), await _outbox_mark(harness)
    await harness.standin.send_text(user, CRISIS[words])
    permission = await harness.standin.wait_for(
        user, harness.text("cssrs.intro_alerted", language), after=mark, timeout=WAIT
    )
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert await _crisis_replies(harness, user, outbox_mark) == _expected_crisis_turn(harness, language)
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent"
    unknown_zone = harness.part("onboarding.invalid_timezone", language)
    assert not any(unknown_zone in (m.text or "") for m in harness.standin.transcript(user)[mark:])
    after = await harness.patient(user)
    assert after is not None
    assert (after.status, after.onboarding_step) == (PatientStatus.ONBOARDING, before.onboarding_step)
    # The screener it offered works in set-up: its first question, and a typed "no" is the screener's answer
    # (not an answer to the safety question still waiting).
    question = harness.part("cssrs.questions.wish_dead", language)
    await harness.tap(user, permission, harness.text("cssrs.ok_button", language), question)
    await harness.say(user, "no", harness.part("cssrs.questions.thoughts", language))


async def test_the_exercise_a_crisis_reply_offers_in_set_up_opens(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id, finish_setup=False)
    told = await harness.say(user, "i relapsed last night", harness.part("use.told_high"))
    await harness.tap(user, told, harness.text("crisis.try_exercise_button"), harness.part("coping.menu"))


async def test_a_crisis_before_i_agree_gets_the_crisis_lines_first_and_tells_nobody(
    harness: BotHarness,
) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    code = await harness.invite(InviteKind.PATIENT, counselor_id)
    await harness.say(user, f"/start {code}", harness.part("consent.screen"))
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.CONSENT_PENDING
    language = patient.language

    mark = harness.standin.mark(user)
    not_told = harness.text("promise.not_yet_shared", language)
    reply = await harness.say(user, CRISIS[language], not_told)
    assert harness.part("crisis.imminent", language, overdose=False, plan_contacts=None, promise="") in (
        reply.text or ""
    )
    # The consent screen waits for their next message; nothing was recorded or paged.
    consent_screen = harness.part("consent.screen", language)
    assert not any(consent_screen in (m.text or "") for m in harness.standin.transcript(user)[mark:])
    assert await _escalations(harness, patient.id) == []


async def test_the_safety_plan_a_crisis_reply_offers_in_set_up_can_be_written(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, finish_setup=False)
    high = await harness.say(user, "i wish i was dead", harness.part("crisis.high"))
    button = harness.text("plan.edit_button")
    shown = await harness.tap(
        user, high, harness.text("crisis.safety_plan_button"), harness.part("plan.view")
    )
    which = await harness.tap(user, shown, button, harness.text("plan.edit_which"))
    title = harness.text("plan.steps.warning_signs.title")
    asked = await harness.tap(user, which, title, title)
    # The step's words go to the plan, not to set-up's time-zone question.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "when i start drinking alone")
    await harness.standin.wait_for(user, harness.part("plan.steps.warning_signs.title"), after=mark)
    assert asked.text is not None
    plan = await _plan(harness, patient_id)
    assert plan.warning_signs == "when i start drinking alone"
