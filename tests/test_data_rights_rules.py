"""A patient's rights and the end of care, on the real database: the export (bot/privacy/export.py), the
erasure (bot/privacy/erasure.py), discharge (bot/privacy/discharge.py) and the retention purge
(bot/privacy/retention.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import audit, db
from bot.core.config import Settings
from bot.core.crypto import keyring_for
from bot.core.models import (
    AftercareCheckIn,
    AftercareStatus,
    AssignmentRole,
    Attendance,
    AuditEvent,
    Base,
    CareAssignment,
    CareFlag,
    CareMessage,
    CareMessageReply,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    Consent,
    CopingSession,
    CopingStatus,
    Counselor,
    CounselorNote,
    DoseDay,
    DoseStatus,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    GroupMember,
    InboxStatus,
    InboxUpdate,
    Invite,
    InviteKind,
    Measure,
    MeasureSchedule,
    MeasureSource,
    MeasureStatus,
    MedicationKind,
    MedicationPlan,
    NaloxoneStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientGroup,
    PatientStatus,
    ProgramSession,
    RiskSignal,
    Rsvp,
    SafetyPlan,
    ScreenStatus,
    SuicideScreen,
)
from bot.enrollment import consent
from bot.enrollment.invites import hash_code
from bot.handlers import privacy as privacy_handlers
from bot.intake import parse
from bot.intake import store as inbox
from bot.outbox import store as outbox
from bot.privacy import erasure, retention
from bot.privacy import export as data_export
from bot.privacy.discharge import DischargeError, discharge, discharged_at, latest_discharge
from bot.privacy.erasure import erase_patient, tables_erased
from bot.privacy.records import PATIENTS, links
from bot.runtime import Runtime
from tests.records import add_patient
from tests.test_intake_store import _add, _message

Sessions = async_sessionmaker[AsyncSession]

NOW = datetime(2027, 3, 8, 15, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
WORDS = "Quillmore pills behind the Varnholt mill"  # only this patient's words


@dataclass
class Someone:
    n: int
    patient_id: int
    alias: str
    chat_id: int
    counselor_id: int
    escalation_id: int


_serial = iter(range(1, 10_000))


async def _someone(sessions: Sessions, *, at: datetime = NOW, **fields: Any) -> Someone:
    """A patient with a row in every table that can belong to a patient, all dated `at`."""
    n = next(_serial)
    alias = f"Zephyrine{n}x"
    chat_id = 987_654_000_000 + n
    patient = await add_patient(
        sessions,
        alias=alias,
        chat_id=chat_id,
        telegram_user_id=chat_id,
        timezone="America/Chicago",
        checkin_time=time(20, 0),
        created_at=at,
        **fields,
    )
    async with db.transaction(sessions) as session:
        counselor = Counselor(name=f"Dana {n}", timezone="America/Chicago", chat_id=555_000 + n)
        session.add(counselor)
        group = PatientGroup(name=f"Evening IOP {n}")
        session.add(group)
        await session.flush()
        own = ProgramSession(
            title="Family session",
            patient_id=patient.id,
            timezone="America/Chicago",
            starts_local=datetime(2027, 3, 9, 18, 0),
            duration_minutes=60,
            location="Room B",
        )
        escalation = Escalation(
            patient_id=patient.id,
            level="imminent",
            category="suicide",
            source="message",
            detail=WORDS,
            created_at=at,
            last_signal_at=at,
            status=EscalationStatus.RESOLVED,
            resolved_at=at,
            outcome="safe",
        )
        session.add_all([own, escalation])
        await session.flush()
        consent = Consent(patient_id=patient.id, scope="care_team_sharing", version="1", language="en")
        invite = Invite(
            code_hash=hash_code(f"code-{n}"),
            kind=InviteKind.PATIENT,
            counselor_id=counselor.id,
            patient_alias=alias,
            expires_at=at,
            used_at=at,
            patient_id=patient.id,
        )
        session.add_all(
            [
                CareAssignment(patient_id=patient.id, counselor_id=counselor.id, role=AssignmentRole.PRIMARY),
                consent,
                invite,
                # an unused second invite that still carries the alias
                Invite(
                    code_hash=hash_code(f"spare-{n}"),
                    kind=InviteKind.PATIENT,
                    counselor_id=counselor.id,
                    patient_alias=alias,
                    expires_at=at + timedelta(days=1),
                ),
                CheckIn(
                    patient_id=patient.id,
                    source=CheckInSource.SCHEDULED,
                    status=CheckInStatus.COMPLETE,
                    local_day=at.date(),
                    started_at=at,
                    expires_at=at + timedelta(hours=6),
                    craving=8,
                    mood=2,
                    sleep="poor",
                    triggers=["stress", "other"],
                    trigger_other=WORDS,
                    used=True,
                    use_what=WORDS,
                    note=f"<script>{WORDS}</script>",
                ),
                CopingSession(
                    patient_id=patient.id,
                    module_id="box_breathing",
                    status=CopingStatus.DONE,
                    steps_total=4,
                    step_index=3,
                    craving_before=8,
                    craving_after=4,
                    started_at=at,
                ),
                CareFlag(patient_id=patient.id, kind="missed_checkins", created_at=at, detail={"count": 3}),
                RiskSignal(
                    patient_id=patient.id, at=at, level="high", categories=["suicide"], source="message"
                ),
                SuicideScreen(
                    patient_id=patient.id,
                    escalation_id=escalation.id,
                    trigger="alert",
                    status=ScreenStatus.COMPLETE,
                    answers={"wish_dead": True, "thoughts": False},
                    result="moderate",
                    started_at=at,
                ),
                SafetyPlan(patient_id=patient.id, warning_signs=WORDS, reason_for_living="my daughter"),
                EscalationAlert(
                    escalation_id=escalation.id,
                    counselor_id=counselor.id,
                    chat_id=counselor.chat_id,
                    message_id=77,
                ),
                GroupMember(group_id=group.id, patient_id=patient.id),
                Attendance(
                    patient_id=patient.id,
                    session_id=own.id,
                    occurrence=at,
                    response=Rsvp.CANNOT,
                    reason=WORDS,
                    responded_at=at,
                ),
                CounselorNote(
                    patient_id=patient.id, counselor_id=counselor.id, text="doing better", created_at=at
                ),
                MedicationPlan(
                    patient_id=patient.id,
                    kind=MedicationKind.OTHER,
                    other_name=WORDS,
                    dose_time=time(9, 0),
                    set_by="patient",
                    active=True,
                    created_at=at,
                ),
                DoseDay(
                    patient_id=patient.id,
                    local_day=at.date(),
                    status=DoseStatus.MISSED,
                    asked_at=at,
                    answered_at=at,
                    closes_at=at + timedelta(hours=12),
                ),
                NaloxoneStatus(patient_id=patient.id, has_naloxone="no", answered_at=at),
                AftercareCheckIn(
                    patient_id=patient.id,
                    week=1,
                    due_at=at,
                    status=AftercareStatus.COMPLETE,
                    asked_at=at,
                    answered_at=at + timedelta(minutes=2),
                    finished_at=at + timedelta(minutes=2),
                    craving=2,
                    mood=4,
                    used=True,
                    use_report={"substances": ["alcohol"], "alone": False, "injected": False},
                    connected="not_yet",
                    skipped=["use_how"],
                ),
                Measure(
                    patient_id=patient.id,
                    instrument="phq9",
                    source=MeasureSource.COUNSELOR,
                    requested_by=counselor.id,
                    language="en",
                    status=MeasureStatus.COMPLETE,
                    answers={"1": 2, "9": 1},
                    scores={"total": 14},
                    safety_positive=True,
                    started_at=at,
                    expires_at=at + timedelta(days=3),
                    finished_at=at,
                ),
                MeasureSchedule(
                    patient_id=patient.id, instrument="bam", every_days=None, set_by=counselor.id
                ),
            ]
        )
        message = CareMessage(
            patient_id=patient.id,
            counselor_id=counselor.id,
            group_id=group.id,
            text="How are you?",
            created_at=at,
        )
        session.add(message)
        await session.flush()
        session.add(CareMessageReply(message_id=message.id, patient_id=patient.id, text=WORDS, created_at=at))
        await session.flush()
        await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    f"prompt:{n}", "checkin", chat_id, "Time for your check-in", at, patient_id=patient.id
                ),
                # a notice to the counselor about the patient (to the counselor, so no patient_id)
                outbox.Planned(
                    f"flag:{n}",
                    "notice",
                    counselor.chat_id or 0,
                    f"{alias} missed 3 check-ins",
                    at,
                    counselor_id=counselor.id,
                    subject_patient_id=patient.id,
                ),
                # a goodbye queued without patient_id
                outbox.Planned(f"bye:{n}", "discharge", chat_id, "Goodbye", at),
            ],
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like(f"%:{n}"))
            .values(created_at=at, status=OutboxStatus.SENT, sent_at=at)
        )
        events: list[tuple[str, dict[str, Any]]] = [
            ("patient.enrolled", {"actor_type": "patient", "actor_id": patient.id, "subject_type": "invite"}),
            (
                "consent.accepted",
                {"actor_type": "patient", "actor_id": patient.id, "subject_type": "consent"},
            ),
            ("escalation.opened", {"actor_type": "system", "subject_type": "patient", "level": "imminent"}),
            ("escalation.details_viewed", {"actor_type": "counselor", "subject_type": "escalation"}),
            ("caseload.viewed", {"actor_type": "counselor", "patients": [patient.id], "shown": 1}),
        ]
        events[0][1]["subject_id"] = invite.id
        events[1][1]["subject_id"] = consent.id
        events[2][1].update(subject_id=patient.id, escalation_id=escalation.id)
        events[3][1].update(actor_id=counselor.id, subject_id=escalation.id)
        events[4][1]["actor_id"] = counselor.id
        for action, fields in events:
            audit.record(session, action, **fields).at = at
    return Someone(n, patient.id, alias, chat_id, counselor.id, escalation.id)


async def _count(sessions: Sessions, model: Any, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _everything(sessions: Sessions) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, decrypted (read through the models' column types)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(select(table))
            found[table.name] = [dict(row._mapping) for row in rows]
    return found


async def _export(sessions: Sessions, patient_id: int) -> dict[str, Any]:
    async with sessions() as session:
        return await data_export.gather(session, await session.get_one(Patient, patient_id), NOW)


async def _raw(sessions: Sessions) -> str:
    """Every value as the database holds it (encrypted columns as ciphertext)."""
    parts: list[str] = []
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(text(f"SELECT * FROM {table.name}")):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


# ---- finding a patient's records ---------------------------------------------------------------------------


def test_every_table_that_points_at_patients_is_found() -> None:
    direct = {
        table.name
        for table in Base.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table is PATIENTS
    }
    found = {link.table.name for link in links() if link.via is None}
    assert found == direct
    # and through them: the copies of an alert, the RSVPs to a patient's own session
    assert {"escalation_alerts", "attendance"} <= {
        link.table.name for link in links() if link.via is not None
    }


async def test_the_fixture_fills_every_table_a_patient_has_rows_in(sessions: Sessions) -> None:
    """If this fails, a table was added that points at patients: add a row for it in `_someone`, so the
    export and deletion tests below cover it."""
    await _someone(sessions)
    everything = await _everything(sessions)
    empty = [table.name for table in tables_erased() if not everything[table.name]]
    assert empty == []


# ---- the export --------------------------------------------------------------------------------------------


async def test_export_holds_everything_about_the_patient_and_nothing_of_others(sessions: Sessions) -> None:
    me = await _someone(sessions)
    other = await _someone(sessions)
    async with sessions() as session:
        patient = await session.get_one(Patient, me.patient_id)
        data = await data_export.gather(session, patient, NOW)
    parsed = json.loads(data_export.to_json(data))
    assert parsed["format"] == data_export.FORMAT
    profile = parsed["profile"]
    assert (profile["alias"], profile["timezone"], profile["language"], profile["checkin_time"]) == (
        me.alias,
        "America/Chicago",
        "en",
        "20:00",
    )
    assert profile["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert parsed["care_team"] == [
        {"name": f"Dana {me.n}", "role": "primary", "since": parsed["care_team"][0]["since"]}
    ]
    assert len(parsed["consents"]) == 1
    [checkin] = parsed["checkins"]
    assert (checkin["craving"], checkin["mood"], checkin["sleep"], checkin["used"]) == (8, 2, "poor", True)
    assert checkin["triggers"] == ["stress", "other"] and checkin["trigger_other"] == WORDS
    assert checkin["use_what"] == WORDS and WORDS in checkin["note"]
    [run] = parsed["coping_sessions"]
    assert (run["module"], run["craving_before"], run["craving_after"]) == ("box_breathing", 8, 4)
    assert parsed["safety_plan"]["steps"]["warning_signs"] == WORDS
    assert parsed["safety_plan"]["steps"]["reason_for_living"] == "my daughter"
    assert parsed["screens"][0]["answers"] == {"wish_dead": True, "thoughts": False}
    assert parsed["sessions"]["groups"] == [f"Evening IOP {me.n}"]
    assert parsed["sessions"]["individual"][0]["title"] == "Family session"
    [rsvp] = parsed["attendance"]
    assert (rsvp["session"], rsvp["answer"], rsvp["reason"]) == ("Family session", "cannot", WORDS)
    [escalation] = parsed["escalations"]
    assert (escalation["level"], escalation["category"], escalation["status"]) == (
        "imminent",
        "suicide",
        "resolved",
    )
    assert escalation["your_words"] == WORDS  # the patient's own words, for the patient
    assert escalation["created_at"] == NOW.isoformat()
    assert parsed["risk_signals"] == [
        {"at": NOW.isoformat(), "level": "high", "categories": ["suicide"], "source": "message"}
    ]
    assert [f["kind"] for f in parsed["care_flags"]] == ["missed_checkins"]
    assert [m["kind"] for m in parsed["messages"]] == ["checkin"]
    actions = [a["action"] for a in parsed["activity"]]
    assert actions == [
        "patient.enrolled",
        "consent.accepted",
        "escalation.opened",
        "escalation.details_viewed",
        "caseload.viewed",
    ]
    # Aftercare check-ins, as the daily ones: every answer, nothing left to "other records".
    assert parsed["aftercare_checkins"] == [
        {
            "week": 1,
            "status": "complete",
            "due_at": NOW.isoformat(),
            "asked_at": NOW.isoformat(),
            "answered_at": (NOW + timedelta(minutes=2)).isoformat(),
            "finished_at": (NOW + timedelta(minutes=2)).isoformat(),
            "craving": 2,
            "mood": 4,
            "used": True,
            "use_report": {"substances": ["alcohol"], "alone": False, "injected": False},
            "connected": "not_yet",
            "skipped": ["use_how"],
        }
    ]
    assert "aftercare_checkins" not in parsed["other_records"]
    # The care team's notes are the patient's to read (right of access), with who wrote them.
    [note] = parsed["care_team_notes"]
    assert note["text"] == "doing better" and "counselor_notes" not in parsed["other_records"]
    # Nothing of the other patient.
    assert other.alias not in json.dumps(parsed) and str(other.chat_id) not in json.dumps(parsed)


async def test_the_page_to_read_is_translated_escaped_and_in_local_time(sessions: Sessions) -> None:
    me = await _someone(sessions)
    async with sessions() as session:
        patient = await session.get_one(Patient, me.patient_id)
        data = await data_export.gather(session, patient, NOW)
    labels = {label: f"«{label}»" for label in data_export.LABELS}
    values = {code: f"‹{code}›" for code in data_export.value_codes()}
    names = {
        "categories": {"suicide": "riesgo de suicidio"},
        "modules": {"box_breathing": "Respiración"},
        "connected": {"not_yet": "Todavía no"},
        "substances": {"alcohol": "Alcohol (es)"},
    }
    page = data_export.render_html(data, data_export.Wording(labels, values, names, language="es")).decode()
    assert page.startswith("<!DOCTYPE html>") and '<html lang="es">' in page
    for label in ("«title»", "«checkins»", "«your_words»", "«safety_plan»", "«activity»", "«aftercare»"):
        assert label in page
    assert "riesgo de suicidio" in page and "Respiración" in page and "‹resolved›" in page
    assert "«connected»" in page and "Todavía no" in page and "not_yet" not in page  # aftercare, translated
    # ... with what was used (as the daily check-in's table) and the questions skipped, in words.
    assert "Alcohol (es)" in page and "«skipped»" in page and "«use_how»" in page
    assert "use_how" not in page.replace("«use_how»", "")  # the skipped question's code never shows
    assert "&lt;script&gt;" in page and "<script>" not in page  # what a patient typed is never markup
    assert "2027-03-08 09:00" in page  # 15:00 UTC in Chicago
    assert WORDS in page


# ---- erasure -----------------------------------------------------------------------------------------------


async def test_deletion_leaves_no_row_that_names_the_patient(sessions: Sessions) -> None:
    me = await _someone(sessions)
    other = await _someone(sessions)
    others_before = await _export(sessions, other.patient_id)
    async with db.transaction(sessions) as session:
        erased = await erase_patient(session, me.patient_id, reason="request")
    assert erased.rows["patients"] == 1 and erased.rows["checkins"] == 1 and erased.rows["invites"] == 2
    assert erased.rows["outbox"] == 3  # their prompt, the goodbye to their chat, the notice naming them
    assert erased.alert_messages == [(555_000 + me.n, 77)]

    after = await _everything(sessions)
    # 1. No row points at the patient through any foreign key to patients.
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is PATIENTS:
                assert all(row[key.parent.name] != me.patient_id for row in after[table.name]), table.name
    # 2. Neither the alias nor the chat id is anywhere, decrypted or raw.
    for table, rows in after.items():
        for row in rows:
            flat = " ".join(map(str, row.values()))
            assert me.alias not in flat, (table, row)
            assert str(me.chat_id) not in flat, (table, row)
    raw = await _raw(sessions)
    assert me.alias not in raw and str(me.chat_id) not in raw
    # 3. The audit log keeps what happened and which counselor did it, but nothing that leads back.
    events = after["audit_events"]
    for event in events:
        if event["actor_type"] == "patient":
            assert event["actor_id"] != me.patient_id
        assert (event["subject_type"], event["subject_id"]) != ("patient", me.patient_id)
        assert (event["subject_type"], event["subject_id"]) != ("escalation", me.escalation_id)
        assert (event["detail"] or {}).get("patient_id") != me.patient_id
    viewed = [e for e in events if e["action"] == "escalation.details_viewed" and e["subject_id"] is None]
    assert [e["actor_id"] for e in viewed] == [me.counselor_id]
    [deleted] = [e for e in events if e["action"] == "patient.deleted"]
    assert deleted["actor_id"] is None and deleted["subject_id"] is None and deleted["subject_type"] is None
    assert deleted["detail"] == {"reason": "request", "rows": erased.total}
    # 4. The other patient lost nothing.
    assert await _export(sessions, other.patient_id) == others_before
    assert await _count(sessions, Patient, Patient.id == other.patient_id) == 1
    assert await _count(sessions, Counselor) == 2  # counselors are not the patient's
    assert await _count(sessions, PatientGroup) == 2  # nor are groups


async def test_erasing_twice_or_a_stranger_is_refused(sessions: Sessions) -> None:
    me = await _someone(sessions)
    async with db.transaction(sessions) as session:
        await erase_patient(session, me.patient_id, reason="request")
    with pytest.raises(LookupError):
        async with db.transaction(sessions) as session:
            await erase_patient(session, me.patient_id, reason="request")


async def test_erasure_keeps_each_safety_event_de_identified(sessions: Sessions) -> None:
    me = await _someone(sessions)
    async with sessions() as session:
        escalation = await session.get_one(Escalation, me.escalation_id)
    async with db.transaction(sessions) as session:
        await erase_patient(session, me.patient_id, reason="request")
    async with sessions() as session:
        [kept] = await session.scalars(select(AuditEvent).where(AuditEvent.action == "safety_event.kept"))
    assert (kept.actor_type, kept.actor_id, kept.subject_type, kept.subject_id) == (
        "system",
        None,
        None,
        None,
    )
    assert kept.detail is not None
    assert kept.detail["level"] == escalation.level and kept.detail["category"] == escalation.category
    assert kept.detail["outcome"] == escalation.outcome and kept.detail["source"] == escalation.source
    assert kept.detail["opened"] == escalation.created_at.date().isoformat()
    assert not any(key.endswith("_id") for key in kept.detail)
    assert me.alias not in str(kept.detail) and WORDS not in str(kept.detail)


# ---- no erasure while an alert is open ---------------------------------------------------------------------


async def test_an_open_alert_or_a_queued_page_blocks_the_erasure(sessions: Sessions) -> None:
    me = await _someone(sessions)  # its escalation is resolved, its pages sent
    async with sessions() as session:
        assert await erasure.blocked(session, me.patient_id) is False
    async with db.transaction(sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    key=f"page:{me.escalation_id}:9:{me.counselor_id}",
                    kind="page",
                    chat_id=1,
                    text="alert",
                    due_at=NOW,
                    ref={"escalation_id": me.escalation_id, "stage": 9},
                    subject_patient_id=me.patient_id,  # as the pager writes it (bot.risk.paging)
                )
            ],
        )
    async with sessions() as session:
        assert await erasure.blocked(session, me.patient_id) is True  # a page about them still queued
    async with db.transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.kind == "page").values(status=OutboxStatus.CANCELLED)
        )
        await session.execute(
            update(Escalation).where(Escalation.id == me.escalation_id).values(status=EscalationStatus.OPEN)
        )
    async with sessions() as session:
        assert await erasure.blocked(session, me.patient_id) is True  # the alert itself is open


async def test_a_deferred_deletion_waits_until_kept_or_done(sessions: Sessions) -> None:
    me, other = await _someone(sessions), await _someone(sessions)
    async with db.transaction(sessions) as session:
        assert await erasure.deferred_patients(session) == []
        assert await erasure.defer(session, me.patient_id) is True
        assert await erasure.defer(session, me.patient_id) is False  # already waiting: tell the team once
        assert await erasure.defer(session, other.patient_id) is True
    async with db.transaction(sessions) as session:
        assert sorted(await erasure.deferred_patients(session)) == sorted([me.patient_id, other.patient_id])
        # "Keep my data" on a later request takes it back.
        audit.record(
            session,
            erasure.KEPT,
            actor_type="patient",
            actor_id=other.patient_id,
            subject_type="patient",
            subject_id=other.patient_id,
        )
    async with db.transaction(sessions) as session:
        assert await erasure.deferred_patients(session) == [me.patient_id]
        await erase_patient(session, me.patient_id, reason="request", actor="system")
    async with sessions() as session:
        assert await erasure.deferred_patients(session) == []  # the erased patient's events name nobody


class _Buttons:
    """The bot as `erase_deferred` uses it: taking the buttons off the care team's alert copies."""

    def __init__(self) -> None:
        self.taken_off: list[tuple[int, int]] = []

    async def edit_message_reply_markup(self, chat_id: int, message_id: int, **_: object) -> None:
        self.taken_off.append((chat_id, message_id))


