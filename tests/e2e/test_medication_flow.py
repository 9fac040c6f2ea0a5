"""Medication support and naloxone through real HTTP (issue 22, items 2 and 3): reminders set up by the
patient or their counselor, the daily question at the patient's time in lock-screen-safe words, two missed
days or "Ran out" told to the counselor the same day, and naloxone at home asked, answered, shown in /patient
and replaced after an overdose message."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.models import (
    CareFlag,
    DoseDay,
    DoseStatus,
    MedicationKind,
    MedicationPlan,
    NaloxoneStatus,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from bot.enrollment.onboarding import format_clock
from bot.medcare.callbacks import REPLACE_KIND
from bot.risk import promise
from tests.harness import BotHarness
from tests.records import typed_answer_asked_ago

ZONE = ZoneInfo("America/New_York")  # the zone `enroll` chooses


async def _plan(harness: BotHarness, patient_id: int) -> MedicationPlan:
    async with harness.runtime.sessions() as session:
        plan = await session.scalar(select(MedicationPlan).where(MedicationPlan.patient_id == patient_id))
    assert plan is not None
    return plan


async def _due_now(harness: BotHarness, patient_id: int, *, missed_yesterday: bool) -> str:
    """Move the dose time to a minute ago (the patient's zone) and restart with a fast tick; with
    `missed_yesterday`, yesterday's question was answered "Missed". Returns the dose time as shown."""
    await harness.stop()
    clock = (datetime.now(UTC).astimezone(ZONE) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(MedicationPlan)
            .where(MedicationPlan.patient_id == patient_id)
            .values(dose_time=clock.time())
        )
        if missed_yesterday:
            yesterday = clock - timedelta(days=1)
            session.add(
                DoseDay(
                    patient_id=patient_id,
                    local_day=yesterday.date(),
                    status=DoseStatus.MISSED,
                    asked_at=yesterday,
                    answered_at=yesterday,
                    closes_at=yesterday + timedelta(hours=12),
                )
            )
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.start()
    return format_clock(clock.time())


async def test_the_patient_sets_up_reminders_and_two_missed_days_tell_the_counselor(
    harness: BotHarness,
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)

    intro = await harness.say(user, "/meds", harness.part("meds.intro"))
    time_question = await harness.tap(
        user, intro, harness.text("meds.kind_buttons.buprenorphine"), harness.part("meds.ask_time")
    )
    show = await harness.tap(
        user,
        time_question,
        "09:00",
        harness.part("meds.ask_show", medicine=harness.text("meds.kinds.buprenorphine")),
    )
    supply = await harness.tap(
        user, show, harness.text("meds.private_button"), harness.part("meds.ask_supply")
    )
    done = await harness.tap(
        user,
        supply,
        harness.text("meds.in_days", days=14),
        harness.part("meds.done", daily=True, time="09:00"),
    )
    assert "09:00" in (done.text or "")
    plan = await _plan(harness, patient_id)
    assert (plan.kind, plan.active, plan.show_name, plan.set_by) == (
        MedicationKind.BUPRENORPHINE,
        True,
        False,
        "patient",
    )
    assert plan.next_supply is not None

    shown = await _due_now(harness, patient_id, missed_yesterday=True)
    # At the patient's time, in words that are safe on a lock screen: the time, never the medicine.
    question = await harness.standin.wait_for(user, harness.part("meds.dose.ask", time=shown, medicine=""))
    assert "buprenorphine" not in (question.text or "").lower() and shown in (question.text or "")
    labels = [label for label, _ in question.buttons()]
    assert labels == [
        harness.text(f"meds.dose.buttons.{a}") for a in ("taken", "not_yet", "missed", "ran_out")
    ]

    # The second "Missed" in a row: the patient is told the team will hear today, and the team hears now.
    reply = await harness.tap(
        user, question, harness.text("meds.dose.buttons.missed"), harness.part("meds.dose.answers.missed")
    )
    assert "second day in a row" in (reply.text or "")
    patient = await harness.patient(user)
    assert patient is not None
    notice = await harness.standin.wait_for(
        counselor_user, harness.text("care.flag.doses_missed", alias=patient.alias)
    )
    assert "buprenorphine" not in (notice.text or "").lower()
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))
        days = list(await session.scalars(select(DoseDay).where(DoseDay.patient_id == patient_id)))
    assert flags == ["doses_missed"]
    assert sorted(d.status for d in days) == [DoseStatus.MISSED, DoseStatus.MISSED]
    # The counselor sees the reminders and the answers in /patient, without the patient's words.
    view = await harness.say(counselor_user, f"/patient {patient.alias}", "Medicine (")
    assert "taken 0, missed 2" in (view.text or "")


