"""Validated questionnaires (PHQ-9, GAD-7, BAM) through real HTTP, the real Application, scheduler and
database: sent by the counselor, answered one question a message, scored and shown in /patient; PHQ-9 item 9
starting the C-SSRS screener at once; a BAM with its three scores; offered at the check-in time, carried on
after a restart, expiring; flagged in /caseload; included in /mydata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.content.instruments import Instrument
from bot.core.models import (
    AuditEvent,
    CareFlag,
    Measure,
    MeasureSource,
    MeasureStatus,
    OutboxMessage,
    Patient,
    ScreenStatus,
    SuicideScreen,
    utcnow,
)
from bot.measures.jobs import measures_tick
from devtools.simulator import BotMessage
from tests.harness import BotHarness, until
from tests.records import add_measure, checkin_time_passed

ZONE = ZoneInfo("America/New_York")  # the zone `enroll` chooses


def _definition(harness: BotHarness, instrument_id: str, language: str = "en") -> Instrument:
    found = harness.runtime.measures.get(instrument_id, language)
    assert found is not None
    return found


def _item_text(harness: BotHarness, instrument_id: str, item: str, language: str = "en") -> str:
    """The question's own words, as its message shows them."""
    return _definition(harness, instrument_id, language).item(item).text


def _label(harness: BotHarness, instrument_id: str, item: str, value: int, language: str = "en") -> str:
    definition = _definition(harness, instrument_id, language)
    return next(o.label for o in definition.options_of(definition.item(item)) if o.value == value)


async def _answer_all(
    harness: BotHarness,
    user: int,
    question: BotMessage,
    instrument_id: str,
    answers: list[tuple[str, int]],
    last_expect: str,
    language: str = "en",
) -> BotMessage:
    """Tap each answer on the question it belongs to; each next question comes as a new message."""
    for index, (item, value) in enumerate(answers):
        assert _item_text(harness, instrument_id, item, language) in (question.text or ""), (
            item,
            question.text,
        )
        following = answers[index + 1][0] if index + 1 < len(answers) else None
        expect = _item_text(harness, instrument_id, following, language) if following else last_expect
        question = await harness.tap(
            user, question, _label(harness, instrument_id, item, value, language), expect
        )
    return question


async def _measures(harness: BotHarness, patient_id: int) -> list[Measure]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(Measure).where(Measure.patient_id == patient_id).order_by(Measure.id)
        )
        return list(rows)


async def _flags(harness: BotHarness, patient_id: int) -> list[str]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id))
        return list(rows)


async def _restart_after_checkin_time(
    harness: BotHarness, patient: Patient, *rows: object, **settings: object
) -> datetime:
    """Stop the bot, make the patient's check-in time half an hour ago (and add `rows`), and start it again
    with `settings` changed; the patient's local time now."""
    await harness.stop()
    local = await checkin_time_passed(harness.runtime.sessions, patient.id, *rows, timezone=ZONE.key)
    harness.settings = harness.settings.model_copy(update=settings)
    await harness.start()
    return local


async def _patient(harness: BotHarness, language: str = "en") -> tuple[int, int, int, Patient]:
    counselor_user, counselor_id = await harness.link_counselor("Dana Reyes")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None
    return counselor_user, counselor_id, user, patient


