"""Risk in what a patient writes: the crisis reply, the care team's alert, re-paging, acknowledgement.

Real HTTP, the real Application and database. Re-pages run the scheduler's own job function with the
escalation's due time moved into the past (a controlled clock), instead of waiting minutes.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.models import (
    AssignmentRole,
    AuditEvent,
    CareAssignment,
    CheckIn,
    CounselorRole,
    Escalation,
    EscalationStatus,
    InviteKind,
    RiskSignal,
    utcnow,
)
from bot.risk import paging
from devtools.simulator import BotMessage
from tests.e2e.test_checkin_flow import _toggle
from tests.harness import BotHarness, alert_button


async def _escalations(harness: BotHarness, patient_id: int) -> list[Escalation]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id)
        )
        return list(rows)


async def _time_passes(harness: BotHarness, escalation_id: int) -> None:
    """The next page falls due, and the scheduler's job runs."""
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id)
            .values(next_page_at=utcnow() - timedelta(seconds=1))
        )
    await paging.page_due(harness.runtime)


def _alerts(harness: BotHarness, user: int) -> list[BotMessage]:
    return [m for m in harness.standin.transcript(user) if "alert:" in (m.text or "")]


async def test_imminent_message_crisis_reply_alert_repage_widen_and_acknowledge(harness: BotHarness) -> None:
    primary_user, primary_id = await harness.link_counselor("Sam")
    backup_user, backup_id = await harness.link_counselor("Bo")
    supervisor_user, _ = await harness.link_counselor("Ada", CounselorRole.SUPERVISOR)
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)
    async with db.transaction(harness.runtime.sessions) as session:
        session.add(CareAssignment(patient_id=patient_id, counselor_id=backup_id, role=AssignmentRole.BACKUP))
    patient = await harness.patient(patient_user)
    assert patient is not None

    # One round trip: the crisis message comes straight back, with the lines to call and text.
    reply = await harness.say(patient_user, "im going to k1ll myself tonight", "988")
    assert "741741" in (reply.text or "") and "838255" in (reply.text or "")
    assert "1-800-662-4357" not in (reply.text or "")  # SAMHSA's helpline: treatment, not crisis
    assert harness.part("crisis.imminent") in (reply.text or "")

    # The primary counselor is alerted with the least data: alias, level, category, time; not the words.
    alert = await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert patient.alias in (alert.text or "") and harness.text("escalation.categories.suicide") in (
        alert.text or ""
    )
    assert "myself" not in (alert.text or "")
    assert [label for label, _ in alert.buttons()] == [
        harness.text("escalation.acknowledge_button"),
        harness.text("escalation.acknowledge_quietly_button"),
        harness.text("escalation.resolve_button"),
        harness.text("escalation.details_button"),
        harness.text("escalation.plan_button"),
    ]
    assert _alerts(harness, backup_user) == [] and _alerts(harness, supervisor_user) == []
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent" and escalation.status is EscalationStatus.OPEN
    async with harness.runtime.sessions() as session:
        signal = await session.scalar(select(RiskSignal).where(RiskSignal.patient_id == patient_id))
    assert signal is not None and signal.categories == ["suicide"]

    # Nobody answers: 5 minutes on, the backups are paged too; 10 minutes on, the supervisors.
    await _time_passes(harness, escalation.id)
    mark = harness.standin.mark(primary_user)
    await harness.standin.wait_for(backup_user, harness.part("escalation.repage"))
    await harness.standin.wait_for(primary_user, harness.part("escalation.repage"), after=mark)
    assert _alerts(harness, supervisor_user) == []
    await _time_passes(harness, escalation.id)
    mark = harness.standin.mark(primary_user)
    supervisor_alert = await harness.standin.wait_for(supervisor_user, harness.part("escalation.repage"))
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.repage"), after=mark
    )  # one a second per chat
    assert len(_alerts(harness, primary_user)) == 3

    # The supervisor acknowledges; every copy of the alert says so, and the paging stops.
    await harness.standin.tap(
        supervisor_user, supervisor_alert.message_id, alert_button(supervisor_alert, "ack")
    )
    await harness.standin.wait_for(primary_user, harness.part("escalation.acknowledged", counselor="Ada"))
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.ACKNOWLEDGED and escalation.next_page_at is None
    await _time_passes(harness, escalation.id)
    assert len(_alerts(harness, primary_user)) == 3

    # Details on request, audited; then resolved with an outcome.
    details = await harness.tap(
        primary_user,
        alert,
        harness.text("escalation.details_button"),
        harness.part("escalation.details", alias=patient.alias),
    )
    assert "k1ll myself tonight" in (details.text or "")
    await harness.resolve_alert(primary_user, alert, "Sam")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.RESOLVED and escalation.outcome == "safe"
    async with harness.runtime.sessions() as session:
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert "escalation.details_viewed" in actions and "escalation.resolved" in actions


