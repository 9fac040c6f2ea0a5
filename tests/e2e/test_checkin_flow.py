"""The daily check-in through real HTTP, the real Application, scheduler and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import (
    CareFlag,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    InviteKind,
    Patient,
    RiskSignal,
    utcnow,
)
from devtools.simulator import BotMessage
from tests.harness import BotHarness


async def _checkin(harness: BotHarness, patient_id: int) -> CheckIn:
    async with harness.runtime.sessions() as session:
        found = await session.scalar(
            select(CheckIn).where(CheckIn.patient_id == patient_id).order_by(CheckIn.id.desc()).limit(1)
        )
    assert found is not None
    return found


async def _toggle(harness: BotHarness, user: int, message: BotMessage, label: str) -> BotMessage:
    """Tap a trigger; the same message's keyboard is edited to show it ticked."""
    data = next(d for text, d in message.buttons() if text.endswith(label))
    await harness.standin.tap(user, message.message_id, data)

    def ticked(m: BotMessage) -> bool:
        return m.message_id == message.message_id and any(t == f"✓ {label}" for t, _ in m.buttons())

    return await harness.standin.wait_for(user, ticked)


async def test_a_full_check_in_with_buttons_and_typing(harness: BotHarness) -> None:
    user = harness.new_user_id()
    counselor_user = harness.new_user_id()
    counselor_id = await harness.add_counselor("Sam")
    await _link_counselor(harness, counselor_user, counselor_id)
    patient_id = await harness.enroll(user, counselor_id)

    craving = await harness.say(user, "/checkin", "How strong is your craving")
    assert [label for label, _ in craving.buttons()] == [*map(str, range(11)), "Skip"]
    # Typed numbers are read when clear and re-asked gently when not.
    await harness.say(user, "eleven", "outside the scale")
    await harness.say(user, "7 or 8", "one number from 0 to 10")
    triggers = await harness.say(user, "8/10", "make things harder")
    assert (await _checkin(harness, patient_id)).craving == 8  # saved the moment it arrived

    triggers = await _toggle(harness, user, triggers, "Stress")
    triggers = await _toggle(harness, user, triggers, "Something else")
    assert (await _checkin(harness, patient_id)).triggers == ["stress", "other"]
    await harness.tap(user, triggers, "Done", "What else made things harder")
    mood = await harness.say(user, "my ex called me", "mood")
    sleep = await harness.tap(user, mood, "2", "sleep")
    use = await harness.tap(user, sleep, "Poorly", "alcohol or drugs")
    await harness.say(user, "yes", "What did you use")
    # The care team hears about the use at once: by alias, without the details.
    alert = await harness.standin.wait_for(counselor_user, "use or relapse reported")
    assert "beer" not in (alert.text or "") and "Please reach out and acknowledge" in (alert.text or "")
    note = await harness.say(user, "two beers", "anything else")
    # "Show details" gives what they typed about it (not "no message text").
    details_data = next(
        d for label, d in alert.buttons() if label == harness.runtime.text("escalation.details_button", "en")
    )
    mark = harness.standin.mark(counselor_user)
    await harness.standin.tap(counselor_user, alert.message_id, details_data)
    details = await harness.standin.wait_for(counselor_user, "two beers", after=mark)
    assert harness.runtime.text("escalation.no_details", "en") not in (details.text or "")
    mark = harness.standin.mark(user)
    await harness.tap(user, note, "Skip", "Thank you for checking in")
    await harness.standin.wait_for(user, "not the end of your recovery", after=mark)
    offer = await harness.standin.wait_for(user, "craving is strong", after=mark)
    assert [label for label, _ in offer.buttons()] == ["Start Urge surfing", "Other exercises"]

    saved = await _checkin(harness, patient_id)
    assert saved.status is CheckInStatus.COMPLETE
    assert (saved.craving, saved.triggers, saved.trigger_other, saved.mood, saved.sleep) == (
        8,
        ["stress", "other"],
        "my ex called me",
        2,
        "poor",
    )
    assert (saved.used, saved.use_what, saved.note, saved.skipped) == (True, "two beers", None, ["note"])
    # Buttons of answered questions are gone; an old one tapped anyway says the check-in has closed.
    now_sleep = next(m for m in harness.standin.transcript(user) if m.message_id == sleep.message_id)
    assert sleep.buttons() and not now_sleep.buttons()
    query = await harness.standin.tap_raw(user, use.message_id, f"ci:{saved.id}:use:no")
    answer = await harness.standin.wait_for_callback_answer(query)
    assert "check-in has closed" in answer.get("text", "")


async def test_check_in_resumes_after_a_restart(harness: BotHarness) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user)
    craving = await harness.say(user, "/checkin", "How strong is your craving")
    triggers = await harness.tap(user, craving, "3", "make things harder")
    await harness.tap(user, triggers, "Skip", "mood")

    await harness.restart()

    # Typing the answer to the question asked before the restart just works...
    await harness.say(user, "4", "How did you sleep")
    # ...and /checkin carries on at the next unanswered question instead of starting again.
    resumed = await harness.say(user, "/checkin", "pick up your check-in")
    assert "How did you sleep" in (resumed.text or "")
    saved = await _checkin(harness, patient_id)
    assert (saved.craving, saved.triggers, saved.mood, saved.skipped, saved.step) == (
        3,
        None,
        4,
        ["triggers"],
        "sleep",
    )


