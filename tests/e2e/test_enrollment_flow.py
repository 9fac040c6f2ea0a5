"""Invite -> /start -> consent -> set-up, through real HTTP, the real Application and the real database."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import func, select

from bot.core.models import AuditEvent, CareAssignment, Consent, CounselorRole, InviteKind, PatientStatus
from bot.core.people import counter_value
from tests.harness import BotHarness


async def test_invited_patient_consents_and_completes_setup(harness: BotHarness) -> None:
    user = harness.new_user_id()
    counselor_id = await harness.add_counselor()
    code = await harness.invite(InviteKind.PATIENT, counselor_id, alias="River")

    consent = await harness.say(user, f"/start {code}", harness.part("consent.screen"), language_code="en-US")
    assert harness.part("consent.screen") in (consent.text or "")  # the whole screen: test_consent_v2_flow
    for element in ("42 CFR Part 2", "988", "/revoke"):  # what the law and the crisis path need it to name
        assert element in (consent.text or "")
    pending = await harness.patient(user)
    assert (
        pending is not None and pending.status is PatientStatus.CONSENT_PENDING and pending.alias == "River"
    )

    zone_question = await harness.tap(
        user, consent, harness.text("consent.accept_button"), harness.part("onboarding.ask_timezone")
    )
    assert len(zone_question.buttons()) == 9
    # Typing instead of tapping works too, in any letter case, and a bad name is re-asked.
    await harness.say(user, "Mars/Olympus", harness.part("onboarding.invalid_timezone"))
    await harness.say(user, "america/los angeles", harness.part("onboarding.ask_checkin_time"))
    await harness.say(user, "whenever", harness.part("onboarding.invalid_checkin_time"))
    language_question = await harness.say(user, "8:30 pm", harness.part("onboarding.ask_language"))
    done = await harness.tap(
        user, language_question, harness.text("language_name", "es"), harness.part("onboarding.done", "es")
    )

    assert "America/Los_Angeles" in (done.text or "") and "20:30" in (done.text or "")
    # Then one more question of its own: naloxone at home (issue 22), with its three answers.
    naloxone = await harness.standin.wait_for(user, harness.part("naloxone.ask", "es"))
    assert len(naloxone.buttons()) == 3
    patient = await harness.patient(user)
    assert patient is not None
    assert patient.status is PatientStatus.ACTIVE
    assert (patient.timezone, patient.checkin_time, patient.language) == (
        "America/Los_Angeles",
        time(20, 30),
        "es",
    )
    async with harness.runtime.sessions() as session:
        consents = list(await session.scalars(select(Consent).where(Consent.patient_id == patient.id)))
        team = list(
            await session.scalars(select(CareAssignment).where(CareAssignment.patient_id == patient.id))
        )
        actions = set(await session.scalars(select(AuditEvent.action)))
    assert [c.revoked_at for c in consents] == [None]
    assert [a.counselor_id for a in team] == [counselor_id]
    assert {"invite.created", "patient.enrolled", "consent.accepted", "onboarding.completed"} <= actions
    # The buttons left on the time zone message no longer work (and the patient now reads Spanish).
    mark = harness.standin.mark(user)
    query = await harness.standin.tap_raw(user, zone_question.message_id, "tz:America/Chicago")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("input.button_expired", "es") in answer.get("text", "")
    assert harness.standin.mark(user) == mark


@pytest.mark.parametrize(("language", "typed"), [("en", "chicago"), ("en", "Central"), ("es", "centro")])
async def test_a_time_zone_typed_as_its_city_or_its_button(
    harness: BotHarness, language: str, typed: str
) -> None:
    user = harness.new_user_id()
    code = await harness.invite(InviteKind.PATIENT, await harness.add_counselor(), language=language)
    agree = harness.runtime.text("consent.accept_button", language)
    consent = await harness.say(user, f"/start {code}", agree)
    await harness.tap(user, consent, agree, harness.runtime.text("onboarding.ask_timezone", language)[:20])
    await harness.say(user, typed, harness.runtime.text("onboarding.ask_checkin_time", language)[:20])
    patient = await harness.patient(user)
    assert patient is not None and patient.timezone == "America/Chicago"


async def test_nothing_works_before_consent(harness: BotHarness) -> None:
    user = harness.new_user_id()
    code = await harness.invite(InviteKind.PATIENT, await harness.add_counselor())
    consent = await harness.say(user, f"/start {code}", harness.part("consent.screen"))
    await harness.say(user, "/help", harness.part("help.patient_consent_pending"))
    # A patient's command before consent says what /help says: what to do first.
    first = harness.text("help.patient_consent_pending")
    await harness.say(user, "/checkin", first)
    await harness.say(user, "/history", first)
    again = await harness.say(user, "I want to start", harness.part("consent.screen"))
    declined = await harness.tap(
        user, again, harness.text("consent.decline_button"), harness.part("consent.declined")
    )
    review = await harness.tap(
        user, declined, harness.text("consent.review_button"), harness.part("consent.screen")
    )
    await harness.tap(
        user, review, harness.text("consent.accept_button"), harness.part("onboarding.ask_timezone")
    )
    # The consent message from before is spent: a second "I agree" does nothing new.
    query = await harness.standin.tap_raw(user, consent.message_id, "consent:accept")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("input.button_expired") in answer.get("text", "")
    patient = await harness.patient(user)
    assert patient is not None
    async with harness.runtime.sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Consent).where(Consent.patient_id == patient.id)
            )
            == 1
        )


async def test_uninvited_user_gets_one_polite_line_a_day_and_is_not_stored(harness: BotHarness) -> None:
    stranger = harness.new_user_id()
    line = harness.runtime.text("stranger.not_enrolled", "en").splitlines()[0]
    await harness.say(stranger, "hello?", line)
    mark = harness.standin.mark(stranger)
    await harness.standin.send_text(stranger, "/start")
    await harness.standin.send_text(stranger, "/help")
    # A message that shows risk is answered every time: the line carries the crisis numbers.
    await harness.say(stranger, "I am going to kill myself tonight", line)
    assert len(harness.standin.transcript(stranger)[mark:]) == 1
    assert await harness.patient(stranger) is None
    async with harness.runtime.sessions() as session:
        assert await counter_value(session, "stranger_messages") == 4
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0


async def test_forged_reused_and_expired_codes(harness: BotHarness) -> None:
    counselor_id = await harness.add_counselor()
    first, second, third = (harness.new_user_id() for _ in range(3))
    await harness.say(first, "/start NOT-A-REAL-CODE-0000000", harness.part("start.code_invalid"))
    await harness.say(first, "/start x';DROP TABLE patients;--", harness.part("start.code_invalid"))
    code = await harness.invite(InviteKind.PATIENT, counselor_id)
    await harness.say(first, f"/start {code}", harness.part("consent.screen"))
    await harness.say(second, f"/start {code}", harness.part("start.code_used"))
    expired = await harness.invite(InviteKind.PATIENT, counselor_id, ttl=timedelta(seconds=-1))
    await harness.say(third, f"/start {expired}", harness.part("start.code_expired"))
    assert await harness.patient(second) is None and await harness.patient(third) is None
    # An enrolled patient with someone else's code is told they need none, and the code stays unused.
    spare = await harness.invite(InviteKind.PATIENT, counselor_id)
    await harness.say(
        first, f"/start {spare}", harness.part("consent.screen")
    )  # still pending consent: shown the consent again
    await harness.say(third, f"/start {spare}", harness.part("consent.screen"))


async def test_counselor_links_account_and_gets_counselor_help(harness: BotHarness) -> None:
    user = harness.new_user_id()
    counselor_id = await harness.add_counselor("Sam")
    code = await harness.invite(InviteKind.COUNSELOR, counselor_id)
    await harness.say(user, f"/start {code}", harness.part("counselor.welcome"))
    await harness.say(user, "/help", harness.part("help.counselor"))
    await harness.say(user, "/revoke", harness.part("input.not_for_role"))
    await harness.say(user, "/privacy", harness.part("privacy.not_patient"))
    counselor = await harness.counselor(counselor_id)
    assert counselor.telegram_user_id == user


async def test_a_second_counselor_invite_dies_when_the_first_is_used(harness: BotHarness) -> None:
    """Two invites for Dana ("the first link got lost"): once Dana links with one, the other is spent, and
    whoever holds it is told so instead of taking Dana's account and caseload."""
    counselor_id = await harness.add_counselor("Dana")
    first = await harness.invite(InviteKind.COUNSELOR, counselor_id)
    second = await harness.invite(InviteKind.COUNSELOR, counselor_id)
    dana, stranger = harness.new_user_id(), harness.new_user_id()
    await harness.say(
        dana, f"/start {first}", harness.part("counselor.welcome", name="Dana", role="counselor")
    )
    await harness.enroll(harness.new_user_id(), counselor_id, alias="River")
    await harness.say(stranger, f"/start {second}", harness.part("start.code_used"))
    await harness.say(stranger, "/patient River", harness.part("input.not_for_role"))
    assert not [m for m in harness.standin.transcript(stranger) if "River" in (m.text or "")]
    await harness.say(dana, "/patient River", harness.part("caseload.summary", alias="River", days=14))
    assert (await harness.counselor(counselor_id)).telegram_user_id == dana