async def test_a_counselor_off_the_care_team_is_refused(harness: BotHarness) -> None:
    _, primary_id = await harness.link_counselor("Sam")
    stranger_user, _ = await harness.link_counselor("Eve")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)
    await harness.say(patient_user, "took 30 xanax", "911")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.category == "overdose"

    query = await harness.standin.tap_raw(stranger_user, 1, f"esc:{escalation.id}:det")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("escalation.refused") in str(answer.get("text"))
    query = await harness.standin.tap_raw(stranger_user, 1, f"esc:{escalation.id}:ack")
    await harness.standin.wait_for_callback_answer(query)
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN
    async with harness.runtime.sessions() as session:
        refused = await session.scalar(select(AuditEvent).where(AuditEvent.action == "escalation.refused"))
    assert refused is not None


async def test_high_signal_tells_the_patient_the_team_knows_and_groups(harness: BotHarness) -> None:
    primary_user, primary_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)

    permission = harness.text("cssrs.intro_alerted")
    mark = harness.standin.mark(patient_user)
    await harness.say(patient_user, "i wish i could go to sleep and not wake up", permission)
    replies = [m.text or "" for m in harness.standin.transcript(patient_user)[mark:]]
    assert any(harness.part("crisis.high") in text for text in replies)
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    # The same category again within the window joins the open escalation: no second alert; the screener
    # question under way (its permission) is asked again.
    await harness.say(patient_user, "everyone would be better off without me", permission)
    assert len(await _escalations(harness, patient_id)) == 1
    assert len(_alerts(harness, primary_user)) == 1


async def test_a_softened_overdose_signal_asks_if_the_patient_is_safe(harness: BotHarness) -> None:
    primary_user, primary_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)

    # A denial is not silence: it is asked about, not dropped and not paged.
    question = await harness.say(
        patient_user, "i'm not going to overdose", harness.part("crisis.safety_check")
    )
    await harness.tap(
        patient_user, question, harness.text("crisis.safe_button"), harness.part("crisis.safe_reply")
    )
    assert await _escalations(harness, patient_id) == []
    # ...and "I need help now" on that question pages at once, as imminent.
    question = await harness.say(
        patient_user, "i'm not going to overdose", harness.part("crisis.safety_check")
    )
    await harness.tap(patient_user, question, harness.text("crisis.not_safe_button"), "988")
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert [e.level for e in await _escalations(harness, patient_id)] == ["imminent"]


# The rules have no phrase for this; the semantic layer thinks it may be high or imminent.
UNLISTED = "i keep thinking everyone would move on fine if i just vanished"


