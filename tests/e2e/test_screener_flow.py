"""The C-SSRS screener after suicide-adjacent messages, with Columbia's triage, over real HTTP and PTB.

Permission comes first, alone (OK / Not now): "Not now" is never stored as an answer, and leads to "are you
safe right now?" and a care-team flag. A "no" never closes an alert that is already open; a yes to intent or
a plan pages at once as urgent (and the details say what was not asked); a low result is a referral flag,
not a page; a patient screened before gets the "since last contact" wording; an ambiguous message left
unanswered is not taken as "no", and neither is an unanswered safety question.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.models import (
    AuditEvent,
    CareFlag,
    Escalation,
    EscalationStatus,
    RiskSignal,
    ScreenStatus,
    SuicideScreen,
    utcnow,
)
from bot.risk import cssrs
from bot.risk import jobs as risk_jobs
from devtools.simulator import BotMessage
from tests.e2e.test_crisis_first_flow import _crisis_replies, _outbox_mark
from tests.e2e.test_crisis_flow import UNLISTED, _alerts, _escalations
from tests.harness import BotHarness, alert_button

AMBIGUOUS = {"en": "i dont see a way forward", "es": "no veo salida"}
HIGH = {"en": "i wish i could go to sleep and not wake up", "es": "quisiera dormirme y no despertar"}
WAIT = 15.0  # replies of a crisis turn go through the outbox, one a second per chat


def _q(harness: BotHarness, question: cssrs.Question, language: str = "en") -> str:
    """The question as asked (the first line: Q6's examples follow on the next)."""
    return harness.text(f"cssrs.questions.{question}", language).splitlines()[0]


async def _screens(harness: BotHarness, patient_id: int) -> list[SuicideScreen]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(SuicideScreen).where(SuicideScreen.patient_id == patient_id).order_by(SuicideScreen.id)
        )
        return list(rows)


async def _flags(harness: BotHarness, patient_id: int) -> list[str]:
    async with harness.runtime.sessions() as session:
        return list(
            await session.scalars(
                select(CareFlag.kind).where(CareFlag.patient_id == patient_id).order_by(CareFlag.id)
            )
        )


async def _answer(
    harness: BotHarness, user: int, question: BotMessage, label: str, expect: str
) -> BotMessage:
    return await harness.tap(user, question, label, expect)


async def _agree(harness: BotHarness, user: int, permission: BotMessage, language: str = "en") -> BotMessage:
    """Tap OK: question 1 follows, in the wording this patient's screen uses."""
    ok = harness.text("cssrs.ok_button", language)
    return await harness.tap(user, permission, ok, _q(harness, cssrs.Question.WISH_DEAD, language))