async def _crisis_waiting(session: AsyncSession, me: Someone) -> int:
    """A crisis message of their chat, stored in the inbox and not handled yet: its update id."""
    crisis = {
        "update_id": 7_000 + me.n,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": me.chat_id, "type": "private"},
            "from": {"id": me.chat_id, "is_bot": False, "first_name": "T"},
            "text": "im going to kill myself tonight",
        },
    }
    keys = keyring_for(session.get_bind().dialect)
    [update_id] = await inbox.add(session, [parse.incoming(crisis, keys)], NOW)
    return update_id


async def test_purge_waits_for_a_message_of_the_chat_still_in_the_inbox(sessions: Sessions) -> None:
    """A patient who withdrew long ago writes a crisis message; purge runs before it is handled: the patient
    waits for a later purge, and the message is handled (never erased unanswered)."""
    me = await _someone(sessions, at=OLD)
    async with db.transaction(sessions) as session:
        assert await consent.revoke(session, await session.get_one(Patient, me.patient_id), now=OLD)
        update_id = await _crisis_waiting(session, me)
    async with db.transaction(sessions) as session:
        counts = await retention.purge(session, older_than=timedelta(days=90), now=NOW)
    assert counts["patients"] == 0
    async with sessions() as session:
        waiting = await session.get_one(InboxUpdate, update_id)
        assert waiting.status is InboxStatus.PENDING and waiting.payload is not None
        assert await session.get(Patient, me.patient_id) is not None


