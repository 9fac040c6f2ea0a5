"""Session reminders through the outbox: RSVP buttons, /schedule, Telegram's refusals, and downtime.

Real HTTP, the real Application, database and dispatcher. Planning runs the scheduler's own job function
(`plan`) with sessions placed so their reminders are due now, instead of waiting for the clock.
"""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.config import Settings
from bot.core.models import (
    Attendance,
    CareFlag,
    OutboxMessage,
    OutboxStatus,
    Patient,
    Rsvp,
    SessionKind,
    utcnow,
)
from bot.outbox import store as outbox
from bot.schedule import jobs as schedule_jobs
from bot.schedule import rules
from devtools.simulator import Fault
from tests.e2e.test_crisis_flow import _link
from tests.harness import BotHarness

NEW_YORK = ZoneInfo("America/New_York")


async def _patient_in_group(
    harness: BotHarness, counselor_id: int, group: str = "Evening IOP"
) -> tuple[int, int]:
    """An enrolled patient (Eastern time) without quiet hours, so the test does not depend on the hour."""
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    async with db.transaction(harness.runtime.sessions) as session:
        patient = await session.get_one(Patient, patient_id)
        patient.quiet_start = patient.quiet_end = time(0, 0)
        await rules.join_group(session, await rules.group_named(session, group, create=True), patient)
    return user, patient_id


async def _session_starting_in(
    harness: BotHarness, delay: timedelta, *, group: str = "Evening IOP", title: str = "Evening IOP group"
) -> int:
    """A one-off group session starting `delay` from now (clinic time)."""
    starts = (utcnow() + delay).astimezone(NEW_YORK).replace(tzinfo=None, second=0, microsecond=0)
    async with db.transaction(harness.runtime.sessions) as session:
        added = await rules.add_session(
            session,
            title=title,
            kind=SessionKind.GROUP,
            starts_local=starts + timedelta(minutes=1),
            timezone="America/New_York",
            duration=timedelta(minutes=180),
            group=await rules.group_named(session, group, create=True),
            location="Riverside Clinic, Room B",
        )
        return added.id


async def _rows(harness: BotHarness, kind: str = "reminder") -> list[OutboxMessage]:
    async with harness.runtime.sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )


async def test_reminder_buttons_schedule_and_cant_make_it_with_a_reason(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Dana")
    user, patient_id = await _patient_in_group(harness, counselor_id)
    # The 1-hour reminder fell due a minute ago (the 24-hour one long before): the latest one goes, once.
    session_id = await _session_starting_in(harness, timedelta(minutes=59))
    assert await schedule_jobs.plan(harness.runtime) == 1
    reminder = await harness.standin.wait_for(user, "Reminder: Evening IOP group")
    assert "Riverside Clinic" in (reminder.text or "")
    assert [label for label, _ in reminder.buttons()] == ["I'll be there", "Running late", "Can't make it"]
    assert await schedule_jobs.plan(harness.runtime) == 0  # planning again adds nothing

    listing = await harness.say(user, "/schedule", "next 7 days")
    assert "Evening IOP group" in (listing.text or "") and "Riverside Clinic" in (listing.text or "")

    await harness.tap(user, reminder, "I'll be there", "see you there")
    # Changing the answer from a fresh tap is fine; "Can't make it" asks why, and the care team hears of it
    # once: the notice waits a little for the reason, and carries it.
    mark = harness.standin.mark(counselor_user)
    query = await harness.standin.tap_raw(user, reminder.message_id, reminder.buttons()[2][1])
    await harness.standin.wait_for_callback_answer(query)
    await harness.standin.wait_for(user, "tell me why")
    [held] = await _rows(harness, "notice")
    assert held.status is OutboxStatus.PENDING and held.due_at > utcnow() + timedelta(minutes=5)
    await harness.say(user, "my car broke down", "passed that on")
    reason = await harness.standin.wait_for(counselor_user, "my car broke down", after=mark)
    patient = await harness.patient(user)
    assert patient is not None
    async with harness.runtime.sessions() as session:
        [row] = await session.scalars(select(Attendance).where(Attendance.patient_id == patient_id))
    assert row.session_id == session_id and row.response is Rsvp.CANNOT and not row.awaiting_reason
    assert row.reason == "my car broke down"
    # In the counselor's time zone, which the notice names.
    counselor_zone = (await harness.counselor(counselor_id)).timezone
    assert reason.text == harness.runtime.text(
        "schedule.care_reason",
        "en",
        alias=patient.alias,
        title="Evening IOP group",
        when=schedule_jobs.when(harness.runtime, row.occurrence, counselor_zone, "en"),
        zone=schedule_jobs.zone_name(harness.runtime, row.occurrence, counselor_zone),
        reason="my car broke down",
    )
    assert [m.text for m in harness.standin.transcript(counselor_user)[mark:]] == [reason.text]
    assert (await _rows(harness, "notice"))[0].status is OutboxStatus.CANCELLED


async def test_cant_make_it_without_a_reason_is_told_at_once_on_skip(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Dana")
    user, _ = await _patient_in_group(harness, counselor_id)
    await _session_starting_in(harness, timedelta(minutes=59))
    assert await schedule_jobs.plan(harness.runtime) == 1
    reminder = await harness.standin.wait_for(user, "Reminder: Evening IOP group")
    question = await harness.tap(user, reminder, "Can't make it", "tell me why")
    skipped = harness.runtime.text("schedule.reason_skipped", "en")
    await harness.tap(user, question, harness.runtime.text("schedule.skip_button", "en"), skipped)
    patient = await harness.patient(user)
    assert patient is not None
    notice = await harness.standin.wait_for(counselor_user, patient.alias)
    assert [m.text for m in harness.standin.transcript(counselor_user)[1:]] == [notice.text]
    assert len(await _rows(harness, "notice")) == 1


async def test_two_sessions_in_a_row_declined_is_a_flag_for_the_care_team(harness: BotHarness) -> None:
    counselor_user, counselor_id = await _link(harness, "Dana")
    user, patient_id = await _patient_in_group(harness, counselor_id)
    await _session_starting_in(harness, timedelta(minutes=58), title="Family session")
    await _session_starting_in(harness, timedelta(minutes=59))
    assert await schedule_jobs.plan(harness.runtime) == 2
    family = await harness.standin.wait_for(user, "Reminder: Family session")
    group = await harness.standin.wait_for(user, "Reminder: Evening IOP group")
    await harness.tap(user, group, "Can't make it", "tell me why")
    await harness.tap(user, family, "Can't make it", "tell me why")
    flag = await harness.standin.wait_for(counselor_user, "2 sessions in a row")
    patient = await harness.patient(user)
    assert patient is not None and patient.alias in (flag.text or "")
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag).where(CareFlag.patient_id == patient_id)))
    assert [f.kind for f in flags] == ["missed_sessions"]


async def test_forged_rsvp_buttons_are_refused(harness: BotHarness) -> None:
    _, counselor_id = await _link(harness, "Dana")
    user, _ = await _patient_in_group(harness, counselor_id)
    other_group_session = await _session_starting_in(harness, timedelta(hours=3), group="Morning IOP")
    screen = await harness.say(user, "/schedule", "no sessions")
    # A session of another group, and an occurrence that does not exist: refused, nothing recorded.
    for data in (f"rsvp:{other_group_session}:29000000:cannot", "rsvp:999999:29000000:coming"):
        query = await harness.standin.tap_raw(user, screen.message_id, data)
        answer = await harness.standin.wait_for_callback_answer(query)
        assert "no longer on your schedule" in answer.get("text", "")
    async with harness.runtime.sessions() as session:
        assert list(await session.scalars(select(Attendance))) == []


