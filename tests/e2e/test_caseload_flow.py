"""The counselor's workspace over real HTTP: /caseload, /patient, /note, /digest and the daily digest, with
the role boundaries (another counselor's patient, a patient calling counselor commands) and the audit
trail."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import (
    AuditEvent,
    CareAssignment,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    Counselor,
    CounselorRole,
    EscalationAlert,
    OutboxMessage,
    OutboxStatus,
    Patient,
    utcnow,
)
from bot.risk import paging
from bot.workspace import digests, reassignment
from tests.e2e.test_crisis_flow import _link
from tests.harness import BotHarness, until

NOT_FOR_YOU = "not available to you"


async def _checkin(
    harness: BotHarness, patient_id: int, *, craving: int, used: bool, days_ago: int = 0
) -> None:
    answered = utcnow() - timedelta(days=days_ago)
    local = answered.astimezone(ZoneInfo("America/New_York")).date()
    async with db.transaction(harness.runtime.sessions) as session:
        session.add(
            CheckIn(
                patient_id=patient_id,
                source=CheckInSource.ON_DEMAND,
                status=CheckInStatus.COMPLETE,
                local_day=local,
                started_at=answered,
                answered_at=answered,
                finished_at=answered,
                expires_at=answered + timedelta(hours=6),
                craving=craving,
                mood=3,
                used=used,
                triggers=["stress"],
            )
        )


async def _audited(harness: BotHarness, action: str) -> list[AuditEvent]:
    async with harness.runtime.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


async def test_caseload_patient_summary_and_notes_within_the_care_team(harness: BotHarness) -> None:
    dana_user, dana_id = await _link(harness, "Dana")
    sam_user, sam_id = await _link(harness, "Sam")
    calm_user, worried_user, sams_user = harness.new_user_id(), harness.new_user_id(), harness.new_user_id()
    calm_id = await harness.enroll(calm_user, dana_id)
    worried_id = await harness.enroll(worried_user, dana_id)
    sams_id = await harness.enroll(sams_user, sam_id)
    await _checkin(harness, calm_id, craving=2, used=False)
    await _checkin(harness, worried_id, craving=8, used=True, days_ago=1)
    await _checkin(harness, sams_id, craving=5, used=False)
    calm, worried, sams = [await harness.patient(u) for u in (calm_user, worried_user, sams_user)]
    assert calm and worried and sams

    listing = await harness.say(dana_user, "/caseload", "Your caseload (2 patients)")
    body = listing.text or ""
    # who needs attention first: reported use comes before a quiet week
    assert body.index(worried.alias) < body.index(calm.alias)
    assert "use 1 of 7 days" in body and sams.alias not in body
    assert [e.actor_id for e in await _audited(harness, "caseload.viewed")] == [dana_id]

    # /patient: a chart and a text version; another counselor's patient is "not found", like a wrong alias
    mark = harness.standin.mark(dana_user)
    summary = await harness.say(dana_user, f"/patient {worried.alias.lower()}", "Days with use reported: 1")
    chart = next(m for m in harness.standin.transcript(dana_user)[mark:] if m.kind == "photo")
    assert chart.file_bytes and worried.alias in (chart.text or "")
    assert "Stress (1)" in (summary.text or "")
    await harness.say(dana_user, f"/patient {sams.alias}", "No patient")
    await harness.say(dana_user, "/patient P-0000", "No patient")
    viewed = await _audited(harness, "patient.viewed")
    assert [(e.actor_id, e.subject_id) for e in viewed] == [(dana_id, worried_id)]

    # notes: kept for the team, shown in /patient, never to someone off the team
    await harness.say(
        dana_user, f"/note {worried.alias} called, she is going to a meeting tonight", "Note saved"
    )
    await harness.say(sam_user, f"/note {worried.alias} sneaky", "No patient")
    await harness.say(dana_user, f"/patient {worried.alias}", "Days with use reported")
    notes = await harness.standin.wait_for(dana_user, "Notes by the care team")
    assert "Dana: called, she is going to a meeting tonight" in (notes.text or "")

    # patients cannot use counselor commands
    for command in ("/caseload", f"/patient {worried.alias}", f"/note {worried.alias} hi", "/digest 08:00"):
        reply = await harness.say(calm_user, command, NOT_FOR_YOU)
        assert worried.alias not in (reply.text or "")


async def test_a_supervisor_sees_the_program_and_an_admin_sees_no_clinical_data(harness: BotHarness) -> None:
    _, dana_id = await _link(harness, "Dana")
    lee_user, _ = await _link(harness, "Lee", CounselorRole.SUPERVISOR)
    admin_user, _ = await _link(harness, "Ari", CounselorRole.ADMIN)
    patient_user = harness.new_user_id()
    await harness.enroll(patient_user, dana_id)
    patient = await harness.patient(patient_user)
    assert patient is not None
    listing = await harness.say(lee_user, "/caseload", "All active patients (1)")
    assert patient.alias in (listing.text or "")
    await harness.say(lee_user, f"/patient {patient.alias}", "the last 14 days")
    await harness.say(admin_user, "/caseload", "shows no patient data")
    await harness.say(admin_user, f"/patient {patient.alias}", "No patient")


async def test_caseload_pages_and_forged_page_buttons(harness: BotHarness) -> None:
    dana_user, dana_id = await _link(harness, "Dana")
    for _ in range(12):
        await harness.enroll(harness.new_user_id(), dana_id)
    first = await harness.say(dana_user, "/caseload", "Page 1 of 2")
    assert [label for label, _ in first.buttons()] == ["Next ›"]
    second = await harness.tap(dana_user, first, "Next ›", "Page 2 of 2")
    assert [label for label, _ in second.buttons()] == ["‹ Previous"]
    await harness.standin.tap_raw(dana_user, second.message_id, "cl:99")  # clamped to the last page
    await harness.standin.wait_for(dana_user, lambda m: "Page 2 of 2" in (m.text or "") and m != second)


async def test_the_daily_digest_at_the_chosen_time_and_nothing_when_nothing_happened(
    harness: BotHarness,
) -> None:
    dana_user, dana_id = await _link(harness, "Dana")
    await harness.say(dana_user, "/digest 25:99", "is not a time")
    await harness.say(dana_user, "/digest 7:30", "at 07:30 each day")
    async with harness.runtime.sessions() as session:
        assert (await session.get_one(Counselor, dana_id)).digest_time == time(7, 30)
    # a controlled clock: the digest time is set to a minute ago, in the counselor's zone
    local = utcnow().astimezone(ZoneInfo("America/New_York")) - timedelta(minutes=1)
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(Counselor)
            .where(Counselor.id == dana_id)
            .values(digest_time=local.time().replace(microsecond=0))
        )
    if local.date() != utcnow().astimezone(ZoneInfo("America/New_York")).date():
        return  # a minute after local midnight: "a minute ago" was yesterday; nothing to test this run
    assert await digests.send_digests(harness.runtime) == 0  # no patients: nothing to say
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, dana_id)
    await _checkin(harness, patient_id, craving=9, used=True)
    patient = await harness.patient(patient_user)
    assert patient is not None
    mark = harness.standin.mark(dana_user)
    assert await digests.send_digests(harness.runtime) == 1
    digest = await harness.standin.wait_for(dana_user, "Daily digest: the last 24 hours", after=mark)
    assert f"High cravings: {patient.alias} (9)" in (digest.text or "")
    assert f"Use reported: {patient.alias}" in (digest.text or "")
    assert await digests.send_digests(harness.runtime) == 0  # once a day
    await harness.say(dana_user, "/digest off", "digest is off")


async def test_reassigning_a_patient_moves_their_open_escalation_to_the_new_counselor(
    harness: BotHarness,
) -> None:
    dana_user, dana_id = await _link(harness, "Dana")
    sam_user, sam_id = await _link(harness, "Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, dana_id)
    await harness.say(patient_user, "i am going to kill myself tonight", "988")
    danas_alert = await harness.standin.wait_for(dana_user, "URGENT alert")

    async def copy_kept() -> bool:
        async with harness.runtime.sessions() as session:
            return bool(
                await session.scalar(
                    select(EscalationAlert.id).where(EscalationAlert.counselor_id == dana_id)
                )
            )

    await until(copy_kept, 10, "Dana's alert copy recorded")
    async with db.transaction(harness.runtime.sessions) as session:
        patient = await session.get_one(Patient, patient_id)
        sam = await session.get_one(Counselor, sam_id)
        moved = await reassignment.assign_primary(session, patient, sam, utcnow())
    assert moved.previous == [dana_id] and moved.escalations == 1
    await paging.page_due(harness.runtime)
    await harness.standin.wait_for(sam_user, "URGENT alert")
    async with harness.runtime.sessions() as session:
        team = list(
            await session.scalars(
                select(CareAssignment.counselor_id).where(CareAssignment.patient_id == patient_id)
            )
        )
        assert team == [sam_id]
        pending_for_dana = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.counselor_id == dana_id, OutboxMessage.status == OutboxStatus.PENDING
            )
        )
        assert list(pending_for_dana) == []
    listing = await harness.say(sam_user, "/caseload", "Your caseload (1 patient)")
    assert "open URGENT alert" in (listing.text or "")
    await harness.say(dana_user, "/caseload", "no active patients")
    # Off the care team, Dana's old alert and /alerts no longer reach the patient's words or safety plan.
    text = harness.runtime.text
    await harness.say(dana_user, "/alerts", text("escalation.none_open", "en"))
    for key in ("escalation.details_button", "escalation.plan_button"):
        button = next(data for name, data in danas_alert.buttons() if name == text(key, "en"))
        query = await harness.standin.tap(dana_user, danas_alert.message_id, button)
        answer = await harness.standin.wait_for_callback_answer(query)
        assert answer.get("text") == text("escalation.refused", "en")


async def test_aliases_with_spaces_in_patient_and_note(harness: BotHarness) -> None:
    dana_user, dana_id = await _link(harness, "Dana")
    await harness.enroll(harness.new_user_id(), dana_id, alias="Demo patient")
    await harness.enroll(harness.new_user_id(), dana_id, alias="Sam Lee")

    def text(key: str, **variables: object) -> str:
        return harness.runtime.text(key, "en", **variables)

    def summary(alias: str) -> str:
        return text("caseload.chart_title", alias=alias, days=14)

    await harness.say(dana_user, "/patient Demo patient", summary("Demo patient"))
    await harness.say(dana_user, '/patient "sam lee"', summary("Sam Lee"))
    saved = text("caseload.note_saved", alias="Sam Lee")
    await harness.say(dana_user, "/note Sam Lee relapsed on Friday, call her", saved)
    await harness.say(dana_user, "/note Sam Lee", text("caseload.note_usage", alias="P-1234"))
    await harness.say(dana_user, "/note Sam called", text("caseload.not_found", alias="Sam"))
    await harness.say(dana_user, "/patient Sam Lee", summary("Sam Lee"))
    notes = await harness.standin.wait_for(dana_user, text("caseload.notes", notes="").strip())
    assert "Dana: relapsed on Friday, call her" in (notes.text or "")