async def test_a_deferred_deletion_waits_for_a_message_still_in_the_inbox(
    sessions: Sessions, settings: Settings
) -> None:
    """The scheduler's job does not erase a patient while a message of their chat waits in the inbox (a crisis
    message not yet handled: the erasure would delete it, and its alert would never be raised). Once it is
    handled, the job erases."""
    me = await _someone(sessions)  # their alert resolved, no page queued: only the inbox holds it back
    async with db.transaction(sessions) as session:
        await erasure.defer(session, me.patient_id)
        update_id = await _crisis_waiting(session, me)
    runtime, bot = Runtime.create(settings), _Buttons()
    try:
        await privacy_handlers.erase_deferred(runtime, bot)  # type: ignore[arg-type]
        async with sessions() as session:
            assert await session.get(Patient, me.patient_id) is not None
            waiting = await session.get_one(InboxUpdate, update_id)
            assert waiting.status is InboxStatus.PENDING and waiting.payload is not None
        assert bot.taken_off == []
        async with db.transaction(sessions) as session:
            await inbox.mark_done(session, [update_id], NOW)  # handled: its alert, if any, is in the database
        await privacy_handlers.erase_deferred(runtime, bot)  # type: ignore[arg-type]
        async with sessions() as session:
            assert await session.get(Patient, me.patient_id) is None
        assert bot.taken_off == [(555_000 + me.n, 77)]
    finally:
        await runtime.engine.dispose()


