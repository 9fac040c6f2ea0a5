"""Tone (issue 18, item 14): the 988/911 footer only where risk is in play (not after "hello", a craving or a
reported use); a feeling put into words gets a kind reply with choices instead of "I didn't understand";
after /revoke a crisis message still gets the whole crisis reply; check-in prompts and reminders read safely
on a lock screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.core.models import CareFlag, Escalation, OutboxMessage, Patient, RiskSignal
from bot.schedule import jobs as schedule_jobs
from bot.schedule import rules as schedule_rules
from tests.e2e.test_crisis_first_flow import CRISIS, WAIT
from tests.e2e.test_schedule_flow import _session_starting_in
from tests.harness import BotHarness

LANGUAGES = ["en", "es"]
HELLO = {"en": "hello!", "es": "Hola"}
FEELING = {"en": "I'm so sad and lonely today", "es": "Hoy estoy muy triste"}
# Words a lock screen must not show in a prompt's first line, by language.
PRIVATE_WORDS = {
    "en": ("craving", "drug", "alcohol", "relapse"),
    "es": ("ganas", "droga", "alcohol", "consum"),
}


def _text(harness: BotHarness, key: str, language: str = "en", **variables: object) -> str:
    return harness.runtime.text(key, language, **variables)


def _footer(harness: BotHarness, language: str) -> str:
    return _text(harness, "crisis.short", language)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_hello_gets_a_greeting_without_the_crisis_footer(harness: BotHarness, language: str) -> None:
    user = harness.new_user_id()
    await harness.enroll(user, language=language)
    greeting = _text(harness, "tone.greeting", language)
    reply = await harness.say(user, HELLO[language], greeting.splitlines()[0])
    assert reply.text == greeting
    assert _footer(harness, language) not in greeting
    # Something nothing waits for and that is neither: "I didn't understand", without the footer either.
    reply = await harness.say(user, "the bus was late", _text(harness, "input.not_understood", language))
    assert "988" not in (reply.text or "")


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_feeling_gets_a_kind_reply_with_choices(harness: BotHarness, language: str) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    feeling = _text(harness, "tone.feeling", language)

    reply = await harness.say(user, FEELING[language], feeling)
    assert reply.text == feeling
    labels = [label for label, _ in reply.buttons()]
    keys = ("tone.exercise_button", "tone.talk_button", "tone.lines_button")
    assert labels == [_text(harness, key, language) for key in keys]
    assert _text(harness, "input.not_understood", language) not in [
        m.text for m in harness.standin.transcript(user)
    ]

    # "Talk to my care team": the care team is told (no page), and the patient hears what they will do.
    told = _text(harness, "tone.talk_told", language, promise=harness.promise(language))
    message = await harness.tap(user, reply, labels[1], told.split(".")[0])
    assert message.text == told
    patient = await harness.patient(user)
    assert patient is not None
    await harness.standin.wait_for(
        counselor_user, _text(harness, "care.flag.talk_requested", alias=patient.alias)
    )
    async with harness.runtime.sessions() as session:
        kinds = list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))
        pages = await session.scalar(select(func.count()).select_from(Escalation))
    assert (kinds, pages) == (["talk_requested"], 0)

    # "Crisis lines": the lines, when asked for.
    again = await harness.say(user, FEELING[language], feeling)
    lines = _text(harness, "tone.lines", language)
    shown = await harness.tap(user, again, labels[2], lines.splitlines()[0])
    assert shown.text == lines and "988" in lines


@pytest.mark.parametrize("language", LANGUAGES)
async def test_no_footer_after_a_strong_craving_or_a_reported_use(harness: BotHarness, language: str) -> None:
    user = harness.new_user_id()
    await harness.enroll(user, language=language)

    def label(key: str) -> str:
        return _text(harness, f"checkin.buttons.{key}", language)

    def first(key: str) -> str:
        return _text(harness, f"checkin.ask.{key}", language).splitlines()[0]

    craving = await harness.say(user, "/checkin", first("craving"))
    mark = harness.standin.mark(user)
    triggers = await harness.tap(user, craving, "9", first("triggers"))
    mood = await harness.tap(user, triggers, label("done"), first("mood"))
    sleep = await harness.tap(user, mood, "3", first("sleep"))
    use = await harness.tap(user, sleep, label("sleep.ok"), first("use"))
    what = await harness.tap(user, use, label("yes"), first("use_what"))
    note = await harness.tap(user, what, label("skip"), first("note"))
    # (At 8 or more, help was offered at once; the end of the check-in offers nothing more.)
    await harness.tap(user, note, label("skip"), _text(harness, "checkin.thanks", language).splitlines()[0])
    await harness.say(user, HELLO[language], _text(harness, "tone.greeting", language).splitlines()[0])

    after = [m.text or "" for m in harness.standin.transcript(user)[mark:]]
    assert any(_text(harness, "checkin.after_use", language) == text for text in after)
    assert not [text for text in after if _footer(harness, language) in text or "988" in text]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_after_revoke_a_crisis_message_still_gets_the_whole_crisis_reply(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    prompt = await harness.say(
        user, "/revoke", _text(harness, "revoke.confirm_prompt", language).split("?")[0]
    )
    await harness.tap(
        user,
        prompt,
        _text(harness, "revoke.confirm_button", language),
        _text(harness, "revoke.done", language).split(".")[0],
    )

    unshared = _text(harness, "promise.not_shared", language)
    expected = _text(
        harness, "crisis.imminent", language, overdose=False, plan_contacts=None, promise=unshared
    )
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, CRISIS[language])
    reply = await harness.standin.wait_for(user, expected.splitlines()[0], after=mark, timeout=WAIT)
    assert reply.text == expected
    assert _text(harness, "crisis.resources", language) in expected
    # They withdrew consent: nothing was recorded or passed on, and they are told so.
    async with harness.runtime.sessions() as session:
        signals = await session.scalar(select(func.count()).where(RiskSignal.patient_id == patient_id))
        escalations = await session.scalar(select(func.count()).where(Escalation.patient_id == patient_id))
    assert (signals, escalations) == (0, 0)
    assert not [m for m in harness.standin.transcript(counselor_user) if "alert" in (m.text or "")]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_prompts_and_reminders_are_safe_on_a_lock_screen(harness: BotHarness, language: str) -> None:
    """The first line (what a lock screen shows first) of the scheduled check-in prompt, its nudge and a
    session reminder names no craving, drug or alcohol."""
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    await harness.stop()
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo("America/New_York"))
    async with harness.runtime.sessions.begin() as session:
        await session.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(
                checkin_time=(local - timedelta(minutes=5)).time(),
                # Quiet hours away from now, so the nudge is allowed whenever the test runs.
                quiet_start=(local + timedelta(hours=2)).time(),
                quiet_end=(local + timedelta(hours=3)).time(),
            )
        )
        patient = await session.get_one(Patient, patient_id)
        group = await schedule_rules.group_named(session, "Evening IOP", create=True)
        await schedule_rules.join_group(session, group, patient)
    harness.settings = harness.settings.model_copy(
        update={"scheduler_tick_seconds": 0.5, "checkin_nudge_minutes": 0.02}
    )
    await harness.start()
    await _session_starting_in(harness, timedelta(minutes=59))
    # The scheduler's own planning may run first (its tick is half a second): either way the reminder is
    # planned once, and it is waited for below.
    await schedule_jobs.plan(harness.runtime)

    intro = _text(harness, "checkin.intro_scheduled", language).splitlines()[0]
    nudge = _text(harness, "checkin.nudge", language).splitlines()[0]
    reminder = _text(
        harness, "schedule.reminder", language, title="Evening IOP group", when="", location="", url=""
    )
    prompt = await harness.standin.wait_for(user, intro, timeout=WAIT)
    nudged = await harness.standin.wait_for(user, nudge, timeout=WAIT)
    reminded = await harness.standin.wait_for(user, reminder.split(",")[0], timeout=WAIT)
    for message in (prompt, nudged, reminded):
        first_line = (message.text or "").splitlines()[0].lower()
        assert not [word for word in PRIVATE_WORDS[language] if word in first_line], first_line
    async with harness.runtime.sessions() as session:
        sent = await session.scalar(select(func.count()).where(OutboxMessage.patient_id == patient_id))
    assert sent is not None and sent >= 3