async def test_what_only_the_semantic_layer_worries_about_is_asked_about_not_paged(
    harness: BotHarness,
) -> None:
    primary_user, primary_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)

    mark = harness.standin.mark(patient_user)
    question = await harness.say(patient_user, UNLISTED, harness.part("crisis.safety_check"))
    replies = [m.text or "" for m in harness.standin.transcript(patient_user)[mark:]]
    assert not any(harness.part("input.not_understood") in text for text in replies)
    await harness.tap(
        patient_user, question, harness.text("crisis.safe_button"), harness.part("crisis.safe_reply")
    )
    assert await _escalations(harness, patient_id) == []
    async with harness.runtime.sessions() as session:  # a guess is not a signal: it never adds up to an alert
        assert (
            list(await session.scalars(select(RiskSignal).where(RiskSignal.patient_id == patient_id))) == []
        )

    # In a check-in, the answer is kept and the question comes after it (for another patient: this one said
    # "I'm safe" just now, and the layer's questions wait a while after that: test_semantic_cooldown_flow).
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)
    craving = await harness.say(patient_user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(patient_user, craving, "3", harness.part("checkin.ask.triggers"))
    triggers = await _toggle(harness, patient_user, triggers, harness.text("checkin.buttons.triggers.other"))
    await harness.tap(
        patient_user,
        triggers,
        harness.text("checkin.buttons.done"),
        harness.part("checkin.ask.trigger_other"),
    )
    mark = harness.standin.mark(patient_user)
    question = await harness.say(patient_user, UNLISTED, harness.part("crisis.safety_check"))
    await harness.standin.wait_for(patient_user, harness.part("checkin.ask.mood"), after=mark)
    async with harness.runtime.sessions() as session:
        saved = await session.scalar(select(CheckIn).where(CheckIn.patient_id == patient_id))
        assert saved is not None and saved.trigger_other == UNLISTED
    await harness.tap(patient_user, question, harness.text("crisis.not_safe_button"), "988")
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert [e.level for e in await _escalations(harness, patient_id)] == ["imminent"]


async def test_an_open_escalation_survives_a_restart_and_is_still_paged(harness: BotHarness) -> None:
    primary_user, primary_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)
    await harness.say(patient_user, "this is goodbye. thank you for everything", "988")
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )

    await harness.restart()
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN
    await _time_passes(harness, escalation.id)
    await harness.standin.wait_for(primary_user, harness.part("escalation.repage"))


async def test_an_alert_that_reached_nobody_goes_to_the_counselor_who_links_next(harness: BotHarness) -> None:
    # The clinic set up Sam and the patient; Sam has not opened the bot yet, and nobody else can be paged.
    sam_id = await harness.add_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, sam_id)
    await harness.say(patient_user, "this is goodbye. thank you for everything", "988")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.alerted_at is not None  # paged nobody: nobody had linked a chat

    # Sam links their Telegram: the open alert comes at once, not at the next stage's page.
    sam_user = harness.new_user_id()
    code = await harness.invite(InviteKind.COUNSELOR, sam_id)
    await harness.say(
        sam_user, f"/start {code}", harness.part("counselor.welcome", name="Sam", role="counselor")
    )
    alert = await harness.standin.wait_for(
        sam_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert harness.text("escalation.acknowledge_button") in [label for label, _ in alert.buttons()]

    # Bo, linking later onto the same care team, is not sent what Sam already has (Bo gets the re-pages).
    bo_id = await harness.add_counselor("Bo")
    async with db.transaction(harness.runtime.sessions) as session:
        session.add(CareAssignment(patient_id=patient_id, counselor_id=bo_id, role=AssignmentRole.BACKUP))
    bo_user = harness.new_user_id()
    code = await harness.invite(InviteKind.COUNSELOR, bo_id)
    await harness.say(
        bo_user, f"/start {code}", harness.part("counselor.welcome", name="Bo", role="counselor")
    )
    await _time_passes(harness, escalation.id)
    await harness.standin.wait_for(bo_user, harness.part("escalation.repage"))
    await harness.standin.wait_for(sam_user, harness.part("escalation.repage"))
    assert len(_alerts(harness, bo_user)) == 1 and len(_alerts(harness, sam_user)) == 2


# What a log line about a patient or an alert may not say: what the bot found (42 CFR Part 2). The database
# keeps it, encrypted; logs go to places less protected.
FOUND = re.compile(r"\b(level|category|result|tier|verdict|tone|ok|reason)=")


async def test_logs_about_a_crisis_name_events_and_ids_not_what_was_found(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)
    await harness.say(user, "i relapsed last night, used fentanyl alone", harness.part("use.told_high"))
    await harness.say(user, "im going to kill myself tonight", harness.text("cssrs.intro_alerted"))
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    about_someone = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("bot")
        and ("patient_id=" in record.getMessage() or "escalation_id=" in record.getMessage())
    ]
    assert any("event=risk.escalated" in line for line in about_someone)
    assert [line for line in about_someone if FOUND.search(line)] == []