# ---- discharge ---------------------------------------------------------------------------------------------


async def test_discharge_stops_everything_and_queues_one_goodbye(sessions: Sessions) -> None:
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    "reminder", "reminder", patient.chat_id, "See you", NOW, patient_id=patient.id
                ),
                outbox.Planned("prompt", "checkin", patient.chat_id, "Check in", NOW, patient_id=patient.id),
            ],
        )
        session.add(
            CheckIn(
                patient_id=patient.id,
                source=CheckInSource.ON_DEMAND,
                local_day=NOW.date(),
                step="mood",
                craving=4,
                answered_at=NOW,
                expires_at=NOW + timedelta(hours=6),
            )
        )
        session.add(CopingSession(patient_id=patient.id, module_id="box_breathing", steps_total=4))
    async with db.transaction(sessions) as session:
        loaded = await session.get_one(Patient, patient.id)
        assert await latest_discharge(session, patient.id) is None  # never discharged
        done = await discharge(session, loaded, "Goodbye and take care: 988, 1-800-662-4357", NOW)
        discharged = await discharged_at(session, loaded)
        latest = await latest_discharge(session, patient.id)
    assert (done.cancelled, done.goodbye_queued) == (2, True)
    async with sessions() as session:
        loaded = await session.get_one(Patient, patient.id)
        assert loaded.status is PatientStatus.DISCHARGED
        rows = {row.key: row for row in await session.scalars(select(OutboxMessage))}
        checkin = await session.scalar(select(CheckIn).where(CheckIn.patient_id == patient.id))
        run = await session.scalar(select(CopingSession).where(CopingSession.patient_id == patient.id))
    assert (
        rows["reminder"].status is OutboxStatus.CANCELLED and rows["prompt"].status is OutboxStatus.CANCELLED
    )
    [goodbye] = [row for row in rows.values() if row.kind == "discharge"]
    assert goodbye.status is OutboxStatus.PENDING and goodbye.patient_id is None
    assert goodbye.payload["text"].startswith("Goodbye") and goodbye.chat_id == patient.chat_id
    assert checkin is not None and (checkin.status, checkin.step) == (CheckInStatus.PARTIAL, None)
    assert run is not None and run.status is CopingStatus.ABANDONED
    # The dispatcher's sweep of messages for patients no longer active leaves the goodbye; it is claimed.
    async with db.transaction(sessions) as session:
        assert await outbox.cancel_unwanted(session, NOW + timedelta(seconds=1)) == 0
        claimed = await outbox.claim(
            session, "w", NOW + timedelta(seconds=1), limit=10, lease=timedelta(seconds=60)
        )
    assert [row.kind for row in claimed] == ["discharge"]
    # Nothing new is planned for them: they are not among those the bot may message.
    async with sessions() as session:
        assert patient.id not in set(await session.scalars(select(Patient.id).where(outbox.may_message())))
        [event] = await session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.discharged"))
    assert (event.actor_type, event.subject_type, event.subject_id) == ("cli", "patient", patient.id)
    assert event.at == discharged and latest is not None and latest.id == event.id
    assert event.detail == {"previous": "active", "cancelled": 2, "goodbye": True, "aftercare_offered": False}
    with pytest.raises(DischargeError, match="already discharged"):
        async with db.transaction(sessions) as session:
            await discharge(session, await session.get_one(Patient, patient.id), "again", NOW)


