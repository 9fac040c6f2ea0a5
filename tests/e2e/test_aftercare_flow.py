"""Aftercare through real HTTP (issue 22, item 4), on a controlled clock: the offer at discharge; yes plans
check-ins at 1, 2, 4, 8 and 12 weeks; the crisis path, /sos and the safety plan stay open meanwhile; each
check-in is asked when the clock reaches it, answers reach the counselor's digest, "I'd like help" tells the
care team, an unanswered one closes; after the last one the patient is discharged as before. The clock is
moved by moving the stored times back (the jobs read them against the real time), as far as each step needs.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin.jobs import USE_ANSWER_WAIT
from bot.core import db
from bot.core.models import (
    AftercareCheckIn,
    AftercareStatus,
    CareFlag,
    Counselor,
    Escalation,
    Patient,
    PatientStatus,
    utcnow,
)
from bot.medcare import aftercare as aftercare_rules
from bot.medcare import jobs as medcare_jobs
from bot.medcare.jobs import aftercare_tick
from bot.medcare.prompts import naloxone_replacement
from bot.runtime import Runtime
from bot.workspace import digests
from devtools.simulator import BotMessage
from tests.harness import BotHarness, CommandLine, alert_button

ZONE = ZoneInfo("America/New_York")  # the zone `enroll` chooses; the check-in time is 20:00


async def _rows(harness: BotHarness, patient_id: int) -> list[AftercareCheckIn]:
    async with harness.runtime.sessions() as session:
        return list(
            await session.scalars(
                select(AftercareCheckIn)
                .where(AftercareCheckIn.patient_id == patient_id)
                .order_by(AftercareCheckIn.week)
            )
        )


async def _advance_to(harness: BotHarness, user: int, patient_id: int, week: int) -> BotMessage:
    """Move the clock to a minute after week `week`'s check-in came due (every stored time moves back by as
    much), and wait for that check-in's first question."""
    mark = harness.standin.mark(user)
    rows = {row.week: row for row in await _rows(harness, patient_id)}
    shift = rows[week].due_at - utcnow() + timedelta(minutes=1)
    async with db.transaction(harness.runtime.sessions) as session:
        for row in rows.values():
            values = {"due_at": row.due_at - shift}
            if row.closes_at is not None:
                values["closes_at"] = row.closes_at - shift
            await session.execute(
                update(AftercareCheckIn).where(AftercareCheckIn.id == row.id).values(**values)
            )
    return await harness.standin.wait_for(user, harness.text("aftercare.intro", week=week), after=mark)