async def test_a_counselor_sets_reminders_and_ran_out_is_told_the_same_day(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias="River")

    await harness.say(counselor_user, "/meds", harness.part("meds.counselor_usage", alias="P-1234"))
    await harness.say(
        counselor_user, "/meds River methadone", harness.part("meds.counselor_usage", alias="River")
    )
    await harness.say(
        counselor_user,
        "/meds River methadone 8:30",
        harness.part("meds.counselor_saved", alias="River", view=""),
    )
    # The patient hears that their care team set it up, and how to change or stop it.
    await harness.standin.wait_for(user, harness.part("meds.set_by_counselor", daily=True, time="08:30"))
    plan = await _plan(harness, patient_id)
    assert (plan.kind, plan.set_by, plan.show_name) == (MedicationKind.METHADONE, "counselor", False)

    shown = await _due_now(harness, patient_id, missed_yesterday=False)
    question = await harness.standin.wait_for(user, harness.part("meds.dose.ask", time=shown, medicine=""))
    # In office hours "call today"; after them, when the office opens (and the after-hours number).
    now = utcnow()
    opens = promise.by_the_hour(harness.runtime.settings, now).opens
    when = "" if opens is None else promise.when(harness.runtime, opens, "America/New_York", "en", now)
    reply = await harness.tap(
        user,
        question,
        harness.text("meds.dose.buttons.ran_out"),
        harness.part("meds.dose.answers.ran_out", when=when),
    )
    assert "555-0100" in (reply.text or "")  # the clinic's number
    await harness.standin.wait_for(counselor_user, harness.text("care.flag.medicine_ran_out", alias="River"))

    # Stopping: the patient can, from /meds.
    menu = await harness.say(user, "/meds", harness.part("meds.current", daily=True, time=shown, medicine=""))
    await harness.tap(user, menu, harness.text("meds.stop_button"), harness.part("meds.stopped"))
    assert not (await _plan(harness, patient_id)).active
    # The logs carry ids and event names: not the medicine, not the answer about a dose.
    logged = " ".join(record.getMessage() for record in caplog.records).lower()
    assert "methadone" not in logged and "ran_out" not in logged


async def test_naloxone_at_home_shown_to_the_counselor_and_replaced_after_an_overdose(
    harness: BotHarness,
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias="Lake")
    # Set-up ended with the question; "No" tells where to get it without a prescription.
    asked = next(
        m for m in harness.standin.transcript(user) if harness.part("naloxone.ask") in (m.text or "")
    )
    where = await harness.tap(
        user, asked, harness.text("naloxone.buttons.no"), harness.part("naloxone.where")
    )
    assert "prescription" in (where.text or "")
    # The view's naloxone line (its last): "no", with the day it was answered.
    shown = harness.text(
        "meds.counselor_view", alias="Lake", active=False, naloxone="no", naloxone_when="", replace_when=""
    )
    unanswered = harness.text(
        "meds.counselor_view", alias="Lake", active=False, naloxone="", naloxone_when="", replace_when=""
    )
    naloxone_no = shown.splitlines()[-1].removesuffix(".")
    assert naloxone_no != unanswered.splitlines()[-1].removesuffix(".")
    view = await harness.say(counselor_user, "/patient Lake", naloxone_no)
    answered_on = harness.text(
        "meds.counselor_view", alias="Lake", active=False, naloxone="no", naloxone_when="@", replace_when=""
    )
    assert answered_on.splitlines()[-1].split("@")[0].removeprefix(naloxone_no).strip() in (view.text or "")

    # A crisis message about an overdose: the reply as always, and a reminder to replace naloxone a day later.
    before = utcnow()
    await harness.say(user, "my friend overdosed and wont wake up", harness.text("crisis.overdose_action"))
    async with harness.runtime.sessions() as session:
        [row] = await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == REPLACE_KIND))
        status = await session.scalar(select(NaloxoneStatus).where(NaloxoneStatus.patient_id == patient_id))
    assert row.status is OutboxStatus.PENDING and row.due_at >= before + timedelta(hours=23)
    assert status is not None and status.replace_reminded_at == row.due_at
    # A day later (the row made due now), it reaches the patient.
    async with db.transaction(harness.runtime.sessions) as session:
        now = utcnow()
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id).values(due_at=now, next_attempt_at=now)
        )
    harness.runtime.wake_outbox()
    await harness.standin.wait_for(user, harness.part("naloxone.replace"))


async def test_a_medicine_name_typed_after_its_window_is_read_as_any_message(harness: BotHarness) -> None:
    """ "Another medicine" asks for its name; days later the patient's words are not taken for it (no
    reminders set up), they are answered as any other message."""
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    intro = await harness.say(user, "/meds", harness.part("meds.intro"))
    await harness.tap(user, intro, harness.text("meds.kind_buttons.other"), harness.part("meds.ask_name"))
    await typed_answer_asked_ago(harness.runtime.sessions, patient_id, 3 * 24)
    await harness.say(user, "hello", harness.part("tone.greeting"))
    async with harness.runtime.sessions() as session:
        plan = await session.scalar(select(MedicationPlan).where(MedicationPlan.patient_id == patient_id))
    assert plan is None