async def test_no_goodbye_to_a_patient_who_blocked_the_bot(sessions: Sessions) -> None:
    patient = await add_patient(sessions, unreachable_since=NOW - timedelta(days=2))
    async with db.transaction(sessions) as session:
        done = await discharge(session, await session.get_one(Patient, patient.id), "Goodbye", NOW)
    assert not done.goodbye_queued
    assert await _count(sessions, OutboxMessage) == 0


# ---- the retention purge -----------------------------------------------------------------------------------


def _open_alert(patient_id: int) -> Escalation:
    """A high alert, open since OLD."""
    return Escalation(
        patient_id=patient_id,
        level="high",
        category="relapse",
        source="checkin",
        created_at=OLD,
        last_signal_at=OLD,
    )


async def test_purge_deletes_what_is_old_and_keeps_what_is_open_recent_or_audit(sessions: Sessions) -> None:
    old = await _someone(sessions, at=OLD)
    recent = await _someone(sessions, at=NOW - timedelta(days=2))
    async with db.transaction(sessions) as session:
        # Still open though old: kept.
        session.add_all(
            [
                _open_alert(old.patient_id),
                CheckIn(
                    patient_id=old.patient_id,
                    source=CheckInSource.ON_DEMAND,
                    local_day=date(2026, 2, 1),
                    started_at=OLD,
                    expires_at=OLD,
                ),
            ]
        )
        await outbox.enqueue(
            session, [outbox.Planned("waiting", "checkin", old.chat_id, "x", OLD, patient_id=old.patient_id)]
        )
    audit_before = await _count(sessions, AuditEvent)
    async with db.transaction(sessions) as session:
        counts = await retention.purge(session, older_than=timedelta(days=30), now=NOW)
    assert list(counts)[: len(retention.TABLES)] == list(retention.TABLES)
    assert counts["checkins"] == 1 and counts["coping_sessions"] == 1 and counts["suicide_screens"] == 1
    assert counts["risk_signals"] == 1 and counts["escalations"] == 1 and counts["escalation_alerts"] == 1
    assert counts["attendance"] == 1 and counts["care_flags"] == 1 and counts["patients"] == 0
    assert counts["measures"] == 1
    assert counts["outbox"] == 3  # the old prompt, notice and goodbye; not the one still waiting
    old_id, recent_id = old.patient_id, recent.patient_id
    assert await _count(sessions, CheckIn, CheckIn.patient_id == old_id) == 1  # the open one
    assert await _count(sessions, Escalation, Escalation.patient_id == old_id) == 1  # the open one
    assert await _count(sessions, OutboxMessage, OutboxMessage.key == "waiting") == 1
    for model in (
        CheckIn,
        CopingSession,
        RiskSignal,
        CareFlag,
        Attendance,
        Escalation,
        SuicideScreen,
        Measure,
    ):
        assert await _count(sessions, model, model.patient_id == recent_id) == 1, model
    # Profiles, consents and safety plans of current patients are not history: kept.
    assert await _count(sessions, Patient) == 2 and await _count(sessions, SafetyPlan) == 2
    assert await _count(sessions, Consent) == 2
    # The audit log is kept whole, plus one event for the purge.
    assert await _count(sessions, AuditEvent) == audit_before + 1
    async with sessions() as session:
        [event] = await session.scalars(select(AuditEvent).where(AuditEvent.action == "data.purged"))
    assert event.actor_type == "cli" and event.detail is not None and event.detail["days"] == 30
    assert event.detail["rows"] == sum(counts.values()) and event.detail["checkins"] == 1