async def test_a_supervisor_is_welcomed_as_a_supervisor(harness: BotHarness) -> None:
    user = harness.new_user_id()
    supervisor_id = await harness.add_counselor("Lee", CounselorRole.SUPERVISOR)
    code = await harness.invite(InviteKind.COUNSELOR, supervisor_id)
    counselor_words = harness.runtime.text("counselor.welcome", "en", name="Lee", role="counselor")
    welcome = harness.runtime.text("counselor.welcome", "en", name="Lee", role="supervisor")
    assert welcome.splitlines()[0] != counselor_words.splitlines()[0]
    linked = await harness.say(user, f"/start {code}", welcome.splitlines()[0])
    assert linked.text == welcome
    await harness.say(
        user,
        "/help",
        harness.runtime.text("help.counselor", "en", role="supervisor", admin=False).splitlines()[0],
    )
    await harness.say(
        user, "/start", harness.runtime.text("counselor.welcome_back", "en", name="Lee", role="supervisor")
    )


async def test_help_privacy_and_revoke(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    await harness.say(user, "/help", "/privacy")
    await harness.say(user, "/privacy", harness.part("privacy.restated"))
    prompt = await harness.say(user, "/revoke", harness.part("revoke.confirm_prompt"))
    await harness.tap(user, prompt, harness.text("revoke.cancel_button"), harness.part("revoke.cancelled"))
    prompt = await harness.say(user, "/revoke", harness.part("revoke.confirm_prompt"))
    limited = await harness.tap(
        user, prompt, harness.text("revoke.confirm_button"), harness.part("revoke.limited")
    )
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.CONSENT_REVOKED
    await harness.say(user, "anything", "988")
    await harness.say(user, "/revoke", harness.part("revoke.nothing"))
    # Agreeing again restores the patient without repeating the set-up.
    consent = await harness.tap(
        user, limited, harness.text("consent.review_button"), harness.part("consent.screen")
    )
    await harness.tap(
        user, consent, harness.text("consent.accept_button"), harness.part("consent.accepted_again")
    )
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.ACTIVE