async def test_blocked_bot_marks_the_patient_unreachable_and_tells_the_counselor_once(
    harness: BotHarness,
) -> None:
    counselor_user, counselor_id = await _link(harness, "Dana")
    user, patient_id = await _patient_in_group(harness, counselor_id)
    await _session_starting_in(harness, timedelta(minutes=59))
    await _session_starting_in(harness, timedelta(minutes=58), title="Family session")
    harness.standin.block_bot(user)
    await schedule_jobs.plan(harness.runtime)
    await harness.standin.wait_for(counselor_user, "can no longer be reached")
    await _until_recorded(harness)
    rows = await _rows(harness)
    assert {r.status for r in rows} <= {OutboxStatus.FAILED, OutboxStatus.CANCELLED}
    assert any(r.status is OutboxStatus.FAILED and r.error == "blocked" for r in rows)
    patient = await harness.patient(user)
    assert patient is not None and patient.unreachable_since is not None
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag).where(CareFlag.patient_id == patient_id)))
    assert [f.kind for f in flags] == ["unreachable"]
    notices = [
        m for m in harness.standin.transcript(counselor_user) if "no longer be reached" in (m.text or "")
    ]
    assert len(notices) == 1
    # Nothing more is planned for them until they write again; then they are reachable.
    assert await schedule_jobs.plan(harness.runtime) == 0
    harness.standin.block_bot(user, blocked=False)
    await harness.say(user, "/help", "what I can do")
    patient = await harness.patient(user)
    assert patient is not None and patient.unreachable_since is None


async def test_429_and_5xx_are_retried_and_a_row_out_of_tries_is_failed_not_lost(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "BACKOFF_BASE", timedelta(milliseconds=100))
    _, counselor_id = await _link(harness, "Dana")
    user, _ = await _patient_in_group(harness, counselor_id)
    other, _ = await _patient_in_group(harness, counselor_id)
    third, _ = await _patient_in_group(harness, counselor_id)
    # user: Telegram says "too many requests" 4 times (more than PTB's own 3 retries); other: two 502s;
    # third: a 502 on every try, so its row runs out of tries.
    harness.standin.inject("sendMessage", Fault.too_many_requests(1), times=4, chat_id=user)
    harness.standin.inject("sendMessage", Fault.server_error(502), times=2, chat_id=other)
    harness.standin.inject("sendMessage", Fault.server_error(502), times=100, chat_id=third)
    await _session_starting_in(harness, timedelta(minutes=59))
    await schedule_jobs.plan(harness.runtime)
    for chat in (user, other):
        await harness.standin.wait_for(chat, "Reminder", timeout=20)
    for _ in range(150):  # tries 0.1 s, 0.2 s, 0.4 s ... apart
        rows = {r.chat_id: r for r in await _rows(harness)}
        if rows[third].status is OutboxStatus.FAILED:
            break
        await asyncio.sleep(0.2)
    assert rows[user].status is OutboxStatus.SENT and rows[other].status is OutboxStatus.SENT
    assert rows[other].attempts == 3
    assert rows[third].status is OutboxStatus.FAILED
    assert rows[third].attempts == harness.settings.outbox_max_attempts
    assert len(_reminders(harness, user)) == 1  # once, never twice
    assert _reminders(harness, third) == []


async def _until_recorded(harness: BotHarness) -> None:
    """Results are written in small batches just after the sends: wait until none is in flight."""
    for _ in range(50):
        rows = await _rows(harness)
        if not any(r.status is OutboxStatus.PENDING and r.claimed_by for r in rows):
            return
        await asyncio.sleep(0.1)


def _reminders(harness: BotHarness, chat: int) -> list[str]:
    return [m.text or "" for m in harness.standin.transcript(chat) if "Reminder" in (m.text or "")]