async def test_purge_erases_patients_discharged_before_the_cutoff(sessions: Sessions) -> None:
    long_gone = await _someone(sessions, at=OLD)
    just_left = await _someone(sessions, at=OLD)
    never_recorded = await _someone(sessions, at=OLD, status=PatientStatus.DISCHARGED)
    for who in (long_gone, just_left):
        async with db.transaction(sessions) as session:
            await discharge(session, await session.get_one(Patient, who.patient_id), "Goodbye", NOW)
    async with db.transaction(sessions) as session:
        # one discharge was long ago, one yesterday; the third patient was marked discharged otherwise
        for who, at in ((long_gone, OLD), (just_left, NOW - timedelta(days=1))):
            await session.execute(
                update(AuditEvent)
                .where(AuditEvent.action == "patient.discharged", AuditEvent.subject_id == who.patient_id)
                .values(at=at)
            )
        await session.execute(
            update(Patient).where(Patient.id == never_recorded.patient_id).values(updated_at=OLD)
        )
    async with db.transaction(sessions) as session:
        counts = await retention.purge(session, older_than=timedelta(days=90), now=NOW)
    assert counts["patients"] == 2
    async with sessions() as session:
        left = set(await session.scalars(select(Patient.alias)))
    assert left == {just_left.alias}
    raw = await _raw(sessions)
    assert long_gone.alias not in raw and never_recorded.alias not in raw and just_left.alias in raw
    assert await _count(sessions, AuditEvent, AuditEvent.action == "patient.deleted") == 2