async def test_a_phq9_sent_by_the_counselor_is_scored_and_shown_in_patient(harness: BotHarness) -> None:
    counselor_user, counselor_id, user, patient = await _patient(harness)
    alias = patient.alias
    phq9 = _definition(harness, "phq9")

    mark = harness.standin.mark(user)
    await harness.say(
        counselor_user,
        f"/measure {alias} phq9",
        harness.part("measures_team.sent", alias=alias, name="PHQ-9"),
    )
    first = await harness.standin.wait_for(user, _item_text(harness, "phq9", "1"), after=mark)
    text = first.text or ""
    assert harness.part("measures.intro_counselor", counselor="Dana") in text and phq9.intro[:30] in text
    assert (
        harness.text(
            "measures.question", name="PHQ-9", number=1, total=9, stem=phq9.stem, item=phq9.item("1").text
        )
        in text
    )
    # One question a message, its four options as buttons (one a row: the labels are long).
    assert [label for label, _ in first.buttons()] == [o.label for o in phq9.option_sets["frequency"]]

    # 2 x "several days", 3 x "more than half the days", 1 x "nearly every day": 0 + 2 + 6 + 3 = 11.
    values = [1, 2, 0, 2, 1, 3, 2, 0, 0]
    mark_team = harness.standin.mark(counselor_user)
    difficulty = await _answer_all(
        harness,
        user,
        first,
        "phq9",
        [(str(n), v) for n, v in enumerate(values, start=1)],
        phq9.item("difficulty").text,
    )
    # A second tap on an answered question's button is refused kindly and changes nothing.
    query = await harness.standin.tap_raw(user, first.message_id, first.buttons()[0][1])
    assert (await harness.standin.wait_for_callback_answer(query)).get("text") == harness.text(
        "measures.stale"
    )
    somewhat = _label(harness, "phq9", "difficulty", 1)
    await harness.tap(user, difficulty, somewhat, harness.part("measures.thanks"))
    [measure] = await _measures(harness, patient.id)
    assert measure.status is MeasureStatus.COMPLETE and measure.scores == {"total": 11}
    assert measure.answers["difficulty"] == 1 and measure.source is MeasureSource.COUNSELOR
    await harness.standin.wait_for(
        counselor_user, harness.part("measures_team.done_notice", alias=alias, name="PHQ-9"), after=mark_team
    )

    # /patient: the score, its band, the change since the last one, and a trend chart.
    await add_measure(
        harness.runtime.sessions, patient, "phq9", {"total": 6}, finished_at=utcnow() - timedelta(days=14)
    )
    mark = harness.standin.mark(counselor_user)
    results = await harness.say(
        counselor_user, f"/patient {alias}", harness.part("measures_team.results", lines="")
    )
    [band] = [b.label for b in phq9.scores[0].bands if b.min == 10]
    score = harness.text(
        "measures_team.score", label="", value=11, top=27, band=band, change="+5", flagged=False
    )
    assert "PHQ-9" in (results.text or "") and score in (results.text or "")
    assert "⚑" in (results.text or "")  # a rise of 5
    [chart] = [m for m in harness.standin.transcript(counselor_user)[mark:] if m.kind == "photo"]
    assert harness.text("measures_team.chart_title", alias=alias) in (chart.text or "")
    assert (chart.file_bytes or b"").startswith(b"\x89PNG")
    # When it was answered it was their first, and below 20: nothing to flag then.
    assert await _flags(harness, patient.id) == []
    async with harness.runtime.sessions() as session:
        sent = list(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == counselor_id))
        )
    assert "measure.sent" in sent


async def test_item_9_starts_the_screener_at_once_and_nothing_else_is_asked(harness: BotHarness) -> None:
    counselor_user, _, user, patient = await _patient(harness)
    alias = patient.alias
    await harness.say(
        counselor_user,
        f"/measure {alias} phq9",
        harness.part("measures_team.sent", alias=alias, name="PHQ-9"),
    )
    # The GAD-7 waits behind the open PHQ-9.
    await harness.say(
        counselor_user,
        f"/measure {alias} gad7",
        harness.part("measures_team.sent", alias=alias, name="GAD-7", waiting=True),
    )
    first = await harness.standin.wait_for(user, _item_text(harness, "phq9", "1"))
    mark_team = harness.standin.mark(counselor_user)
    ninth = await _answer_all(
        harness, user, first, "phq9", [(str(n), 0) for n in range(1, 9)], _item_text(harness, "phq9", "9")
    )
    mark = harness.standin.mark(user)
    several = _label(harness, "phq9", "9", 1)
    permission = await harness.tap(user, ninth, several, harness.text("cssrs.intro_measure"))
    assert [label for label, _ in permission.buttons()] == [
        harness.text("cssrs.ok_button"),
        harness.text("cssrs.not_now_button"),
    ]
    phq, gad = await _measures(harness, patient.id)
    assert phq.status is MeasureStatus.COMPLETE and phq.safety_positive and phq.scores == {"total": 1}
    assert gad.status is MeasureStatus.OPEN and gad.answers == {}
    async with harness.runtime.sessions() as session:
        [screen] = list(
            await session.scalars(select(SuicideScreen).where(SuicideScreen.patient_id == patient.id))
        )
    assert screen.trigger == "measure" and screen.status is ScreenStatus.OPEN
    await harness.standin.wait_for(
        counselor_user, harness.part("care.flag.measure_safety", alias=alias), after=mark_team
    )
    assert await _flags(harness, patient.id) == ["measure_safety"]
    # The screener goes on as usual: OK, then its first question.
    await harness.tap(
        user, permission, harness.text("cssrs.ok_button"), harness.text("cssrs.questions.wish_dead")
    )
    # Crisis first: no "how difficult", no GAD-7, no thanks over the screener (read once the screener's first
    # question has come, so that anything sent with or after the permission question is in the transcript).
    after = harness.standin.transcript(user)[mark:]
    assert not any(
        _item_text(harness, "phq9", "difficulty") in (m.text or "")
        or _item_text(harness, "gad7", "1") in (m.text or "")
        or harness.part("measures.thanks") in (m.text or "")
        for m in after
    )
    # /patient says so.
    results = await harness.say(
        counselor_user, f"/patient {alias}", harness.part("measures_team.results", lines="")
    )
    assert "⚠" in (results.text or "") and several in (results.text or "")


