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
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    patient_id = await harness.enroll(user, counselor_id)

    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    assert [label for label, _ in craving.buttons()] == [
        *map(str, range(11)),
        harness.text("checkin.buttons.skip"),
    ]
    # Typed numbers are read when clear and re-asked gently when not.
    await harness.say(user, "eleven", harness.part("checkin.retry.craving_range"))
    await harness.say(user, "7 or 8", harness.part("checkin.retry.craving"))
    mark = harness.standin.mark(user)
    triggers = await harness.say(user, "8/10", harness.part("checkin.ask.triggers"))
    assert (await _checkin(harness, patient_id)).craving == 8  # saved the moment it arrived
    # 8 or more: help is offered at once (a support person, a wait with a check-back, an exercise).
    strong = harness.runtime.text("coping.strong.offer", "en")
    offer = await harness.standin.wait_for(user, strong.splitlines()[0], after=mark)
    assert [label for label, _ in offer.buttons()] == [
        harness.runtime.text("coping.strong.support_button", "en"),
        harness.runtime.text("coping.strong.delay_button", "en"),
        harness.text("checkin.start_button", title=harness.module_title("urge_surfing")),
        harness.text("checkin.other_exercises_button"),
    ]

    triggers = await _toggle(harness, user, triggers, harness.text("checkin.buttons.triggers.stress"))
    triggers = await _toggle(harness, user, triggers, harness.text("checkin.buttons.triggers.other"))
    assert (await _checkin(harness, patient_id)).triggers == ["stress", "other"]
    await harness.tap(
        user, triggers, harness.text("checkin.buttons.done"), harness.part("checkin.ask.trigger_other")
    )
    mood = await harness.say(user, "my ex called me", harness.part("checkin.ask.mood"))
    sleep = await harness.tap(user, mood, "2", harness.part("checkin.ask.sleep"))
    use = await harness.tap(
        user, sleep, harness.text("checkin.buttons.sleep.poor"), harness.part("checkin.ask.use")
    )
    await harness.say(user, "yes", harness.part("checkin.ask.use_what"))
    # Two beers: no page yet (it could still be alone or mixed), so "alone, or inject?" comes next.
    how = await harness.say(user, "two beers", harness.runtime.text("checkin.ask.use_how", "en"))
    mark = harness.standin.mark(user)
    told = harness.runtime.text("use.told_flag", "en").splitlines()[-1]
    await harness.tap(user, how, harness.runtime.text("checkin.buttons.use_how.neither", "en"), told)
    note = await harness.standin.wait_for(user, harness.part("checkin.ask.note"), after=mark)
    # The care team gets a flag for the next business day: by alias, without the details, and no page.
    patient = await harness.patient(user)
    assert patient is not None
    flag = harness.runtime.text("care.flag.use_reported", "en", alias=patient.alias)
    notice = await harness.standin.wait_for(counselor_user, flag)
    assert "beer" not in (notice.text or "")
    assert not [m for m in harness.standin.transcript(counselor_user) if "alert" in (m.text or "")]
    mark = harness.standin.mark(user)
    await harness.tap(user, note, harness.text("checkin.buttons.skip"), harness.part("checkin.thanks"))
    await harness.standin.wait_for(user, harness.part("checkin.after_use"), after=mark)

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
    assert harness.part("checkin.closed") in answer.get("text", "")


async def test_check_in_resumes_after_a_restart(harness: BotHarness) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user)
    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(user, craving, "3", harness.part("checkin.ask.triggers"))
    await harness.tap(user, triggers, harness.text("checkin.buttons.skip"), harness.part("checkin.ask.mood"))

    await harness.restart()

    # Typing the answer to the question asked before the restart just works...
    await harness.say(user, "4", harness.part("checkin.ask.sleep"))
    # ...and /checkin carries on at the next unanswered question instead of starting again.
    resumed = await harness.say(user, "/checkin", harness.part("checkin.resumed"))
    assert harness.part("checkin.ask.sleep") in (resumed.text or "")
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
    theirs = await harness.say(other, "/checkin", harness.part("checkin.ask.craving"))
    mine = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    foreign = (await _checkin(harness, other_id)).id
    for data in (f"ci:{foreign}:craving:5", f"ci:{foreign + 1000}:craving:5", "ci:1:craving:99", "ci:x:y:z"):
        query = await harness.standin.tap_raw(user, mine.message_id, data)
        answer = await harness.standin.wait_for_callback_answer(query)
        assert harness.part("input.button_expired") in answer.get("text", "")
    assert (await _checkin(harness, other_id)).craving is None
    assert theirs.buttons()


async def test_scheduled_prompt_nudge_and_missed_days_flagged(harness: BotHarness) -> None:
    """The real scheduler: a prompt at the local check-in time, one nudge, the third missed day flagged."""
    user = harness.new_user_id()
    counselor_user, counselor_id = await harness.link_counselor("Lee")
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

    prompt = await harness.standin.wait_for(user, harness.part("checkin.intro_scheduled"))
    assert harness.part("checkin.ask.craving") in (prompt.text or "") and prompt.buttons()
    # One nudge when the prompt is left unanswered (here after about a second), and only one.
    nudge = await harness.standin.wait_for(user, harness.part("checkin.nudge"))
    assert nudge.buttons()
    # Nothing answered: when the check-in expires the third missed day in a row is flagged to the team.
    async with harness.runtime.sessions.begin() as session:
        await session.execute(
            update(CheckIn).where(CheckIn.status == CheckInStatus.OPEN).values(expires_at=now)
        )
    alert = await harness.standin.wait_for(counselor_user, harness.part("care.flag.missed_checkins", count=3))
    patient = await harness.patient(user)
    assert patient is not None and (alert.text or "").startswith(patient.alias)
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))
        statuses = list(await session.scalars(select(CheckIn.status).where(CheckIn.patient_id == patient_id)))
    assert flags == ["missed_checkins"]
    assert statuses.count(CheckInStatus.MISSED) == 3
    reminders = [
        m for m in harness.standin.transcript(user) if harness.part("checkin.nudge") in (m.text or "")
    ]
    assert len(reminders) == 1
    # An answer to the closed check-in is refused kindly.
    query = await harness.standin.tap_raw(user, prompt.message_id, prompt.buttons()[5][1])
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("checkin.closed") in answer.get("text", "")


async def test_a_third_strong_craving_in_two_days_tells_the_patient_the_team_knows(
    harness: BotHarness,
) -> None:
    user = harness.new_user_id()
    counselor_user, counselor_id = await harness.link_counselor("Sam")
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
    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    mark = harness.standin.mark(user)
    await harness.tap(user, craving, "8", harness.part("checkin.ask.triggers"))
    await harness.standin.wait_for(user, harness.part("crisis.pattern_told"), after=mark)
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