async def test_aftercare_check_ins_on_a_controlled_clock(harness: BotHarness, cli: CommandLine) -> None:
    dana_user, dana_id = await harness.link_counselor("Dana")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, dana_id, alias="River")
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()

    done = await asyncio.to_thread(cli, "discharge", "River")
    assert done.returncode == 0 and "aftercare check-ins" in done.stderr
    await harness.standin.wait_for(user, harness.part("discharge.goodbye"), timeout=20)
    offer = await harness.standin.wait_for(user, harness.part("aftercare.offer"), timeout=20)
    accepted = await harness.tap(
        user, offer, harness.text("aftercare.yes_button"), harness.part("aftercare.accepted", time="20:00")
    )
    assert accepted.reply_keyboard() == [harness.text("sos.keyboard_button")]
    rows = await _rows(harness, patient_id)
    assert [row.week for row in rows] == [1, 2, 4, 8, 12]
    discharged_day = utcnow().astimezone(ZONE).date()
    assert [row.due_at.astimezone(ZONE) for row in rows] == [
        datetime.combine(discharged_day + timedelta(weeks=w), time(20, 0), tzinfo=ZONE)
        for w in (1, 2, 4, 8, 12)
    ]
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.AFTERCARE

    # In aftercare: the safety plan, /sos with "tell my care team", and the crisis path to the care team.
    await harness.say(user, "/safetyplan", harness.part("plan.intro"))
    sos = await harness.say(user, "/sos", harness.part("sos.reply", team="offer"))
    assert [label for label, _ in sos.buttons()] == [harness.text("sos.team_button")]
    await harness.say(user, "hello", harness.part("aftercare.note"))
    await harness.say(user, "im going to k1ll myself tonight", "988")
    await harness.standin.wait_for(
        dana_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    # ... and no daily check-in prompts or medicine questions.
    await harness.say(user, "/checkin", harness.part("help.patient_aftercare"))

    # Week 1: asked when the clock gets there, answered with buttons; "I'd like help" tells the care team.
    craving = await _advance_to(harness, user, patient_id, 1)
    assert harness.part("aftercare.ask.craving") in (craving.text or "")
    mood = await harness.tap(user, craving, "3", harness.part("aftercare.ask.mood"))
    use = await harness.tap(user, mood, "4", harness.part("aftercare.ask.use"))
    connected = await harness.tap(
        user, use, harness.text("checkin.buttons.no"), harness.part("aftercare.ask.connected")
    )
    await harness.tap(
        user,
        connected,
        harness.text("aftercare.connected.help"),
        harness.part("aftercare.help_told"),
    )
    await harness.standin.wait_for(dana_user, harness.text("care.flag.aftercare_help", alias="River"))

    # Week 2: asked, left unanswered, closed after its window.
    await _advance_to(harness, user, patient_id, 2)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(AftercareCheckIn)
            .where(AftercareCheckIn.patient_id == patient_id, AftercareCheckIn.week == 2)
            .values(closes_at=utcnow())
        )

    async def closed() -> bool:
        return [r.status for r in await _rows(harness, patient_id)][:2] == [
            AftercareStatus.COMPLETE,
            AftercareStatus.MISSED,
        ]

    deadline = asyncio.get_running_loop().time() + 10
    while not await closed():
        assert asyncio.get_running_loop().time() < deadline, "week 2 did not close"
        await asyncio.sleep(0.1)

    # The counselor's digest names both, with the answers (and no words: there are none).
    async with db.transaction(harness.runtime.sessions) as session:
        counselor = await session.get_one(Counselor, dana_id)
        counselor.digest_time = (
            utcnow().astimezone(ZoneInfo(counselor.timezone)) - timedelta(minutes=1)
        ).time()
    assert await digests.send_digests(harness.runtime) == 1
    digest = await harness.standin.wait_for(dana_user, harness.part("aftercare.digest", lines=""))
    for line in (
        harness.text(
            "aftercare.digest_line",
            alias="River",
            week=1,
            missed=False,
            craving=3,
            mood=4,
            used=False,
            connected="help",
        ),
        harness.text(
            "aftercare.digest_line",
            alias="River",
            week=2,
            missed=True,
            craving=None,
            mood=None,
            used=None,
            connected="",
        ),
    ):
        assert line in (digest.text or "")

    # Weeks 4 and 8 slipped by while the bot was down: only week 12 is asked; after it, aftercare ends.
    last = await _advance_to(harness, user, patient_id, 12)
    mood = await harness.tap(
        user, last, harness.text("checkin.buttons.skip"), harness.part("aftercare.ask.mood")
    )
    use = await harness.tap(
        user, mood, harness.text("checkin.buttons.skip"), harness.part("aftercare.ask.use")
    )
    connected = await harness.tap(
        user, use, harness.text("checkin.buttons.skip"), harness.part("aftercare.ask.connected")
    )
    await harness.tap(
        user,
        connected,
        harness.text("aftercare.connected.yes"),
        harness.part("aftercare.thanks", last=True),
    )
    await harness.standin.wait_for(user, harness.part("aftercare.ended"))
    statuses = [row.status for row in await _rows(harness, patient_id)]
    assert statuses == [AftercareStatus.COMPLETE, *[AftercareStatus.MISSED] * 3, AftercareStatus.COMPLETE]
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.DISCHARGED
    await harness.say(user, "hi", harness.text("discharged.note"))
    async with harness.runtime.sessions() as session:
        flags = list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))
    assert flags == ["aftercare_help"]