async def test_a_bam_with_its_three_scores(harness: BotHarness) -> None:
    counselor_user, _, user, patient = await _patient(harness)
    alias = patient.alias
    await harness.say(
        counselor_user, f"/measure {alias} BAM", harness.part("measures_team.sent", alias=alias, name="BAM")
    )
    first = await harness.standin.wait_for(user, _item_text(harness, "bam", "1"))
    assert [len(row) for row in first.reply_markup["inline_keyboard"]] == [2, 2, 1]  # type: ignore[index]
    answers = [
        ("1", 2), ("2", 3), ("3", 1), ("4", 2), ("5", 1), ("6", 1),
        ("7a", 1), ("7b", 0), ("7c", 0), ("7d", 0), ("7e", 1), ("7f", 0), ("7g", 0),
        ("8", 2), ("9", 3), ("10", 2), ("11", 1), ("12", 1), ("13", 4), ("14", 4), ("15", 0), ("16", 3),
        ("17", 4),
    ]  # fmt: skip
    await _answer_all(harness, user, first, "bam", answers, harness.part("measures.thanks"))
    [bam] = await _measures(harness, patient.id)
    assert bam.scores == {"use": 4, "risk": 9, "protective": 17} and bam.status is MeasureStatus.COMPLETE
    results = await harness.say(
        counselor_user, f"/patient {alias}", harness.part("measures_team.results", lines="")
    )
    assert "Use 4/12; Risk factors 9/24; Protective factors 17/24" in (results.text or "")


async def test_offered_at_the_check_in_time_carried_on_after_a_restart_and_expiring(
    harness: BotHarness,
) -> None:
    _, _, user, patient = await _patient(harness)
    local = await _restart_after_checkin_time(harness, patient, scheduler_tick_seconds=0.5)

    # At intake, the first two of PHQ-9, GAD-7 and BAM (MEASURES_PER_DAY), one after the other.
    first = await harness.standin.wait_for(user, harness.part("measures.intro_scheduled", count=2))
    assert _item_text(harness, "phq9", "1") in (first.text or "")
    measures = await _measures(harness, patient.id)
    assert [m.instrument for m in measures] == ["phq9", "gad7"]
    assert all(m.scheduled_for == local.date() for m in measures)
    second = await harness.tap(user, first, _label(harness, "phq9", "1", 0), _item_text(harness, "phq9", "2"))

    # A restart loses nothing: the same question's buttons carry on.
    await harness.restart()
    third = await harness.tap(user, second, _label(harness, "phq9", "2", 0), _item_text(harness, "phq9", "3"))
    # Not offered twice the same day, however often the job runs.
    await measures_tick(harness.runtime)
    await measures_tick(harness.runtime)
    assert len(await _measures(harness, patient.id)) == 2

    # Days later it has expired: a tap is refused kindly; it keeps its answers and has no score.
    async with harness.runtime.sessions.begin() as session:
        await session.execute(
            update(Measure).where(Measure.patient_id == patient.id).values(expires_at=utcnow())
        )

    async def expired() -> bool:
        return all(m.status is MeasureStatus.EXPIRED for m in await _measures(harness, patient.id))

    await until(expired, 10, "the questionnaires to expire")
    query = await harness.standin.tap_raw(user, third.message_id, third.buttons()[0][1])
    assert (await harness.standin.wait_for_callback_answer(query)).get("text") == harness.text(
        "measures.closed"
    )
    phq = (await _measures(harness, patient.id))[0]
    assert phq.answers == {"1": 0, "2": 0} and phq.scores is None


async def test_a_questionnaire_left_open_is_asked_again_at_the_next_check_in_time(
    harness: BotHarness,
) -> None:
    _, _, user, patient = await _patient(harness)
    now = datetime.now(UTC)
    local = now.astimezone(ZONE)
    # Yesterday's PHQ-9, answered up to item 3; the BAM is off for this patient, the GAD-7 done last week.
    yesterdays = Measure(
        patient_id=patient.id,
        instrument="phq9",
        source=MeasureSource.SCHEDULED,
        language="en",
        scheduled_for=local.date() - timedelta(days=1),
        step="3",
        answers={"1": 1, "2": 1},
        started_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=2),
    )
    await _restart_after_checkin_time(
        harness, patient, yesterdays, scheduler_tick_seconds=0.5, measures=(("phq9", 14),)
    )
    again = await harness.standin.wait_for(user, harness.part("measures.resumed"))
    assert _item_text(harness, "phq9", "3") in (again.text or "") and "3 of 10" in (
        again.text or ""
    )  # an answer above 0: "how difficult" comes too
    await measures_tick(harness.runtime)
    await measures_tick(harness.runtime)
    async with harness.runtime.sessions() as session:
        kinds = list(
            await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.patient_id == patient.id))
        )
    assert kinds.count("measure_resume") == 1  # once a day
    [measure] = await _measures(harness, patient.id)
    assert measure.reasked_on == local.date()