async def test_after_downtime_reminders_still_useful_go_late_and_the_rest_are_dropped(
    harness: BotHarness,
) -> None:
    _, counselor_id = await _link(harness, "Dana")
    user, _ = await _patient_in_group(harness, counselor_id)
    later = await _session_starting_in(harness, timedelta(hours=5))
    earlier = await _session_starting_in(harness, timedelta(hours=3), title="Medication check")
    # Planned while up (due in the future), then the bot is down across the due times.
    async with db.transaction(harness.runtime.sessions) as session:
        due = await rules.due_reminders(session, utcnow(), (timedelta(hours=1),), ahead=timedelta(hours=6))
        assert len(due) == 2
        await outbox.enqueue(session, [schedule_jobs.reminder(harness.runtime, d) for d in due])
    await harness.stop()
    async with db.transaction(harness.runtime.sessions) as session:
        now = utcnow()
        # `later` has not started: its reminder is late but still useful. `earlier` has already started.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like(f"rem:{later}:%"))
            .values(due_at=now - timedelta(hours=2), next_attempt_at=now - timedelta(hours=2))
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like(f"rem:{earlier}:%"))
            .values(next_attempt_at=now - timedelta(hours=4), expires_at=now - timedelta(minutes=10))
        )
    await harness.runtime.engine.dispose()
    await harness.start()
    await harness.standin.wait_for(user, "Reminder: Evening IOP group")
    await _until_recorded(harness)
    rows = {r.key.split(":")[1]: r for r in await _rows(harness)}
    assert rows[str(later)].status is OutboxStatus.SENT
    assert rows[str(earlier)].status is OutboxStatus.DROPPED and rows[str(earlier)].error == "expired"
    assert [m for m in harness.standin.transcript(user) if "Medication check" in (m.text or "")] == []
    async with harness.runtime.sessions() as session:
        assert (await outbox.counts(session)).get("dropped") == 1


async def test_urgent_alerts_overtake_bulk_reminders(settings: Settings) -> None:
    slow = settings.model_copy(update={"send_rate_per_second": 5.0})
    async with BotHarness.running(slow) as harness:
        counselor_user, counselor_id = await _link(harness, "Dana")
        user, _ = await _patient_in_group(harness, counselor_id)
        chats = [harness.new_user_id() for _ in range(40)]
        for chat in chats:
            harness.standin.add_user(chat)
        bulk = [
            outbox.Planned(key=f"bulk:{chat}", kind="reminder", chat_id=chat, text="bulk", due_at=utcnow())
            for chat in chats
        ]
        async with db.transaction(harness.runtime.sessions) as session:
            await outbox.enqueue(session, bulk)
        harness.runtime.wake_outbox()
        await harness.standin.wait_for(chats[0], "bulk")
        # 40 bulk messages at 5 a second take 8 seconds; an alert raised meanwhile does not wait for them:
        # when it has arrived, at least 10 of them (2 seconds' worth) are still to go.
        mark = harness.standin.mark(user)
        await harness.standin.send_text(user, "i want to kill myself")
        await harness.standin.wait_for(user, "988", after=mark, timeout=10)
        await harness.standin.wait_for(counselor_user, "URGENT alert")
        sent = [c for c in chats if any("bulk" in (m.text or "") for m in harness.standin.transcript(c))]
        assert len(sent) <= len(chats) - 10, len(sent)


async def test_withdrawing_consent_cancels_the_reminders_waiting_for_them(harness: BotHarness) -> None:
    _, counselor_id = await _link(harness, "Dana")
    user, _ = await _patient_in_group(harness, counselor_id)
    await _session_starting_in(harness, timedelta(hours=5))
    async with db.transaction(harness.runtime.sessions) as session:
        due = await rules.due_reminders(session, utcnow(), (timedelta(hours=1),), ahead=timedelta(hours=6))
        await outbox.enqueue(session, [schedule_jobs.reminder(harness.runtime, d) for d in due])
    confirm = await harness.say(user, "/revoke", "stop sharing")
    await harness.tap(user, confirm, "Yes, stop sharing", "")
    for _ in range(50):
        [row] = await _rows(harness)
        if row.status is not OutboxStatus.PENDING:
            break
        await asyncio.sleep(0.1)
    assert row.status is OutboxStatus.CANCELLED and row.error == "consent_revoked"
    assert await schedule_jobs.plan(harness.runtime) == 0  # and nothing new is planned for them