async def test_without_opt_in_discharge_stays_as_today(harness: BotHarness, cli: CommandLine) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, alias="Lake")
    await asyncio.to_thread(cli, "discharge", "Lake")
    offer = await harness.standin.wait_for(user, harness.part("aftercare.offer"), timeout=20)
    await harness.tap(user, offer, harness.text("aftercare.no_button"), harness.part("aftercare.declined"))
    assert await _rows(harness, patient_id) == []
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.DISCHARGED
    await harness.say(user, "hi", harness.text("discharged.note"))
    # The offer's buttons do nothing afterwards.
    query = await harness.standin.tap_raw(user, offer.message_id, offer.buttons()[0][1])
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("input.button_expired") in answer.get("text", "")


async def _in_aftercare(harness: BotHarness, cli: CommandLine, alias: str) -> tuple[int, int, int]:
    """A counselor and a patient of theirs, discharged into aftercare (yes to the offer): (counselor's user,
    patient's user, patient id)."""
    counselor_user, counselor_id = await harness.link_counselor(f"Counselor {alias}")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias=alias)
    done = await asyncio.to_thread(cli, "discharge", alias)
    assert done.returncode == 0
    offer = await harness.standin.wait_for(user, harness.part("aftercare.offer"), timeout=20)
    await harness.tap(user, offer, harness.text("aftercare.yes_button"), harness.part("aftercare.accepted"))
    return counselor_user, user, patient_id


async def _at_use_what(harness: BotHarness, cli: CommandLine, alias: str) -> tuple[int, int, int]:
    """A patient in aftercare whose first check-in is at "What did you use?" (craving and mood skipped, yes
    to use): (counselor's user, patient's user, patient id)."""
    counselor_user, user, patient_id = await _in_aftercare(harness, cli, alias)
    craving = await _advance_to(harness, user, patient_id, 1)
    skip = harness.text("checkin.buttons.skip")
    mood = await harness.tap(user, craving, skip, harness.part("aftercare.ask.mood"))
    use = await harness.tap(user, mood, skip, harness.part("aftercare.ask.use"))
    await harness.tap(user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what"))
    return counselor_user, user, patient_id


# The rules have no phrase for this; the semantic layer thinks it may be high or imminent
# (`python -m bot risk check`).
UNLISTED = "i keep thinking everyone would move on fine if i just vanished"


async def test_what_only_the_semantic_layer_worries_about_is_asked_in_aftercare(
    harness: BotHarness, cli: CommandLine
) -> None:
    counselor_user, user, _ = await _in_aftercare(harness, cli, "Brook")
    mark = harness.standin.mark(user)
    question = await harness.say(user, UNLISTED, harness.part("crisis.safety_check"))
    replies = [m.text or "" for m in harness.standin.transcript(user)[mark:]]
    assert not any(harness.part("aftercare.note") in text for text in replies)
    await harness.tap(user, question, harness.text("crisis.not_safe_button"), "988")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )


async def test_what_only_the_semantic_layer_worries_about_is_asked_at_a_use_question(
    harness: BotHarness, cli: CommandLine
) -> None:
    """Typed while "What did you use?" is open: the check-in reads the words, and the semantic layer's
    "are you safe right now?" is still asked, as for an active patient."""
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()
    _, user, _ = await _at_use_what(harness, cli, "Ash")
    await harness.say(user, UNLISTED, harness.part("crisis.safety_check"))