async def test_forged_and_foreign_buttons_do_nothing(harness: BotHarness) -> None:
    user, other = harness.new_user_id(), harness.new_user_id()
    await harness.enroll(user)
    other_id = await harness.enroll(other)
    theirs = await harness.say(other, "/checkin", "How strong is your craving")
    mine = await harness.say(user, "/checkin", "How strong is your craving")
    foreign = (await _checkin(harness, other_id)).id
    for data in (f"ci:{foreign}:craving:5", f"ci:{foreign + 1000}:craving:5", "ci:1:craving:99", "ci:x:y:z"):
        query = await harness.standin.tap_raw(user, mine.message_id, data)
        answer = await harness.standin.wait_for_callback_answer(query)
        assert "no longer active" in answer.get("text", "")
    assert (await _checkin(harness, other_id)).craving is None
    assert theirs.buttons()


async def test_scheduled_prompt_nudge_and_missed_days_flagged(harness: BotHarness) -> None:
    """The real scheduler: a prompt at the local check-in time, one nudge, the third missed day flagged."""
    user = harness.new_user_id()
    counselor_user = harness.new_user_id()
    counselor_id = await harness.add_counselor("Lee")
    await _link_counselor(harness, counselor_user, counselor_id)
    patient_id = await harness.enroll(user, counselor_id)
    await harness.stop()
    # Two scheduled days already missed; today's check-in time passed three hours ago, in the patient's zone.
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo("America/New_York"))
    due_since = local - timedelta(hours=3)
    async with harness.runtime.sessions.begin() as session:
        for days_ago in (2, 1):
            day = due_since.date() - timedelta(days=days_ago)
            session.add(
                CheckIn(
                    patient_id=patient_id,
                    source=CheckInSource.SCHEDULED,
                    status=CheckInStatus.MISSED,
                    local_day=day,
                    scheduled_for=day,
                    started_at=now - timedelta(days=days_ago),
                    expires_at=now - timedelta(days=days_ago),
                )
            )
        await session.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(
                checkin_time=due_since.time(),
                # Quiet hours away from now, so the nudge is allowed whenever the test runs.
                quiet_start=(local + timedelta(hours=2)).time(),
                quiet_end=(local + timedelta(hours=3)).time(),
            )
        )
    harness.settings = harness.settings.model_copy(
        update={"scheduler_tick_seconds": 0.5, "checkin_nudge_minutes": 0.02, "checkin_expiry_hours": 4}
    )
    await harness.start()

    prompt = await harness.standin.wait_for(user, "time for your daily check-in")
    assert "How strong is your craving" in (prompt.text or "") and prompt.buttons()
    # One nudge when the prompt is left unanswered (here after about a second), and only one.
    nudge = await harness.standin.wait_for(user, "gentle reminder")
    assert nudge.buttons()
    # Nothing answered: when the check-in expires the third missed day in a row is flagged to the team.
    async with harness.runtime.sessions.begin() as session:
        await session.execute(
            update(CheckIn).where(CheckIn.status == CheckInStatus.OPEN).values(expires_at=now)
        )
    alert = await harness.standin.wait_for(counselor_user, "missed 3 daily check-ins")
    patient = await harness.patient(user)
    assert patient is not None and (alert.text or "").startswith(patient.alias)
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))
        statuses = list(await session.scalars(select(CheckIn.status).where(CheckIn.patient_id == patient_id)))
    assert flags == ["missed_checkins"]
    assert statuses.count(CheckInStatus.MISSED) == 3
    reminders = [m for m in harness.standin.transcript(user) if "gentle reminder" in (m.text or "")]
    assert len(reminders) == 1
    # An answer to the closed check-in is refused kindly.
    query = await harness.standin.tap_raw(user, prompt.message_id, prompt.buttons()[5][1])
    answer = await harness.standin.wait_for_callback_answer(query)
    assert "check-in has closed" in answer.get("text", "")


async def _link_counselor(harness: BotHarness, user: int, counselor_id: int) -> None:
    code = await harness.invite(InviteKind.COUNSELOR, counselor_id)
    await harness.say(user, f"/start {code}", "linked as a counselor")


async def test_a_third_strong_craving_in_two_days_tells_the_patient_the_team_knows(
    harness: BotHarness,
) -> None:
    user = harness.new_user_id()
    counselor_user = harness.new_user_id()
    counselor_id = await harness.add_counselor("Sam")
    await _link_counselor(harness, counselor_user, counselor_id)
    patient_id = await harness.enroll(user, counselor_id)
    async with db.transaction(harness.runtime.sessions) as session:  # two strong cravings yesterday
        for hours in (30, 20):
            session.add(
                RiskSignal(
                    patient_id=patient_id,
                    at=utcnow() - timedelta(hours=hours),
                    level="moderate",
                    categories=["craving"],
                    source="checkin",
                )
            )
    craving = await harness.say(user, "/checkin", "How strong is your craving")
    mark = harness.standin.mark(user)
    await harness.tap(user, craving, "8", "make things harder")
    await harness.standin.wait_for(user, "I've let your care team know", after=mark)
    await harness.standin.wait_for(counselor_user, "High alert")