async def _patient(harness: BotHarness, language: str = "en") -> tuple[int, int, int]:
    """A linked counselor's chat, and an enrolled patient's chat and id."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    return counselor_user, user, await harness.enroll(user, counselor_id, language=language)


# ---- permission first (item 2) -----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
async def test_permission_is_its_own_question_and_not_now_asks_if_safe(
    harness: BotHarness, language: str
) -> None:
    counselor_user, user, patient_id = await _patient(harness, language)
    permission_text = harness.text("cssrs.intro_alerted", language)

    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, HIGH[language])
    permission = await harness.standin.wait_for(user, permission_text, after=mark, timeout=WAIT)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    # Alone: no question 1 in it, and OK / Not now rather than Yes / No.
    assert permission.text == permission_text
    labels = [label for label, _ in permission.buttons()]
    assert labels == [
        harness.text("cssrs.ok_button", language),
        harness.text("cssrs.not_now_button", language),
    ]
    assert not any(
        _q(harness, cssrs.Question.WISH_DEAD, language) in (m.text or "")
        for m in harness.standin.transcript(user)[mark:]
    )

    # "Not now" is not "no wish to be dead": nothing is answered, the safety question follows, the team is
    # told.
    mark = harness.standin.mark(counselor_user)
    await harness.tap(user, permission, harness.text("cssrs.not_now_button", language), "")
    await harness.standin.wait_for(user, harness.text("cssrs.declined", language))
    safety = await harness.standin.wait_for(user, harness.text("crisis.safety_check", language))
    assert [label for label, _ in safety.buttons()] == [
        harness.text("crisis.safe_button", language),
        harness.text("crisis.not_safe_button", language),
    ]
    patient = await harness.patient(user)
    assert patient is not None
    notice = harness.text("care.flag.screener_declined", "en", alias=patient.alias)
    await harness.standin.wait_for(counselor_user, notice, after=mark)
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.DECLINED and screen.answers == {} and screen.result is None
    assert await _flags(harness, patient_id) == ["screener_declined"]
    assert len(await _escalations(harness, patient_id)) == 1 and len(_alerts(harness, counselor_user)) == 1

    await harness.tap(user, safety, harness.text("crisis.safe_button", language), "")
    await harness.standin.wait_for(user, harness.text("crisis.safe_reply", language).split(".")[0])


async def test_ok_is_permission_not_an_answer(harness: BotHarness) -> None:
    counselor_user, user, patient_id = await _patient(harness)
    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    # Anything but OK or "not now" asks again; typing "ok" is OK.
    await harness.say(user, "maybe? idk", harness.text("cssrs.use_permission_buttons"))
    question = await harness.say(user, "ok", _q(harness, cssrs.Question.WISH_DEAD))
    assert harness.text("cssrs.begin_past_month") in (question.text or "")
    [screen] = await _screens(harness, patient_id)
    assert screen.answers == {} and screen.step == cssrs.Question.WISH_DEAD
    assert await _escalations(harness, patient_id) == [] and _alerts(harness, counselor_user) == []
    # The permission buttons are spent.
    query = await harness.standin.tap_raw(user, permission.message_id, f"css:{screen.id}:ask:y")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert answer.get("text") == harness.text("cssrs.stale")


# ---- the questions and Columbia's triage (item 3) ----------------------------------------------------------


async def test_after_a_crisis_message_no_to_everything_keeps_the_alert_open(harness: BotHarness) -> None:
    counselor_user, user, patient_id = await _patient(harness)

    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "im going to kill myself tonight")
    permission = await harness.standin.wait_for(
        user, harness.text("cssrs.intro_alerted"), after=mark, timeout=WAIT
    )
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    question = await _agree(harness, user, permission)
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.THOUGHTS)
    )
    # No thoughts: straight to 6, with every example.
    behavior = harness.text("cssrs.questions.behavior")
    question = await _answer(harness, user, question, harness.text("cssrs.no_button"), behavior)
    assert question.text == behavior
    for example in ("or it was grabbed from your hand", "tried to shoot yourself", "tried to hang yourself"):
        assert example in behavior
    await _answer(
        harness,
        user,
        question,
        harness.text("cssrs.no_button"),
        harness.text("cssrs.result_clear_open", promise="").split(".")[0],
    )

    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN and escalation.level == "imminent"
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.COMPLETE and screen.result == "none"
    assert screen.escalation_id == escalation.id
    assert screen.answers == {"wish_dead": False, "thoughts": False, "behavior": False}

    # The counselor sees the words and what the screener found, on request.
    mark = harness.standin.mark(counselor_user)
    await harness.standin.tap(counselor_user, alert.message_id, alert_button(alert, "det"))
    summary = await harness.standin.wait_for(counselor_user, harness.part("escalation.screener"), after=mark)
    wished = (
        f"{harness.text('escalation.screener_questions.wish_dead')}: {harness.text('escalation.screener_no')}"
    )
    assert harness.text("escalation.screener_risk.none") in (summary.text or "") and wished in (
        summary.text or ""
    )
    blank = {"time": "", "risk": "", "unfinished": False, "declined": False, "answers": "", "not_asked": ""}
    not_asked = harness.text("escalation.screener", **{**blank, "not_asked": "-"}, below=False, level="")
    assert not_asked.splitlines()[-1].removesuffix("-") not in (summary.text or "")
    # The screener's lower finding is shown under an URGENT alert: the details say the alert stays urgent.
    urgent = harness.text("escalation.levels.imminent")
    stays = harness.text("escalation.screener", **blank, below=True, level=urgent).splitlines()[-1]
    assert stays != harness.text("escalation.screener", **blank, below=False, level=urgent).splitlines()[-1]
    assert stays in (summary.text or "")


async def test_a_yes_to_intent_pages_at_once_and_the_details_say_what_was_not_asked(
    harness: BotHarness,
) -> None:
    counselor_user, user, patient_id = await _patient(harness)

    # Ambiguous words: no alert yet, the screener decides. Typed answers work as well as the buttons.
    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    assert await _escalations(harness, patient_id) == []
    await _agree(harness, user, permission)
    await harness.say(user, "no", _q(harness, cssrs.Question.THOUGHTS))
    question = await harness.say(user, "yes", _q(harness, cssrs.Question.METHOD))
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.INTENT)
    )
    outbox_mark = await _outbox_mark(harness)
    reply = await _answer(harness, user, question, harness.text("cssrs.yes_button"), "988")
    first_line = harness.text("cssrs.result_urgent", plan_contacts=None, promise="").split("\n")[0]
    assert first_line in (reply.text or "")
    # A result that pages is a crisis reply: written to the outbox's urgent lane in the turn's transaction.
    [urgent] = await _crisis_replies(harness, user, outbox_mark)
    assert first_line in urgent

    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent" and escalation.category == "suicide"
    assert escalation.source == "cssrs" and escalation.detail is None
    [screen] = await _screens(harness, patient_id)
    # Intent is enough: the screener stops there instead of asking about a plan first...
    assert screen.result == "high" and "plan" not in screen.answers and "behavior" not in screen.answers
    # ...and the care team is told which questions were not asked (not asked is not "no").
    mark = harness.standin.mark(counselor_user)
    await harness.standin.tap(counselor_user, alert.message_id, alert_button(alert, "det"))
    summary = await harness.standin.wait_for(counselor_user, harness.part("escalation.screener"), after=mark)
    not_asked = " · ".join(
        harness.text(f"escalation.screener_questions.{q}")
        for q in (cssrs.Question.PLAN, cssrs.Question.BEHAVIOR)
    )
    blank = {"time": "", "risk": "", "unfinished": False, "declined": False, "answers": ""}
    told = harness.text("escalation.screener", **blank, not_asked=not_asked, below=False, level="")
    assert told.splitlines()[-1] in (summary.text or "")


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_low_result_is_a_referral_flag_not_a_page(harness: BotHarness, language: str) -> None:
    counselor_user, user, patient_id = await _patient(harness, language)
    yes, no = harness.text("cssrs.yes_button", language), harness.text("cssrs.no_button", language)

    permission = await harness.say(user, AMBIGUOUS[language], harness.text("cssrs.intro_ambiguous", language))
    question = await _agree(harness, user, permission, language)
    question = await _answer(harness, user, question, yes, _q(harness, cssrs.Question.THOUGHTS, language))
    question = await _answer(harness, user, question, no, _q(harness, cssrs.Question.BEHAVIOR, language))
    mark = harness.standin.mark(counselor_user)
    await _answer(harness, user, question, no, harness.text("cssrs.result_referral", language).split(".")[0])

    patient = await harness.patient(user)
    assert patient is not None
    referral = harness.text("care.flag.screener_referral", "en", alias=patient.alias)
    await harness.standin.wait_for(counselor_user, referral, after=mark)
    [screen] = await _screens(harness, patient_id)
    assert screen.result == "low"
    assert await _escalations(harness, patient_id) == [] and _alerts(harness, counselor_user) == []
    assert await _flags(harness, patient_id) == ["screener_referral"]


async def test_behaviour_long_ago_is_high_and_a_repeat_screen_is_since_last_contact(
    harness: BotHarness,
) -> None:
    counselor_user, user, patient_id = await _patient(harness)

    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    question = await _agree(harness, user, permission)
    question = await _answer(
        harness, user, question, harness.text("cssrs.yes_button"), _q(harness, cssrs.Question.THOUGHTS)
    )
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.BEHAVIOR)
    )
    question = await _answer(
        harness, user, question, harness.text("cssrs.yes_button"), _q(harness, cssrs.Question.BEHAVIOR_RECENT)
    )
    await _answer(
        harness, user, question, harness.text("cssrs.no_button"), harness.part("cssrs.result_concern")
    )
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "high"
    [screen] = await _screens(harness, patient_id)
    assert screen.result == "moderate"

    # Within a day the same words ask the plain safety question, not the whole screener again.
    await harness.say(user, AMBIGUOUS["en"], harness.text("crisis.safety_check"))
    assert len(await _screens(harness, patient_id)) == 1

    # Days later, the screener again, in its "since last contact" wording; behaviour since then is recent.
    async with db.transaction(harness.runtime.sessions) as session:
        earlier = utcnow() - timedelta(days=3)
        await session.execute(
            update(SuicideScreen)
            .where(SuicideScreen.id == screen.id)
            .values(started_at=earlier, answered_at=earlier, finished_at=earlier)
        )
        await session.execute(
            update(RiskSignal).where(RiskSignal.patient_id == patient_id).values(at=earlier)
        )
    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    wish = _q(harness, cssrs.Question.WISH_DEAD_SINCE)
    question = await harness.tap(user, permission, harness.text("cssrs.ok_button"), wish)
    assert harness.text("cssrs.begin_since_last") in (question.text or "")
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.THOUGHTS_SINCE)
    )
    behavior = harness.text("cssrs.questions.behavior_since")
    question = await _answer(harness, user, question, harness.text("cssrs.no_button"), behavior)
    assert "or it was grabbed from your hand" in behavior
    await _answer(harness, user, question, harness.text("cssrs.yes_button"), "988")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    repeat = (await _screens(harness, patient_id))[-1]
    assert repeat.result == "high"
    assert repeat.answers == {"wish_dead_since": False, "thoughts_since": False, "behavior_since": True}


async def test_all_no_after_ambiguous_words_raises_nothing(harness: BotHarness) -> None:
    counselor_user, user, patient_id = await _patient(harness)

    permission = await harness.say(user, "im not going to kill myself", harness.text("cssrs.intro_ambiguous"))
    question = await _agree(harness, user, permission)
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.THOUGHTS)
    )
    question = await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.BEHAVIOR)
    )
    await _answer(
        harness, user, question, harness.text("cssrs.no_button"), harness.part("cssrs.result_clear")
    )
    assert await _escalations(harness, patient_id) == []
    assert _alerts(harness, counselor_user) == []


async def test_odd_answers_stale_and_forged_buttons(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    other_user = harness.new_user_id()
    await harness.enroll(other_user, counselor_id)

    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    question = await _agree(harness, user, permission)
    # Something that is not yes or no: the question is asked again.
    await harness.say(user, "maybe? idk", harness.part("cssrs.use_buttons"))
    [screen] = await _screens(harness, patient_id)
    assert screen.step == "wish_dead" and screen.answers == {}

    # Another patient forging this screener's button is refused and changes nothing.
    query = await harness.standin.tap_raw(other_user, 1, f"css:{screen.id}:wish_dead:y")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("cssrs.stale") in str(answer.get("text"))
    [screen] = await _screens(harness, patient_id)
    assert screen.answers == {}

    # A replayed answer to a question already answered is refused too.
    await _answer(
        harness, user, question, harness.text("cssrs.no_button"), _q(harness, cssrs.Question.THOUGHTS)
    )
    query = await harness.standin.tap_raw(user, question.message_id, f"css:{screen.id}:wish_dead:y")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("cssrs.stale") in str(answer.get("text"))
    [screen] = await _screens(harness, patient_id)
    assert screen.answers == {"wish_dead": False}


# ---- silence is not "no" -----------------------------------------------------------------------------------


async def _time_passes(harness: BotHarness, patient_id: int) -> None:
    """An hour passes with no answer (a controlled clock) for the screener and the safety question."""
    earlier = utcnow() - timedelta(minutes=harness.settings.cssrs_unanswered_minutes + 1)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(SuicideScreen)
            .where(SuicideScreen.patient_id == patient_id)
            .values(started_at=earlier, answered_at=earlier)
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == cssrs.SAFETY_ASKED, AuditEvent.subject_id == patient_id)
            .values(at=earlier)
        )


async def test_a_screener_left_unanswered_alerts_the_care_team(harness: BotHarness) -> None:
    counselor_user, user, patient_id = await _patient(harness)

    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    question = await _agree(harness, user, permission)
    question = await _answer(
        harness, user, question, harness.text("cssrs.yes_button"), _q(harness, cssrs.Question.THOUGHTS)
    )
    await _time_passes(harness, patient_id)
    await risk_jobs.close_stalled(harness.runtime)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.UNANSWERED and screen.result == "low"
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.source == "cssrs_unanswered" and screen.escalation_id == escalation.id
    async with harness.runtime.sessions() as session:
        assert await session.scalar(select(Escalation.status).where(Escalation.id == escalation.id)) == "open"

    # A late answer still counts: the screener carries on where it stopped.
    await _answer(
        harness, user, question, harness.text("cssrs.yes_button"), _q(harness, cssrs.Question.METHOD)
    )
    [screen] = await _screens(harness, patient_id)
    assert screen.status is ScreenStatus.OPEN and screen.answers == {"wish_dead": True, "thoughts": True}


async def test_an_unanswered_safety_question_is_followed_up(harness: BotHarness) -> None:
    counselor_user, user, patient_id = await _patient(harness)
    patient = await harness.patient(user)
    assert patient is not None

    # After ambiguous words and "Not now", with no alert yet: silence raises a high alert, as an unanswered
    # screener does.
    permission = await harness.say(user, AMBIGUOUS["en"], harness.text("cssrs.intro_ambiguous"))
    await harness.tap(
        user, permission, harness.text("cssrs.not_now_button"), harness.text("crisis.safety_check")
    )
    await _time_passes(harness, patient_id)
    await risk_jobs.follow_up_safety_checks(harness.runtime)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    [escalation] = await _escalations(harness, patient_id)
    assert (escalation.level, escalation.source) == ("high", "safety_unanswered")
    await risk_jobs.follow_up_safety_checks(harness.runtime)  # followed up once
    assert len(_alerts(harness, counselor_user)) == 1

    # A softened phrase asks too; with an alert already open, silence is a flag for the counselor.
    await harness.say(user, "i'm not going to overdose", harness.text("crisis.safety_check"))
    mark = harness.standin.mark(counselor_user)
    await _time_passes(harness, patient_id)
    await risk_jobs.follow_up_safety_checks(harness.runtime)
    notice = harness.text("care.flag.safety_unanswered", "en", alias=patient.alias)
    await harness.standin.wait_for(counselor_user, notice, after=mark)
    assert (await _flags(harness, patient_id))[-1] == "safety_unanswered"

    # Answered (typing "yes" works as well as the button): nothing to follow up. (The model's question, so
    # that this is not a third moderate signal in two days, which would add up to an alert.)
    await harness.say(user, UNLISTED, harness.text("crisis.safety_check"))
    await harness.say(user, "yes", harness.text("crisis.safe_reply").split(".")[0])
    flags = await _flags(harness, patient_id)
    await _time_passes(harness, patient_id)
    await risk_jobs.follow_up_safety_checks(harness.runtime)
    assert await _flags(harness, patient_id) == flags
    assert len(await _escalations(harness, patient_id)) == 1