async def test_a_patient_between_check_ins_can_stop_them(harness: BotHarness, cli: CommandLine) -> None:
    """After a check-in is answered ("Stop these check-ins" went with its first message), /help says how to
    stop, and /stopcheckins does it after one tap: what is planned is cancelled, the patient is discharged."""
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()
    counselor_user, user, patient_id = await _in_aftercare(harness, cli, "Wren")
    craving = await _advance_to(harness, user, patient_id, 1)
    skip = harness.text("checkin.buttons.skip")
    mood = await harness.tap(user, craving, skip, harness.part("aftercare.ask.mood"))
    assert harness.text("aftercare.stop_button") not in [label for label, _ in mood.buttons()]
    use = await harness.tap(user, mood, skip, harness.part("aftercare.ask.use"))
    connected = await harness.tap(user, use, skip, harness.part("aftercare.ask.connected"))
    await harness.tap(
        user, connected, harness.text("aftercare.connected.yes"), harness.part("aftercare.thanks", last=False)
    )

    for sent, key in (("/help", "help.patient_aftercare"), ("hello", "aftercare.note")):
        told = await harness.say(user, sent, harness.part(key))
        assert "/stopcheckins" in (told.text or ""), key
    await harness.say(counselor_user, "/stopcheckins", harness.text("input.not_for_role"))
    asked = await harness.say(user, "/stopcheckins", harness.part("aftercare.stop_ask"))
    assert [label for label, _ in asked.buttons()] == [harness.text("aftercare.stop_button")]
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.AFTERCARE  # nothing stops before the tap
    await harness.tap(user, asked, harness.text("aftercare.stop_button"), harness.part("aftercare.stopped"))

    statuses = [row.status for row in await _rows(harness, patient_id)]
    assert statuses == [AftercareStatus.COMPLETE, *[AftercareStatus.CANCELLED] * 4]
    patient = await harness.patient(user)
    assert patient is not None and patient.status is PatientStatus.DISCHARGED
    await harness.say(user, "/stopcheckins", harness.part("help.patient_discharged"))


async def test_the_crisis_path_in_aftercare_is_as_before(harness: BotHarness, cli: CommandLine) -> None:
    """In aftercare: Acknowledge tells the patient who saw it; "Try an exercise" opens the exercises; the
    reminder to replace naloxone is not one the outbox drops for a patient who is not active."""
    counselor_user, user, patient_id = await _in_aftercare(harness, cli, "Vale")
    # A use told in words: the team is flagged, and the reply offers an exercise, which opens.
    told = await harness.say(user, "i had a few beers with friends last night", harness.part("use.told_flag"))
    await harness.tap(user, told, harness.text("crisis.try_exercise_button"), harness.part("coping.menu"))
    await harness.say(user, "im going to k1ll myself tonight", "988")
    alert = await harness.standin.wait_for(
        counselor_user,
        harness.part("escalation.alert", level=harness.text("escalation.levels.imminent")),
        timeout=20,
    )
    mark = harness.standin.mark(user)
    ack = alert_button(alert, "ack")
    await harness.standin.tap(counselor_user, alert.message_id, ack)
    await harness.standin.wait_for(
        user, harness.text("escalation.patient_told", counselor="Counselor"), after=mark, timeout=20
    )

    patient = await harness.patient(user)
    assert patient is not None
    planned = naloxone_replacement(harness.runtime, patient, 1, utcnow())
    assert (planned.patient_id, planned.subject_patient_id) == (None, patient_id)


