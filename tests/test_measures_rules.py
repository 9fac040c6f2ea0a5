"""Questionnaires on the test database (bot/measures/rules.py): each answer saved as it arrives and read back
by a new session (a restart), scoring when complete, the safety item ending it, expiry, schedules, and the
scores /patient and /caseload read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.content.instruments import Instrument, InstrumentLibrary
from bot.core import db
from bot.core.models import Measure, MeasureSource, MeasureStatus, Patient
from bot.measures import rules
from bot.workspace import caseload
from tests.harness import SHIPPED_CONTENT, load_content_once
from tests.records import add_counselor, add_measure, add_patient

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # 20:00 on the 7th in New York
EXPIRY = timedelta(days=3)


def _library() -> InstrumentLibrary:
    return load_content_once(SHIPPED_CONTENT).measures


def _phq9() -> Instrument:
    found = _library().reference("phq9")
    assert found is not None
    return found


async def _start(sessions: Sessions, patient: Patient, instrument: Instrument, **options: object) -> int:
    async with db.transaction(sessions) as session:
        measure = await rules.start(
            session,
            patient,
            instrument,
            NOW,
            expiry=EXPIRY,
            source=options.pop("source", MeasureSource.SCHEDULED),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )
        assert measure is not None
        return measure.id


async def _answer(sessions: Sessions, measure_id: int, item: str, value: int) -> rules.Answered:
    """One answer in its own transaction, on a measure read afresh: as the bot does, one tap a turn."""
    async with db.transaction(sessions) as session:
        measure = await session.get_one(Measure, measure_id)
        return rules.answer(measure, _ref(measure), item, value, NOW)


def _ref(measure: Measure) -> Instrument:
    found = _library().reference(measure.instrument)
    assert found is not None
    return found


async def _read(sessions: Sessions, measure_id: int) -> Measure:
    async with sessions() as session:
        return await session.get_one(Measure, measure_id)


async def test_a_phq9_answered_item_by_item_and_scored(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone="America/New_York", language="es")
    measure_id = await _start(sessions, patient, _phq9())
    started = await _read(sessions, measure_id)
    assert (started.step, started.status, started.language, started.answers) == (
        "1",
        MeasureStatus.OPEN,
        "es",
        {},
    )
    values = [1, 2, 0, 3, 1, 0, 2, 1]
    for number, value in enumerate(values, start=1):
        done = await _answer(sessions, measure_id, str(number), value)
        assert done.following is not None and done.following.id == str(number + 1) and not done.completed
        saved = await _read(sessions, measure_id)  # saved the moment it arrived: a restart loses nothing
        assert saved.answers[str(number)] == value and saved.step == str(number + 1)
    done = await _answer(sessions, measure_id, "9", 0)
    assert done.following is not None and done.following.id == "difficulty" and not done.safety
    done = await _answer(sessions, measure_id, "difficulty", 1)
    assert done.completed and done.following is None
    finished = await _read(sessions, measure_id)
    assert finished.status is MeasureStatus.COMPLETE and finished.step is None
    assert finished.scores == {"total": sum(values)} and finished.finished_at == NOW
    assert not finished.safety_positive


async def test_item_9_above_not_at_all_ends_it_at_once(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    measure_id = await _start(sessions, patient, _phq9())
    for number in range(1, 9):
        await _answer(sessions, measure_id, str(number), 0)
    done = await _answer(sessions, measure_id, "9", 1)
    assert done == rules.Answered(None, True, True)
    finished = await _read(sessions, measure_id)
    # Scored (every scored item was answered), and "how difficult" is not asked over the screener.
    assert finished.status is MeasureStatus.COMPLETE and finished.safety_positive
    assert finished.scores == {"total": 1} and "difficulty" not in finished.answers


async def test_only_the_item_being_asked_with_one_of_its_options(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    measure_id = await _start(sessions, patient, _phq9())
    with pytest.raises(rules.Invalid):
        await _answer(sessions, measure_id, "2", 1)  # not asked yet
    with pytest.raises(rules.Invalid):
        await _answer(sessions, measure_id, "1", 4)  # no such option
    await _answer(sessions, measure_id, "1", 1)
    with pytest.raises(rules.Invalid):
        await _answer(sessions, measure_id, "1", 2)  # answered already: an earlier message's button
    assert (await _read(sessions, measure_id)).answers == {"1": 1}


async def test_an_unfinished_one_expires_with_its_answers_and_no_score(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    measure_id = await _start(sessions, patient, _phq9())
    await _answer(sessions, measure_id, "1", 2)
    async with db.transaction(sessions) as session:
        assert await rules.close_expired(session, NOW + EXPIRY - timedelta(seconds=1)) == []
    async with db.transaction(sessions) as session:
        closed = await rules.close_expired(session, NOW + EXPIRY)
        assert [m.id for m in closed] == [measure_id]
    expired = await _read(sessions, measure_id)
    assert expired.status is MeasureStatus.EXPIRED and expired.answers == {"1": 2} and expired.scores is None
    with pytest.raises(rules.Closed):
        await _answer(sessions, measure_id, "2", 1)


async def test_one_scheduled_questionnaire_of_a_kind_a_day(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    day = NOW.date()
    first = await _start(sessions, patient, _phq9(), scheduled_for=day)
    async with db.transaction(sessions) as session:
        again = await rules.start(
            session, patient, _phq9(), NOW, expiry=EXPIRY, source=MeasureSource.SCHEDULED, scheduled_for=day
        )
    assert again is None
    sent = await _start(sessions, patient, _phq9(), source=MeasureSource.COUNSELOR)
    async with sessions() as session:
        assert [m.id for m in await rules.open_measures(session, patient.id)] == [first, sent]
        found = await rules.open_of(session, patient.id, "phq9")
        assert found is not None and found.id == first
        assert await rules.open_of(session, patient.id, "gad7") is None


async def test_schedules_override_the_clinic_default(sessions: Sessions) -> None:
    counselor = await add_counselor(sessions)
    patient = await add_patient(sessions, counselor=counselor)
    default = (("phq9", 14), ("gad7", 14), ("bam", 30))
    async with db.transaction(sessions) as session:
        await rules.set_schedule(session, patient.id, "phq9", 7, counselor.id)
        await rules.set_schedule(session, patient.id, "bam", None, counselor.id)
    async with sessions() as session:
        chosen = (await rules.overrides(session, [patient.id]))[patient.id]
    assert chosen == {"phq9": 7, "bam": None}
    assert rules.effective(default, chosen) == {"phq9": 7, "gad7": 14}
    async with db.transaction(sessions) as session:
        await rules.set_schedule(session, patient.id, "phq9", 28, counselor.id)  # changed again: one row
        await rules.clear_schedule(session, patient.id, "bam")
    async with sessions() as session:
        assert (await rules.overrides(session, [patient.id]))[patient.id] == {"phq9": 28}
    assert rules.order(default, ["bam", "audit", "gad7", "phq9"]) == ["phq9", "gad7", "bam", "audit"]


async def test_last_started_is_the_patients_local_day(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone="America/New_York")
    await _start(sessions, patient, _phq9())  # 01:00 UTC on the 8th: the 7th in New York
    async with sessions() as session:
        found = await rules.last_started(session, {patient.id: "America/New_York"})
    assert found == {patient.id: {"phq9": datetime(2026, 12, 7).date()}}


async def test_last_started_is_the_day_a_scheduled_one_was_for(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone="America/New_York")
    # Scheduled for the 6th and started on the 7th in New York (a late check-in time, reached after midnight).
    await _start(sessions, patient, _phq9(), scheduled_for=date(2026, 12, 6))
    gad7 = _library().reference("gad7")
    assert gad7 is not None
    await _start(sessions, patient, gad7, source=MeasureSource.COUNSELOR)  # not scheduled: the day it started
    async with sessions() as session:
        found = await rules.last_started(session, {patient.id: "America/New_York"})
    assert found == {patient.id: {"phq9": date(2026, 12, 6), "gad7": date(2026, 12, 7)}}


async def test_results_and_the_one_before(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    older = await add_measure(sessions, patient, "phq9", {"total": 8}, finished_at=NOW - timedelta(days=28))
    before = await add_measure(sessions, patient, "phq9", {"total": 12}, finished_at=NOW - timedelta(days=14))
    latest = await add_measure(sessions, patient, "phq9", {"total": 21}, finished_at=NOW)
    await add_measure(sessions, patient, "gad7", {"total": 6}, finished_at=NOW)
    await add_measure(sessions, patient, "gad7", {}, status=MeasureStatus.EXPIRED)
    async with sessions() as session:
        found = await rules.results(session, patient.id)
        previous = await rules.previous(session, latest)
    assert [r.measure_id for r in found["phq9"]] == [older.id, before.id, latest.id]
    assert [r.scores for r in found["gad7"]] == [{"total": 6}]
    assert previous is not None and previous.measure_id == before.id


async def test_caseload_flags_high_scores_and_rises_in_a_handful_of_queries(sessions: Sessions) -> None:
    me = await add_counselor(sessions)
    severe = await add_patient(sessions, counselor=me, alias="Severe")
    rising = await add_patient(sessions, counselor=me, alias="Rising")
    steady = await add_patient(sessions, counselor=me, alias="Steady")
    await add_measure(sessions, severe, "phq9", {"total": 22}, finished_at=NOW)
    await add_measure(sessions, rising, "gad7", {"total": 4}, finished_at=NOW - timedelta(days=28))
    await add_measure(sessions, rising, "gad7", {"total": 6}, finished_at=NOW - timedelta(days=14))
    await add_measure(sessions, rising, "gad7", {"total": 11}, finished_at=NOW)
    await add_measure(sessions, steady, "phq9", {"total": 21}, finished_at=NOW - timedelta(days=14))
    await add_measure(sessions, steady, "phq9", {"total": 9}, finished_at=NOW)  # the latest counts
    await add_measure(sessions, steady, "bam", {"use": 12, "risk": 24, "protective": 0}, finished_at=NOW)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    async with db.transaction(sessions) as session:
        sync_engine = session.get_bind()
        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            lines = await caseload.caseload(session, me.id, NOW, instruments=_library())
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
    flags = {
        line.alias: [(f.instrument, f.flag.kind, f.flag.value, f.flag.change) for f in line.measure_flags]
        for line in lines
    }
    assert flags == {
        "Severe": [("phq9", "high", 22, None)],
        "Rising": [("gad7", "rise", 11, 5)],
        "Steady": [],
    }
    # A flagged score comes before the others with nothing else to tell them apart.
    assert [line.alias for line in lines] == ["Rising", "Severe", "Steady"]
    assert len(statements) <= 9
