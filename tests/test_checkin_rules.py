"""The check-in rules (bot/checkin/rules.py) against the real database, without Telegram."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.checkin import rules
from bot.checkin.rules import Question
from bot.core import db
from bot.core.models import CheckIn, CheckInSource, CheckInStatus, Patient
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]
EXPIRY = timedelta(hours=6)


async def _patient(
    sessions: Sessions, *, zone: str = "America/Chicago", at: time | None = time(20, 0), **extra: object
) -> Patient:
    return await add_patient(sessions, timezone=zone, checkin_time=at, **extra)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---- reading what people type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[("7", 7), (" 0 ", 0), ("seven", 7), ("Siete", 7), ("7/10", 7), ("7 out of 10", 7), ("like a 7", 7)],
        *[("٧", 7), ("７", 7), ("a 7²", 7)],  # other decimal digits; a superscript is no number
    ],
)
def test_ratings_read_when_unambiguous(text: str, value: int) -> None:
    assert rules.read_number(text, 0, 10) == rules.Reading(value)


@pytest.mark.parametrize("text", ["eleven", "-3", "100", "11", "12/10"])
def test_ratings_outside_the_scale_are_asked_again(text: str) -> None:
    reading = rules.read_number(text, 0, 10)
    assert reading.value is None and (reading.out_of_range or text == "12/10")


@pytest.mark.parametrize("text", ["", "7 or 8", "7.5", "3/5", "bad", "a lot", "x" * 500, "🙂", "²", "①", "₃"])
def test_no_guessing(text: str) -> None:
    assert rules.read_number(text, 0, 10).value is None


def test_mood_scale() -> None:
    assert rules.read_number("3/5", 1, 5) == rules.Reading(3)
    assert rules.read_number("0", 1, 5) == rules.Reading(None, out_of_range=True)


@pytest.mark.parametrize(("text", "said"), [("yes", True), ("Sí", True), ("no.", False), ("maybe", None)])
def test_yes_no(text: str, said: bool | None) -> None:
    assert rules.read_yes_no(text) is said


# ---- the questions ---------------------------------------------------------------------------------------


async def test_a_full_check_in_in_order(sessions: Sessions) -> None:
    patient = await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        checkin, new = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        assert new and checkin.step == Question.CRAVING and checkin.local_day == date(2026, 11, 23)
        assert rules.answer(checkin, Question.CRAVING, 8, now) is Question.TRIGGERS
        assert rules.toggle_trigger(checkin, "stress", now) == ["stress"]
        assert rules.toggle_trigger(checkin, "hungry", now) == ["hungry", "stress"]
        assert rules.toggle_trigger(checkin, "other", now) == ["hungry", "stress", "other"]
        assert rules.toggle_trigger(checkin, "hungry", now) == ["stress", "other"]
        assert rules.confirm_triggers(checkin, now) is Question.TRIGGER_OTHER
        assert rules.answer(checkin, Question.TRIGGER_OTHER, "  my sister called  ", now) is Question.MOOD
        assert rules.answer(checkin, Question.MOOD, 2, now) is Question.SLEEP
        assert rules.answer(checkin, Question.SLEEP, "poor", now) is Question.USE
        assert rules.answer(checkin, Question.USE, True, now) is Question.USE_WHAT
        assert rules.answer(checkin, Question.USE_WHAT, "beer", now) is Question.NOTE
        assert rules.skip(checkin, Question.NOTE, now) is None
    async with sessions() as session:
        saved = await session.get_one(CheckIn, checkin.id)
    assert saved.status is CheckInStatus.COMPLETE and saved.finished_at == now
    assert (saved.craving, saved.triggers, saved.trigger_other, saved.mood, saved.sleep) == (
        8,
        ["stress", "other"],
        "my sister called",
        2,
        "poor",
    )
    assert (saved.used, saved.use_what, saved.note, saved.skipped) == (True, "beer", None, ["note"])


async def test_follow_up_questions_only_when_they_apply(sessions: Sessions) -> None:
    patient = await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        checkin, _ = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        assert rules.skip(checkin, Question.CRAVING, now) is Question.TRIGGERS
        assert rules.confirm_triggers(checkin, now) is Question.MOOD  # none selected: no "other" question
        assert checkin.triggers == []
        rules.skip(checkin, Question.MOOD, now)
        rules.skip(checkin, Question.SLEEP, now)
        assert rules.answer(checkin, Question.USE, False, now) is Question.NOTE
        assert rules.answer(checkin, Question.NOTE, "x" * 5000, now) is None
        assert checkin.note is not None and len(checkin.note) == rules.MAX_FREE_TEXT


async def test_wrong_answers_are_refused_and_change_nothing(sessions: Sessions) -> None:
    patient = await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        checkin, _ = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        for question, value in [
            (Question.CRAVING, 11),
            (Question.CRAVING, -1),
            (Question.CRAVING, True),
            (Question.MOOD, 3),  # not the current question
            (Question.CRAVING, "seven"),
        ]:
            with pytest.raises(rules.Invalid):
                rules.answer(checkin, question, value, now)
        with pytest.raises(rules.Invalid):
            rules.toggle_trigger(checkin, "stress", now)  # triggers are not asked yet
        assert checkin.craving is None and checkin.answered_at is None
        rules.answer(checkin, Question.CRAVING, 3, now)
        with pytest.raises(rules.Invalid):
            rules.toggle_trigger(checkin, "gambling", now)


async def test_on_demand_resumes_the_open_check_in(sessions: Sessions) -> None:
    patient = await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        first, _ = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        rules.answer(first, Question.CRAVING, 4, now)
    async with db.transaction(sessions) as session:
        again, new = await rules.begin_on_demand(session, patient, now + timedelta(minutes=5), expiry=EXPIRY)
    assert not new and again.id == first.id and again.step == Question.TRIGGERS


async def test_a_paused_check_in_keeps_its_answers_and_is_carried_on(sessions: Sessions) -> None:
    """Paused by a crisis reply: no longer open (typed text goes elsewhere); /checkin carries it on."""
    patient = await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        checkin, _ = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        rules.answer(checkin, Question.CRAVING, 4, now)
        rules.pause(checkin)
        assert checkin.status is CheckInStatus.PAUSED
    async with db.transaction(sessions) as session:
        assert await rules.open_checkin(session, patient.id) is None
        again, new = await rules.begin_on_demand(session, patient, now + timedelta(hours=1), expiry=EXPIRY)
    assert not new and again.id == checkin.id
    assert (again.status, again.step, again.craving) == (CheckInStatus.OPEN, Question.TRIGGERS, 4)


async def test_a_tap_on_the_paused_question_carries_it_on_and_a_paused_one_expires(
    sessions: Sessions,
) -> None:
    patient, other = await _patient(sessions), await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        tapped, _ = await rules.begin_on_demand(session, patient, now, expiry=EXPIRY)
        rules.pause(tapped)
        with pytest.raises(rules.Closed):
            rules.answer(tapped, Question.MOOD, 3, now)  # not its question: it stays paused
        assert tapped.status is CheckInStatus.PAUSED
        assert rules.answer(tapped, Question.CRAVING, 2, now) is Question.TRIGGERS
        assert tapped.status is CheckInStatus.OPEN
        left, _ = await rules.begin_on_demand(session, other, now, expiry=EXPIRY)
        rules.pause(left)
        closed = await rules.close_expired(session, now + EXPIRY)
    assert [(c.id, c.status) for c in closed] == [
        (tapped.id, CheckInStatus.PARTIAL),
        (left.id, CheckInStatus.MISSED),
    ]
    async with db.transaction(sessions) as session:
        fresh, new = await rules.begin_on_demand(session, other, now + EXPIRY, expiry=EXPIRY)
    assert new and fresh.id != left.id


# ---- the schedule --------------------------------------------------------------------------------------


async def test_scheduled_prompt_is_due_from_the_local_time_once_a_day(sessions: Sessions) -> None:
    patient = await _patient(sessions, zone="America/Chicago", at=time(20, 0))  # 20:00 CST = 02:00 UTC
    async with db.transaction(sessions) as session:
        assert await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 1, 59), expiry=EXPIRY) is None
        opened = await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 2, 0), expiry=EXPIRY)
        assert opened is not None and opened.local_day == date(2026, 11, 23)
        assert opened.expires_at == _utc(2026, 11, 24, 8, 0)
        assert await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 2, 1), expiry=EXPIRY) is None


async def test_a_late_start_still_prompts_within_the_window_and_not_after(sessions: Sessions) -> None:
    patient = await _patient(sessions, zone="America/Chicago", at=time(20, 0))
    async with db.transaction(sessions) as session:
        # Due until 20:00 + 6 hours: 02:00 local, 08:00 UTC.
        assert await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 8, 1), expiry=EXPIRY) is None
        late = await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 7, 30), expiry=EXPIRY)
        assert late is not None and late.local_day == date(2026, 11, 23)


async def test_no_scheduled_prompt_after_an_on_demand_check_in_that_day(sessions: Sessions) -> None:
    patient = await _patient(sessions, zone="America/Chicago", at=time(20, 0))
    async with db.transaction(sessions) as session:
        morning, _ = await rules.begin_on_demand(session, patient, _utc(2026, 11, 23, 15), expiry=EXPIRY)
        rules.answer(morning, Question.CRAVING, 2, _utc(2026, 11, 23, 15))
        await rules.close_expired(session, _utc(2026, 11, 23, 23))
        assert await rules.begin_scheduled(session, patient, _utc(2026, 11, 24, 2, 5), expiry=EXPIRY) is None


async def test_only_one_scheduled_check_in_per_day_even_from_two_processes(sessions: Sessions) -> None:
    patient = await _patient(sessions, zone="UTC", at=time(9, 0))
    now = _utc(2026, 11, 23, 9, 0)
    async with db.transaction(sessions) as session:
        session.add(
            CheckIn(
                patient_id=patient.id,
                source=CheckInSource.SCHEDULED,
                status=CheckInStatus.MISSED,
                local_day=date(2026, 11, 22),
                scheduled_for=date(2026, 11, 23),  # as if another process had just written it
                expires_at=now,
            )
        )
    async with db.transaction(sessions) as session:
        assert await rules.begin_scheduled(session, patient, now, expiry=EXPIRY) is None


async def test_scheduled_time_across_daylight_saving(sessions: Sessions) -> None:
    # 2026-11-01: New York leaves DST. 20:00 EST is 01:00 UTC the next day; the day before it was 00:00 UTC.
    patient = await _patient(sessions, zone="America/New_York", at=time(20, 0))
    assert rules.scheduled_occurrence(patient, _utc(2026, 11, 1, 0, 30)) == datetime(
        2026, 10, 31, 20, 0, tzinfo=rules.ZoneInfo("America/New_York")
    )
    occurrence = rules.scheduled_occurrence(patient, _utc(2026, 11, 2, 1, 0))
    assert occurrence is not None and occurrence.astimezone(UTC) == _utc(2026, 11, 2, 1, 0)


async def test_expired_check_ins_are_kept_partial_or_missed(sessions: Sessions) -> None:
    answered, silent = await _patient(sessions), await _patient(sessions)
    now = _utc(2026, 11, 23, 12)
    async with db.transaction(sessions) as session:
        first, _ = await rules.begin_on_demand(session, answered, now, expiry=EXPIRY)
        rules.answer(first, Question.CRAVING, 6, now)
        second, _ = await rules.begin_on_demand(session, silent, now, expiry=EXPIRY)
        assert await rules.close_expired(session, now + EXPIRY - timedelta(seconds=1)) == []
        closed = await rules.close_expired(session, now + EXPIRY)
    assert {c.id: c.status for c in closed} == {
        first.id: CheckInStatus.PARTIAL,
        second.id: CheckInStatus.MISSED,
    }
    with pytest.raises(rules.Closed):
        rules.answer(first, Question.TRIGGERS, 1, now)


async def _history(sessions: Sessions, patient: Patient, statuses: list[CheckInStatus]) -> None:
    """One closed scheduled check-in a day, oldest first, ending yesterday (2026-11-22)."""
    async with db.transaction(sessions) as session:
        for offset, status in enumerate(reversed(statuses)):
            day = date(2026, 11, 22) - timedelta(days=offset)
            session.add(
                CheckIn(
                    patient_id=patient.id,
                    source=CheckInSource.SCHEDULED,
                    status=status,
                    local_day=day,
                    scheduled_for=day,
                    expires_at=_utc(2026, 11, 23),
                    answered_at=None if status is CheckInStatus.MISSED else _utc(2026, 11, 23),
                )
            )


async def test_missed_days_in_a_row_and_streaks(sessions: Sessions) -> None:
    patient = await _patient(sessions)
    done, partial, missed = CheckInStatus.COMPLETE, CheckInStatus.PARTIAL, CheckInStatus.MISSED
    await _history(sessions, patient, [done, done, missed, partial, done, done, missed, missed, missed])
    async with sessions() as session:
        assert await rules.missed_in_a_row(session, patient.id) == 3
        assert await rules.streak(session, patient.id, date(2026, 11, 22)) == 0
        assert await rules.streak(session, patient.id, date(2026, 11, 19)) == 3  # partial counts
    other = await _patient(sessions)
    await _history(sessions, other, [missed, missed, done])
    async with sessions() as session:
        assert await rules.missed_in_a_row(session, other.id) == 0
        assert await rules.streak(session, other.id, date(2026, 11, 22)) == 1


async def test_one_nudge_and_none_in_quiet_hours(sessions: Sessions) -> None:
    evening = await _patient(sessions, zone="UTC", at=time(18, 0))
    late = await _patient(sessions, zone="UTC", at=time(21, 0))  # nudge at 23:00: inside 22:00-07:00
    async with db.transaction(sessions) as session:
        first = await rules.begin_scheduled(session, evening, _utc(2026, 11, 23, 18, 0), expiry=EXPIRY)
        second = await rules.begin_scheduled(session, late, _utc(2026, 11, 23, 21, 0), expiry=EXPIRY)
        assert first is not None and second is not None
    after = timedelta(hours=2)
    async with db.transaction(sessions) as session:
        assert await rules.due_nudges(session, _utc(2026, 11, 23, 19, 59), after=after) == []
        due = await rules.due_nudges(session, _utc(2026, 11, 23, 20, 0), after=after)
        assert [c.id for c, _ in due] == [first.id]
    async with db.transaction(sessions) as session:
        assert await rules.due_nudges(session, _utc(2026, 11, 23, 23, 0), after=after) == []
        assert await rules.due_nudges(session, _utc(2026, 11, 23, 23, 30), after=after) == []
    async with sessions() as session:
        nudged = list(await session.scalars(select(CheckIn.nudged_at).order_by(CheckIn.id)))
    assert nudged == [_utc(2026, 11, 23, 20, 0), _utc(2026, 11, 23, 23, 0)]  # the quiet one is spent too


async def test_days_for_history(sessions: Sessions) -> None:
    patient = await _patient(sessions, zone="UTC")
    async with db.transaction(sessions) as session:
        morning, _ = await rules.begin_on_demand(session, patient, _utc(2026, 11, 20, 8), expiry=EXPIRY)
        rules.answer(morning, Question.CRAVING, 7, _utc(2026, 11, 20, 8))
        rules.toggle_trigger(morning, "stress", _utc(2026, 11, 20, 8))
        rules.confirm_triggers(morning, _utc(2026, 11, 20, 8))
        await rules.close_expired(session, _utc(2026, 11, 20, 15))
        evening, _ = await rules.begin_on_demand(session, patient, _utc(2026, 11, 20, 20), expiry=EXPIRY)
        rules.answer(evening, Question.CRAVING, 3, _utc(2026, 11, 20, 20))
        rules.toggle_trigger(evening, "lonely", _utc(2026, 11, 20, 20))
        rules.confirm_triggers(evening, _utc(2026, 11, 20, 20))
        rules.answer(evening, Question.MOOD, 4, _utc(2026, 11, 20, 20))
        rules.skip(evening, Question.SLEEP, _utc(2026, 11, 20, 20))
        rules.answer(evening, Question.USE, True, _utc(2026, 11, 20, 20))
        await rules.close_expired(session, _utc(2026, 11, 21, 8))
        untouched, _ = await rules.begin_on_demand(session, patient, _utc(2026, 11, 22, 9), expiry=EXPIRY)
    async with sessions() as session:
        days = await rules.days_between(session, patient.id, date(2026, 11, 10), date(2026, 11, 23))
    assert list(days) == [date(2026, 11, 20)]  # the untouched check-in on the 22nd is not a data point
    day = days[date(2026, 11, 20)]
    assert (day.craving, day.mood, day.used, day.triggers, day.checked_in) == (
        3,
        4,
        True,
        ("stress", "lonely"),
        True,
    )
    assert untouched.id != evening.id and untouched.answered_at is None