async def test_a_use_told_in_an_aftercare_check_in_is_told_as_in_the_daily_check_in(
    harness: BotHarness, cli: CommandLine
) -> None:
    """As in the daily check-in: "What did you use?" follows a yes. Opioids or fentanyl page the care team now
    and the patient gets the overdose advice (naloxone, not alone); alcohol alone asks "alone or injected?",
    and "Neither" is a flag to the care team. Typed words answer as taps do."""
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()
    counselor_user, user, patient_id = await _in_aftercare(harness, cli, "Reed")
    craving = await _advance_to(harness, user, patient_id, 1)
    mood = await harness.tap(user, craving, "3", harness.part("aftercare.ask.mood"))
    use = await harness.tap(user, mood, "4", harness.part("aftercare.ask.use"))
    what = await harness.tap(
        user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what")
    )
    assert [label for label, _ in what.buttons()][:2] == [
        harness.text("checkin.buttons.use_what.opioid"),
        harness.text("checkin.buttons.use_what.alcohol"),
    ]
    mark = harness.standin.mark(user)
    connected = await harness.tap(
        user, what, harness.text("checkin.buttons.use_what.opioid"), harness.part("aftercare.ask.connected")
    )
    told = "\n".join(m.text or "" for m in harness.standin.transcript(user)[mark:])
    for key in ("use.told_high", "use.advice.naloxone", "use.advice.not_alone"):
        assert harness.part(key) in told, key
    assert harness.text("use.told_flag").splitlines()[-1] not in told  # a page now, not the next business day
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    await harness.tap(
        user, connected, harness.text("aftercare.connected.yes"), harness.part("aftercare.thanks", last=False)
    )

    craving = await _advance_to(harness, user, patient_id, 2)
    skip = harness.text("checkin.buttons.skip")
    mood = await harness.tap(user, craving, skip, harness.part("aftercare.ask.mood"))
    use = await harness.tap(user, mood, skip, harness.part("aftercare.ask.use"))
    await harness.tap(user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what"))
    how = await harness.say(user, "a few beers", harness.part("checkin.ask.use_how"))
    await harness.tap(
        user, how, harness.text("checkin.buttons.use_how.neither"), harness.part("aftercare.ask.connected")
    )
    await harness.standin.wait_for(counselor_user, harness.text("care.flag.use_reported", alias="Reed"))
    rows = {row.week: row for row in await _rows(harness, patient_id)}
    assert (rows[1].use_report, rows[2].use_report) == (
        {"substances": ["opioid"], "alone": False, "injected": False},
        {"substances": ["alcohol"], "alone": False, "injected": False},
    )


async def test_a_yes_left_without_what_in_aftercare_is_told_as_high(
    harness: BotHarness, cli: CommandLine
) -> None:
    """As in the daily check-in: a "yes" to use with "What did you use?" left unanswered is told to the care
    team after `USE_ANSWER_WAIT` as a page (not knowing what was used counts as high), once; the check-in
    moves past the question and asks the next one."""
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()
    counselor_user, user, patient_id = await _at_use_what(harness, cli, "Wren")

    await aftercare_tick(harness.runtime)  # not yet: the patient may still answer
    assert await _escalations(harness, patient_id) == []
    long_ago = utcnow() - USE_ANSWER_WAIT - timedelta(seconds=1)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(AftercareCheckIn)
            .where(AftercareCheckIn.patient_id == patient_id)
            .values(answered_at=long_ago)
        )
    await aftercare_tick(harness.runtime)
    await aftercare_tick(harness.runtime)  # told once
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )
    [source] = await _escalations(harness, patient_id)
    assert source == "aftercare"
    row = (await _rows(harness, patient_id))[0]
    assert (row.step, row.skipped) == ("connected", ["craving", "mood", "use_what"])
    # ...and asks its next question (once), which the patient can answer.
    connected = await harness.standin.wait_for(user, harness.part("aftercare.ask.connected"))
    await aftercare_tick(harness.runtime)
    asked = [
        m
        for m in harness.standin.transcript(user)
        if harness.part("aftercare.ask.connected") in (m.text or "")
    ]
    assert len(asked) == 1
    await harness.tap(
        user, connected, harness.text("aftercare.connected.yes"), harness.part("aftercare.thanks", last=False)
    )


