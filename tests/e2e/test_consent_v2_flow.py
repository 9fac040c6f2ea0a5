"""Consent version 2 (issue 18 item 13), in English and Spanish: a new patient reads the new wording (with the
program's name and the response hours from the clinic's settings); an existing patient who agreed to an
earlier version is asked to agree at their next message or command, without set-up again, while a crisis is
still answered first. Version 3 (issue 22) is asked in the same way of a patient who agreed to version 2.

Real HTTP, the real Application and database, against the stand-in."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.config import Settings
from bot.core.models import Consent, InviteKind, Patient
from bot.enrollment.consent import CONSENT_VERSION
from bot.handlers.consent_update import ACCEPT, DECLINE
from bot.risk import RiskLevel
from devtools.simulator import BotMessage
from tests.harness import BotHarness

PROGRAM = "Riverside Evening IOP"
OLD_VERSION = "2026-11.1"
VERSION_2 = "2026-12.2"  # before issue 22's questionnaires, medicines, naloxone, replies and aftercare
CRISIS = {"en": "im going to kill myself tonight", "es": "me voy a matar esta noche"}
HOURS = {
    "en": "Mon–Fri, 08:00 to 18:00, Eastern (New York) time",
    "es": "lun–vie, de 08:00 a 18:00, hora Este (Nueva York)",
}


def _body(harness: BotHarness, language: str) -> str:
    hours = harness.runtime.text("consent.hours", language, days="", start="", end="", zone="")
    assert hours  # the shape is content's; the values are checked through HOURS below
    return harness.runtime.text("consent.body", language, program=PROGRAM, hours=HOURS[language])


async def _consents(harness: BotHarness, patient_id: int) -> list[Consent]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.id)
        )
        return list(rows)


@pytest.fixture
def program_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"program_name": PROGRAM})


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_new_patient_reads_version_2(
    program_settings: Settings, engine: object, language: str
) -> None:
    async with BotHarness.running(program_settings) as harness:
        _, counselor_id = await harness.link_counselor("Sam")
        user = harness.new_user_id()
        code = await harness.invite(InviteKind.PATIENT, counselor_id, language=language)
        screen = await harness.say(user, f"/start {code}", PROGRAM)
        body = _body(harness, language)
        assert screen.text == harness.runtime.text("consent.screen", language, body=body, program=PROGRAM)
        for fact in (
            "/mydata",
            "/deleteme",
            "/revoke",
            "/sos",
            "42 CFR part 2 pro",
            "988",
            "911",
            PROGRAM,
            HOURS[language],
        ):
            assert fact in body
        accepted = harness.runtime.text("consent.accepted", language)
        await harness.tap(user, screen, harness.runtime.text("consent.accept_button", language), accepted)
        patient = await harness.patient(user)
        assert patient is not None
        [consent] = await _consents(harness, patient.id)
        assert consent.version == CONSENT_VERSION


async def _agreed_to_the_old_version(
    harness: BotHarness, language: str, version: str = OLD_VERSION
) -> tuple[int, int]:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(update(Consent).where(Consent.patient_id == patient_id).values(version=version))
    return user, patient_id


@pytest.mark.parametrize("language", ["en", "es"])
async def test_an_existing_patient_agrees_at_their_next_message_without_set_up(
    harness: BotHarness, language: str
) -> None:
    user, patient_id = await _agreed_to_the_old_version(harness, language)
    before = await harness.patient(user)
    assert before is not None
    text = harness.runtime.text
    first = text("consent.update", language, body="").splitlines()[0]

    # A command waits for the new version; "Not now" keeps everything as it was, and asks again next time.
    asked = await harness.say(user, "/checkin", first)
    assert tuple(d for _, d in asked.buttons()) == (ACCEPT, DECLINE)
    later = text("consent.update_later", language).splitlines()[0]
    await harness.tap(user, asked, text("consent.decline_button", language), later)
    mark = harness.standin.mark(user)
    asked = await harness.say(user, "hello", first)
    done = await harness.tap(
        user, asked, text("consent.accept_button", language), text("consent.update_accepted", language)
    )
    assert done.reply_keyboard() == [text("sos.keyboard_button", language)]
    # "hello" waited: the new version was its only answer (its turn finished before the tap's).
    assert [m.message_id for m in harness.standin.transcript(user)[mark:]] == [
        asked.message_id,
        done.message_id,
    ]
    old, new = await _consents(harness, patient_id)
    assert (old.version, new.version) == (OLD_VERSION, CONSENT_VERSION) and old.revoked_at is None
    after = await harness.patient(user)
    assert after is not None
    # Set-up was not asked again: the patient's settings are as they were.
    assert (after.status, after.checkin_time, after.timezone, after.language) == (
        before.status,
        before.checkin_time,
        before.timezone,
        before.language,
    )
    # From now on their words go where they always did.
    await harness.say(user, "the bus was late", text("input.not_understood", language).splitlines()[0])

    # Withdrawing consent withdraws every version in force.
    prompt = await harness.say(user, "/revoke", text("revoke.confirm_prompt", language).splitlines()[0])
    await harness.tap(
        user, prompt, text("revoke.confirm_button", language), text("revoke.done", language).splitlines()[0]
    )
    assert all(c.revoked_at is not None for c in await _consents(harness, patient_id))


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_crisis_is_answered_before_the_new_version_is_asked(
    harness: BotHarness, language: str
) -> None:
    user, _ = await _agreed_to_the_old_version(harness, language)
    mark = harness.standin.mark(user)
    reply: BotMessage = await harness.say(user, CRISIS[language], "988")
    first = harness.runtime.text("consent.update", language, body="").splitlines()[0]
    assert reply.text is not None and not reply.text.startswith(first)
    assert all(not (m.text or "").startswith(first) for m in harness.standin.transcript(user)[mark:])
    patient = await harness.patient(user)
    assert isinstance(patient, Patient)
    # The crisis was answered under the earlier consent. A typed "yes" or "no" now answers the screener's
    # question; a command is asked for the new version.
    await harness.say(user, "/cope", first)


async def test_a_question_only_the_semantic_layer_asks_comes_before_the_new_version(
    harness: BotHarness,
) -> None:
    user, _ = await _agreed_to_the_old_version(harness, "en")
    words = (
        "i keep thinking everyone would move on fine if i just vanished"  # no rule finds it; the layer asks
    )
    screened = harness.runtime.content.risk.screen(words)
    assert screened.rules_only().level is RiskLevel.NONE and screened.semantic_question
    mark = harness.standin.mark(user)
    await harness.say(user, words, harness.text("crisis.safety_check"))
    first = harness.runtime.text("consent.update", "en", body="").splitlines()[0]
    assert all(not (m.text or "").startswith(first) for m in harness.standin.transcript(user)[mark:])
    # The new version is asked at the next command.
    await harness.say(user, "/cope", first)


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_patient_on_version_2_is_asked_for_version_3(
    program_settings: Settings, engine: object, language: str
) -> None:
    """Version 3 (issue 22: questionnaires, medicine reminders, naloxone, replies to the care team, aftercare)
    is asked of a patient who agreed to version 2: the whole of the current wording (content's
    `consent.body`, with the program's name and hours), then they carry on where they were."""
    async with BotHarness.running(program_settings) as harness:
        user, patient_id = await _agreed_to_the_old_version(harness, language, VERSION_2)
        text = harness.runtime.text
        update = text("consent.update", language, body=_body(harness, language))
        asked = await harness.say(user, "/meds", update.splitlines()[0])
        assert asked.text == update
        await harness.tap(
            user, asked, text("consent.accept_button", language), text("consent.update_accepted", language)
        )
        old, new = await _consents(harness, patient_id)
        assert (old.version, new.version) == (VERSION_2, CONSENT_VERSION) and old.revoked_at is None
        await harness.say(user, "/meds", harness.part("meds.intro", language))