async def test_purge_erases_patients_who_withdrew_before_the_cutoff_unless_an_alert_is_open(
    sessions: Sessions,
) -> None:
    """Counted from the withdrawal (not from enrollment); a patient with an alert still open waits, whether
    withdrawn or discharged (as `/deleteme` waits), and goes at a later purge once it is resolved."""
    long_ago, yesterday, in_crisis, discharged_in_crisis = [
        await _someone(sessions, at=OLD) for _ in range(4)
    ]
    for who, at in ((long_ago, OLD), (yesterday, NOW - timedelta(days=1)), (in_crisis, OLD)):
        async with db.transaction(sessions) as session:
            assert await consent.revoke(session, await session.get_one(Patient, who.patient_id), now=at)
    async with db.transaction(sessions) as session:
        await discharge(session, await session.get_one(Patient, discharged_in_crisis.patient_id), "Bye", OLD)
        await session.execute(
            update(AuditEvent).where(AuditEvent.action == "patient.discharged").values(at=OLD)
        )
        for who in (in_crisis, discharged_in_crisis):
            session.add(_open_alert(who.patient_id))
    async with db.transaction(sessions) as session:
        counts = await retention.purge(session, older_than=timedelta(days=90), now=NOW)
    assert counts["patients"] == 1
    async with sessions() as session:
        left = set(await session.scalars(select(Patient.alias)))
    assert left == {yesterday.alias, in_crisis.alias, discharged_in_crisis.alias}
    assert long_ago.alias not in await _raw(sessions)

    async with db.transaction(sessions) as session:
        await session.execute(
            update(Escalation)
            .where(Escalation.status != EscalationStatus.RESOLVED)
            .values(status=EscalationStatus.RESOLVED, resolved_at=NOW)
        )
    async with db.transaction(sessions) as session:
        counts = await retention.purge(session, older_than=timedelta(days=90), now=NOW)
    assert counts["patients"] == 2
    async with sessions() as session:
        assert set(await session.scalars(select(Patient.alias))) == {yesterday.alias}