async def test_one_failing_page_does_not_stall_the_others(
    harness: BotHarness, cli: CommandLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two aftercare check-ins with "What did you use?" left unanswered; telling the care team of the first
    fails: the second is still told, and the first is tried again at the next tick."""
    harness.settings = harness.settings.model_copy(update={"scheduler_tick_seconds": 0.5})
    await harness.restart()
    failing = (await _at_use_what(harness, cli, "Fern"))[2]
    other = (await _at_use_what(harness, cli, "Sage"))[2]
    real = medcare_jobs.tell_unanswered_use

    async def fails_for_fern(
        runtime: Runtime, session: AsyncSession, patient: Patient, *args: Any, **kw: Any
    ) -> int:
        if patient.id == failing:
            raise RuntimeError("page failed")
        return await real(runtime, session, patient, *args, **kw)

    monkeypatch.setattr(medcare_jobs, "tell_unanswered_use", fails_for_fern)
    long_ago = utcnow() - USE_ANSWER_WAIT - timedelta(seconds=1)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(update(AftercareCheckIn).values(answered_at=long_ago))
    await aftercare_tick(harness.runtime)
    assert await _escalations(harness, failing) == []
    assert await _escalations(harness, other) == ["aftercare"]
    assert (await _rows(harness, failing))[0].step == "use_what"  # left as it was, for the next tick
    monkeypatch.setattr(medcare_jobs, "tell_unanswered_use", real)
    await aftercare_tick(harness.runtime)
    assert await _escalations(harness, failing) == ["aftercare"]


async def _escalations(harness: BotHarness, patient_id: int) -> list[str]:
    async with harness.runtime.sessions() as session:
        found = await session.scalars(select(Escalation.source).where(Escalation.patient_id == patient_id))
        return list(found)


async def test_only_a_patient_in_the_program_with_consent_is_offered_aftercare(
    harness: BotHarness, cli: CommandLine
) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, alias="Moss")
    async with db.transaction(harness.runtime.sessions) as session:  # withdrew consent (as /revoke leaves it)
        await session.execute(
            update(Patient).where(Patient.id == patient_id).values(status=PatientStatus.CONSENT_REVOKED)
        )
    mark = harness.standin.mark(user)
    done = await asyncio.to_thread(cli, "discharge", "Moss")
    assert done.returncode == 0 and "no offer of aftercare" in done.stderr
    await harness.standin.wait_for(user, harness.part("discharge.goodbye"), after=mark, timeout=20)
    async with harness.runtime.sessions() as session:
        assert not await aftercare_rules.offer_open(
            session, await session.get_one(Patient, patient_id), utcnow()
        )
    replies = [m.text or "" for m in harness.standin.transcript(user)[mark:]]
    assert not any(harness.part("aftercare.offer") in text for text in replies)


async def test_mydata_includes_the_aftercare_check_ins(harness: BotHarness) -> None:
    """A patient in aftercare asks for their data (in Spanish): each check-in is in both files, under its own
    heading, with the answer about ongoing care in their words."""
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, language="es")
    now = utcnow()
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(Patient).where(Patient.id == patient_id).values(status=PatientStatus.AFTERCARE)
        )
        session.add_all(
            [
                AftercareCheckIn(
                    patient_id=patient_id,
                    week=1,
                    due_at=now,
                    status=AftercareStatus.COMPLETE,
                    asked_at=now,
                    answered_at=now + timedelta(minutes=1),
                    finished_at=now + timedelta(minutes=1),
                    craving=3,
                    mood=4,
                    used=False,
                    connected="not_yet",
                ),
                AftercareCheckIn(patient_id=patient_id, week=2, due_at=now + timedelta(weeks=1)),
                AftercareCheckIn(
                    patient_id=patient_id,
                    week=4,
                    due_at=now + timedelta(weeks=3),
                    status=AftercareStatus.COMPLETE,
                    used=True,
                    use_report={"substances": ["alcohol", "pills"], "alone": True, "injected": False},
                    connected="yes",
                    skipped=["craving", "use_how"],
                ),
            ]
        )
    data, page = await harness.my_data(user)
    first, second, third = data["aftercare_checkins"]
    assert (first["week"], first["status"], first["craving"], first["mood"], first["used"]) == (
        1,
        "complete",
        3,
        4,
        False,
    )
    assert first["connected"] == "not_yet" and (second["week"], second["status"]) == (2, "planned")
    assert datetime.fromisoformat(first["answered_at"]) == now + timedelta(minutes=1)
    assert second["answered_at"] is None
    assert third["use_report"] == {"substances": ["alcohol", "pills"], "alone": True, "injected": False}
    assert third["skipped"] == ["craving", "use_how"]
    assert "aftercare_checkins" not in data["other_records"]
    for words in (
        harness.text("mydata.html.aftercare", "es"),
        harness.text("mydata.html.connected", "es"),
        harness.text("aftercare.connected.not_yet", "es"),
        harness.text("mydata.values.planned", "es"),
        # what was used and how (as in the daily check-ins' table), and the questions skipped
        ", ".join(
            harness.text(key, "es")
            for key in (
                "checkin.buttons.use_what.alcohol",
                "mydata.html.pills",
                "checkin.buttons.use_how.alone",
            )
        ),
        harness.text("mydata.html.skipped", "es"),
        f"{harness.text('mydata.html.craving', 'es')}, {harness.text('mydata.html.use_how', 'es')}",
    ):
        assert escape(words) in page, words  # the page escapes every text
    assert harness.text("checkin.buttons.use_how.injected", "es") not in page
    for code in ("not_yet", "use_how", "pills"):  # the answers' codes never show, only their words
        assert code not in page, code