async def test_the_caseload_flags_scores_and_the_schedule_is_the_care_teams(harness: BotHarness) -> None:
    counselor_user, _, user, patient = await _patient(harness)
    other_user, _ = await harness.link_counselor("Sam")
    alias = patient.alias
    sessions = harness.runtime.sessions
    await add_measure(sessions, patient, "phq9", {"total": 21}, finished_at=utcnow() - timedelta(days=1))
    await add_measure(sessions, patient, "gad7", {"total": 4}, finished_at=utcnow() - timedelta(days=15))
    await add_measure(sessions, patient, "gad7", {"total": 10}, finished_at=utcnow() - timedelta(days=1))
    listing = await harness.say(counselor_user, "/caseload", alias)
    assert "⚑ PHQ-9 21, GAD-7 10 (+6)" in (listing.text or "")

    # The schedule: shown, changed, back to the clinic's default; only by the patient's own care team.
    shown = await harness.say(
        counselor_user, f"/measure {alias}", harness.part("measures_team.schedule", alias=alias, lines="")
    )
    assert "PHQ-9: every 14 days (clinic default)" in (shown.text or "")
    changed = await harness.say(
        counselor_user, f"/measure {alias} bam off", "BAM: off (set by the care team)"
    )
    assert "PHQ-9: every 14 days" in (changed.text or "")
    await harness.say(
        counselor_user, f"/measure {alias} phq9 every 7", "PHQ-9: every 7 days (set by the care team)"
    )
    await harness.say(
        counselor_user, f"/measure {alias} phq9 default", "PHQ-9: every 14 days (clinic default)"
    )
    for unread in ("sometimes", "every ²"):
        await harness.say(
            counselor_user,
            f"/measure {alias} phq9 {unread}",
            harness.part("measures_team.bad_schedule", alias=alias, name="phq9"),
        )
    await harness.say(
        counselor_user, f"/measure {alias} audit", harness.part("measures_team.unknown", name="audit")
    )
    await harness.say(other_user, f"/measure {alias} phq9", harness.part("caseload.not_found", alias=alias))
    await harness.say(user, f"/measure {alias} phq9", harness.part("input.not_for_role"))
    assert len(await _measures(harness, patient.id)) == 3  # the ones added above only: nothing was sent


async def test_mydata_includes_the_questionnaires(harness: BotHarness) -> None:
    _, _, user, patient = await _patient(harness, language="es")
    await add_measure(
        harness.runtime.sessions, patient, "phq9", {"total": 7}, answers={"1": 1}, language="es"
    )
    data, page = await harness.my_data(user)
    [given] = data["questionnaires"]["given"]
    assert (
        given["questionnaire"] == "phq9" and given["scores"] == {"total": 7} and given["answers"] == {"1": 1}
    )
    assert "measures" not in data["other_records"]
    phq9 = harness.runtime.measures.get("phq9", "es")
    assert phq9 is not None
    [total] = [score.name for score in phq9.scores if score.id == "total"]
    assert harness.text("mydata.html.questionnaires", "es") in page and f"{total}: 7" in page
    assert "total: 7" not in page  # the score's name in Spanish, not its id


async def test_an_unreviewed_unofficial_translation_is_not_offered(harness: BotHarness) -> None:
    """BAM's Spanish is unofficial and content/REVIEW.yaml has no review of it: a Spanish-speaking patient is
    not offered it (PHQ-9 is), and /patient says so to the counselor."""
    assert not _definition(harness, "bam", "es").official
    assert not harness.runtime.measures.offered_in("bam", "es")
    assert harness.runtime.measures.offered_in("bam", "en") and harness.runtime.measures.offered_in(
        "phq9", "es"
    )
    counselor_user, _, _, patient = await _patient(harness, language="es")
    await _restart_after_checkin_time(
        harness, patient, measures=(("bam", 30), ("phq9", 14)), measures_per_day=3
    )
    await measures_tick(harness.runtime)
    assert [m.instrument for m in await _measures(harness, patient.id)] == ["phq9"]
    # Sent by hand it is refused too: the counselor is told why and what to do.
    refused = harness.text(
        "measures_team.not_offered", alias=patient.alias, name="BAM", patient_language="es", instrument="bam"
    )
    await harness.say(counselor_user, f"/measure {patient.alias} bam", refused)
    assert [m.instrument for m in await _measures(harness, patient.id)] == ["phq9"]
    held_back = harness.text("measures_team.held_back", name="BAM", patient_language="es")
    results = await harness.say(counselor_user, f"/patient {patient.alias}", held_back)
    assert harness.text("measures_team.held_back", name="PHQ-9", patient_language="es") not in (
        results.text or ""
    )
