"""The C-SSRS screener after suicide-adjacent messages, with Columbia's triage, over real HTTP and PTB.

A "no" never closes an alert that is already open; a yes to intent or a plan pages at once as urgent; an
ambiguous message left unanswered is not taken as "no".
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import Escalation, EscalationStatus, ScreenStatus, SuicideScreen, utcnow
from bot.risk import jobs as risk_jobs
from devtools.simulator import BotMessage
from tests.e2e.test_crisis_flow import _alerts, _escalations, _link
from tests.harness import BotHarness

Q1 = "wished you were dead"
Q2 = "thoughts of killing yourself"
Q3 = "how you might do this"
Q4 = "intention of acting"
Q6 = "started to do anything"
RECENT = "past 3 months"


async def _screens(harness: BotHarness, patient_id: int) -> list[SuicideScreen]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(SuicideScreen).where(SuicideScreen.patient_id == patient_id).order_by(SuicideScreen.id)
        )
        return list(rows)


async def _answer(
    harness: BotHarness, user: int, question: BotMessage, label: str, expect: str
) -> BotMessage:
    return await harness.tap(user, question, label, expect)


async def test_after_a_crisis_message_no_to_everything_keeps_the_alert_open(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    question = await harness.say(patient_user, "im going to kill myself tonight", Q1)
    alert = await harness.standin.wait_for(counselor_user, "URGENT alert")
    question = await _answer(harness, patient_user, question, "No", Q2)
    question = await _answer(harness, patient_user, question, "No", Q6)  # no thoughts: straight to 6
    await _answer(harness, patient_user, question, "No", "will still check in with you")

    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN and escalation.level == "imminent"
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.COMPLETE and screen.result == "none"
    assert screen.escalation_id == escalation.id
    assert screen.answers == {"wish_dead": False, "thoughts": False, "behavior": False}

    # The counselor sees the words and what the screener found, on request.
    mark = harness.standin.mark(counselor_user)
    await harness.standin.tap(counselor_user, alert.message_id, f"esc:{escalation.id}:det")
    summary = await harness.standin.wait_for(counselor_user, "C-SSRS screener", after=mark)
    assert "no risk indicated" in (summary.text or "") and "wished dead: no" in (summary.text or "")


async def test_a_yes_to_intent_pages_as_urgent_at_once(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    # Ambiguous words: no alert yet, the screener decides.
    question = await harness.say(patient_user, "i dont see a way forward", Q1)
    assert await _escalations(harness, patient_id) == []
    # Typed answers work as well as the buttons.
    question = await harness.say(patient_user, "yes", Q2)
    question = await _answer(harness, patient_user, question, "Yes", Q3)
    question = await _answer(harness, patient_user, question, "Yes", Q4)
    reply = await _answer(harness, patient_user, question, "Yes", "988")
    assert "this is urgent" in (reply.text or "")

    await harness.standin.wait_for(counselor_user, "URGENT alert")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent" and escalation.category == "suicide"
    assert escalation.source == "cssrs" and escalation.detail is None
    [screen] = await _screens(harness, patient_id)
    # Intent is enough: the screener stops there instead of asking about a plan first.
    assert screen.result == "high" and "plan" not in screen.answers


async def test_behaviour_long_ago_is_high_and_no_answer_at_all_is_clear(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    question = await harness.say(patient_user, "i dont see a way forward", Q1)
    question = await _answer(harness, patient_user, question, "Yes", Q2)
    question = await _answer(harness, patient_user, question, "No", Q6)
    question = await _answer(harness, patient_user, question, "Yes", RECENT)
    await _answer(harness, patient_user, question, "No", "let your care team know")
    await harness.standin.wait_for(counselor_user, "High alert")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "high"
    [screen] = await _screens(harness, patient_id)
    assert screen.result == "moderate"

    # Within a day the same words ask the plain safety question, not the whole screener again.
    question = await harness.say(patient_user, "i dont see a way forward", "Are you safe right now")
    assert len(await _screens(harness, patient_id)) == 1


async def test_all_no_after_ambiguous_words_raises_nothing(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    question = await harness.say(patient_user, "im not going to kill myself", Q1)
    question = await _answer(harness, patient_user, question, "No", Q2)
    question = await _answer(harness, patient_user, question, "No", Q6)
    await _answer(harness, patient_user, question, "No", "glad to hear it")
    assert await _escalations(harness, patient_id) == []
    assert _alerts(harness, counselor_user) == []


async def test_odd_answers_stale_and_forged_buttons(harness: BotHarness) -> None:
    _, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)
    other_user = harness.new_user_id()
    await harness.enroll(other_user, counselor_id)

    question = await harness.say(patient_user, "i dont see a way forward", Q1)
    # Something that is not yes or no: the question is asked again.
    await harness.say(patient_user, "maybe? idk", "tap Yes or No")
    [screen] = await _screens(harness, patient_id)
    assert screen.step == "wish_dead" and screen.answers == {}

    # Another patient forging this screener's button is refused and changes nothing.
    query = await harness.standin.tap_raw(other_user, 1, f"css:{screen.id}:wish_dead:y")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert "no longer open" in str(answer.get("text"))
    [screen] = await _screens(harness, patient_id)
    assert screen.answers == {}

    # A replayed answer to a question already answered is refused too.
    await _answer(harness, patient_user, question, "No", Q2)
    query = await harness.standin.tap_raw(patient_user, question.message_id, f"css:{screen.id}:wish_dead:y")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert "no longer open" in str(answer.get("text"))
    [screen] = await _screens(harness, patient_id)
    assert screen.answers == {"wish_dead": False}


async def test_a_screener_left_unanswered_alerts_the_care_team(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    question = await harness.say(patient_user, "i dont see a way forward", Q1)
    question = await _answer(harness, patient_user, question, "Yes", Q2)
    # An hour passes with no answer (a controlled clock), and the scheduler's job runs.
    async with db.transaction(harness.runtime.sessions) as session:
        earlier = utcnow() - timedelta(minutes=harness.settings.cssrs_unanswered_minutes + 1)
        await session.execute(
            update(SuicideScreen)
            .where(SuicideScreen.patient_id == patient_id)
            .values(started_at=earlier, answered_at=earlier)
        )
    await risk_jobs.close_stalled(harness.runtime)
    await harness.standin.wait_for(counselor_user, "High alert")
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.UNANSWERED and screen.result == "low"
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.source == "cssrs_unanswered" and screen.escalation_id == escalation.id
    async with harness.runtime.sessions() as session:
        assert await session.scalar(select(Escalation.status).where(Escalation.id == escalation.id)) == "open"

    # A late answer still counts: the screener carries on where it stopped.
    await _answer(harness, patient_user, question, "Yes", Q3)
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.OPEN and screen.answers == {"wish_dead": True, "thoughts": True}