async def test_purge_deletes_parked_updates_and_never_a_pending_one(sessions: Sessions) -> None:
    """An update parked (failed every try) keeps the patient's words in its payload: gone once parked for
    longer than the retention period. A pending one stays however old (a crisis message is never lost), and
    so does one parked recently (an operator may still look at it)."""
    await _add(sessions, *(_message(n, 10 + n, "I want to end it tonight") for n in (1, 2, 3)))
    async with db.transaction(sessions) as session:
        await inbox.mark_failed(session, 1, "ValueError", OLD, max_attempts=1)
        await inbox.mark_failed(session, 2, "ValueError", NOW - timedelta(days=1), max_attempts=1)
    # Update 3 stays pending: received at the inbox tests' NOW, months before the cutoff.

    async def purged(now: datetime) -> tuple[int, dict[int, InboxStatus]]:
        async with db.transaction(sessions) as session:
            counts = await retention.purge(session, older_than=timedelta(days=30), now=now)
        async with sessions() as session:
            rows = await session.scalars(select(InboxUpdate))
            return counts["inbox"], {row.update_id: row.status for row in rows}

    assert await purged(NOW) == (1, {2: InboxStatus.PARKED, 3: InboxStatus.PENDING})
    assert await purged(NOW + timedelta(days=3650)) == (1, {3: InboxStatus.PENDING})


async def test_purge_refuses_less_than_a_day(sessions: Sessions) -> None:
    with pytest.raises(ValueError, match="at least 1 day"):
        async with db.transaction(sessions) as session:
            await retention.purge(session, older_than=timedelta(hours=23), now=NOW)
