"""/sos (issue 18 item 8): help at any time. First in the command menu in both languages; a "Help now" button
kept under a patient's chat; the crisis lines, the clinic's numbers, the patient's own safety-plan contacts
and reason for living; "Tell my care team now" pages as an imminent alert (category patient_request), once
while it is unanswered. A patient who withdrew consent or whose care ended still gets the crisis lines.

Real HTTP, the real Application and database, against the stand-in."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.config import Settings
from bot.core.models import EscalationStatus, OutboxMessage, Patient, PatientStatus, SafetyPlan
from bot.risk.callbacks import SOS, SosButton
from devtools.simulator import BotMessage
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import TEST_CLINIC_VALUES, BotHarness, alert_button, until

CLINIC_PHONE = TEST_CLINIC_VALUES["clinic_phone"]  # the harness's clinic settings
AFTER_HOURS_PHONE = TEST_CLINIC_VALUES["after_hours_phone"]
TELL_TEAM = SOS.pack(SosButton("team"))


def _line(harness: BotHarness, key: str, language: str, **variables: object) -> str:
    return harness.runtime.text(key, language, **variables).splitlines()[0]


def _sos(harness: BotHarness, language: str, team: str) -> str:
    """The /sos reply as a patient without a plan gets it, with no clinic numbers set."""
    empty = dict.fromkeys(("clinic_phone", "after_hours_phone", "plan_contacts", "reason"), "")
    return harness.runtime.text("sos.reply", language, team=team, **empty)


async def _plan(harness: BotHarness, patient_id: int, **steps: str) -> None:
    async with db.transaction(harness.runtime.sessions) as session:
        session.add(SafetyPlan(patient_id=patient_id, walkthrough=False, **steps))


async def _pages(harness: BotHarness, escalation_id: int) -> list[OutboxMessage]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "page", OutboxMessage.key.startswith(f"page:{escalation_id}:")
            )
        )
        return list(rows)


async def test_sos_is_first_in_the_command_menu_in_both_languages(harness: BotHarness) -> None:
    standin = harness.standin
    await until(lambda: bool(standin.commands(language_code="es")), 10, "the command menus")
    for language, code in (("en", ""), ("es", "es")):
        first = standin.commands(language_code=code)[0]
        assert first == {"command": "sos", "description": harness.runtime.text("commands.sos", language)}


@pytest.mark.parametrize("language", ["en", "es"])
async def test_help_now_shows_lines_and_plan_and_tells_the_care_team_once(
    settings: Settings, engine: object, language: str
) -> None:
    async with BotHarness.running(settings) as harness:
        counselor_user, counselor_id = await harness.link_counselor("Sam")
        user = harness.new_user_id()
        patient_id = await harness.enroll(user, counselor_id, language=language)
        label = harness.runtime.text("sos.keyboard_button", language)
        # Set-up ends with the "Help now" button under the chat (on "You're all set", before the naloxone
        # question's own buttons).
        done = harness.part("onboarding.done", language)
        [ready] = [m for m in harness.standin.transcript(user) if done in (m.text or "")]
        assert ready.reply_keyboard() == [label]
        await _plan(
            harness,
            patient_id,
            help_people="Ana 555-0134",
            professionals="Dr. Lee",
            reason_for_living="My kids",
        )

        first = _sos(harness, language, "none").splitlines()[0]
        # Tapping the button sends its label: answered like /sos, before anything else reads the words.
        shown = await harness.say(user, label, first)
        text = shown.text or ""
        for expected in (
            "988",
            "741741",
            "911",
            CLINIC_PHONE,
            AFTER_HOURS_PHONE,
            "Ana 555-0134",
            "Dr. Lee",
            "My kids",
        ):
            assert expected in text
        assert "1-800-662-4357" not in text  # the treatment-referral line is no crisis line
        assert shown.buttons() == [(harness.runtime.text("sos.team_button", language), TELL_TEAM)]
        assert await _escalations(harness, patient_id) == []  # asking for the lines pages nobody

        told = _line(harness, "sos.team_told", language)
        await harness.tap(user, shown, harness.runtime.text("sos.team_button", language), told)
        category = harness.runtime.text("escalation.categories.patient_request", "en")
        alert = await harness.standin.wait_for(
            counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
        )
        assert category in (alert.text or "") and "Ana" not in (alert.text or "")
        [escalation] = await _escalations(harness, patient_id)
        assert (escalation.level, escalation.category, escalation.source) == (
            "imminent",
            "patient_request",
            "sos",
        )
        assert escalation.detail is None

        # A second tap (the same button, or /sos again) while the alert waits pages nobody again.
        again = await harness.say(user, "/sos", first)
        await harness.tap(
            user,
            again,
            harness.runtime.text("sos.team_button", language),
            _line(harness, "sos.team_already", language),
        )
        assert len(await _escalations(harness, patient_id)) == 1
        assert len(await _pages(harness, escalation.id)) == 1

        # Once a counselor has acknowledged, asking again opens the alert again and pages.
        await harness.standin.tap(counselor_user, alert.message_id, alert_button(alert, "ack"))
        await harness.standin.wait_for(
            counselor_user, harness.part("escalation.acknowledged", counselor="Sam")
        )
        third = await harness.say(user, "/sos", first)
        await harness.tap(user, third, harness.runtime.text("sos.team_button", language), told)
        [escalation] = await _escalations(harness, patient_id)
        assert escalation.status is EscalationStatus.OPEN
        assert len(await _pages(harness, escalation.id)) == 2


@pytest.mark.parametrize(
    ("status", "team"), [(PatientStatus.CONSENT_REVOKED, "stopped"), (PatientStatus.DISCHARGED, "ended")]
)
async def test_after_consent_is_withdrawn_or_care_ended_sos_still_gives_the_lines(
    harness: BotHarness, status: PatientStatus, team: str
) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language="es")
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(update(Patient).where(Patient.id == patient_id).values(status=status))
    shown: BotMessage = await harness.say(user, "/sos", _sos(harness, "es", team).splitlines()[0])
    text = shown.text or ""
    assert "988" in text and "741741" in text and "911" in text
    assert text.endswith(_sos(harness, "es", team).splitlines()[-1])
    assert shown.buttons() == []  # nothing is passed on to the care team
    # The old button, tapped now, is refused and pages nobody.
    query = await harness.standin.tap_raw(user, shown.message_id, TELL_TEAM)
    await harness.standin.wait_for_callback_answer(query)
    assert await _escalations(harness, patient_id) == []


async def test_a_stranger_gets_the_crisis_lines(harness: BotHarness) -> None:
    user = harness.new_user_id()
    shown = await harness.say(user, "/sos", _sos(harness, "en", "none").splitlines()[0])
    assert "988" in (shown.text or "") and shown.buttons() == []
