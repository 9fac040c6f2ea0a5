from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import db, key_rotation, people
from bot.core.crypto import Keyring
from bot.core.models import (
    AftercareCheckIn,
    AuditEvent,
    AuditPatient,
    Base,
    CareFlag,
    CheckIn,
    Counselor,
    Escalation,
    EscalationAlert,
    InboxUpdate,
    Measure,
    MedicationKind,
    MedicationPlan,
    NaloxoneStatus,
    OutboxMessage,
    Patient,
    RiskSignal,
    SuicideScreen,
)
from tests.harness import TEST_ENCRYPTION_KEY
from tests.rawdb import CLINICAL_WORDS, raw_values, search


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    assert differences == []


async def test_downgrade_to_empty_and_back(engine: AsyncEngine) -> None:
    await db.downgrade(engine, "base")
    assert await db.current_revision(engine) is None
    await db.upgrade(engine)
    await db.ensure_current(engine)


async def test_an_unmigrated_database_is_refused_with_advice(tmp_path: Path) -> None:
    empty = db.make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite3")
    try:
        with pytest.raises(db.SchemaNotCurrent, match="run `python -m bot db upgrade` first"):
            await db.ensure_current(empty)
    finally:
        await empty.dispose()


# ---- 0016: pseudonymous identity and encrypted clinical codes (issue 20) -----------------------------------

BEFORE = "0015_medcare"
OLD = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
PATIENT_USER, OTHER_USER, COUNSELOR_USER = 7_301_001, 7_301_002, 7_302_001
OLD_NOTICE_KEY = f"flag:use_reported:1:1764601200000:{COUNSELOR_USER}"


def _old_rows(keys: Keyring) -> dict[str, list[dict[str, Any]]]:
    """A database at 0015 as the bot wrote it: ids and codes in clear, free text as tokens."""
    update = {"update_id": 7, "message": {"chat": {"id": PATIENT_USER, "type": "private"}, "text": "hi"}}
    times = {"created_at": OLD}
    person = {"timezone": "UTC", "language": "en", "quiet_start": time(22), "quiet_end": time(7)}
    return {
        "counselors": [
            {"id": 1, "name": "Sam", "role": "counselor", "telegram_user_id": COUNSELOR_USER}
            | {"chat_id": COUNSELOR_USER, "timezone": "UTC", "language": "en", "active": True, **times}
        ],
        "patients": [
            {"id": 1, "telegram_user_id": PATIENT_USER, "chat_id": PATIENT_USER, "alias": "River"}
            | {"status": "active", **person, **times, "updated_at": OLD},
            {"id": 2, "telegram_user_id": OTHER_USER, "chat_id": OTHER_USER, "alias": "Lake"}
            | {"status": "active", **person, **times, "updated_at": OLD},
        ],
        "checkins": [
            {"id": 1, "patient_id": 1, "source": "scheduled", "status": "paused", "local_day": OLD.date()}
            | {"started_at": OLD, "expires_at": OLD, "craving": 6, "used": True, "step": "use_what"}
            | {"use_report": {"substances": ["opioid"]}, "skipped": ["mood"], "note": keys.encrypt("rough")},
            {"id": 2, "patient_id": 2, "source": "scheduled", "status": "missed", "local_day": OLD.date()}
            | {"started_at": OLD, "expires_at": OLD, "used": False},
        ],
        "escalations": [
            {"id": 1, "patient_id": 1, "level": "imminent", "category": "suicide", "source": "message"}
            | {"detail": keys.encrypt("my words"), "status": "resolved", "stage": 0, **times}
            | {"outcome": "safe", "verdict": "real_concern"}
            | {"last_signal_at": OLD}
        ],
        "escalation_alerts": [
            {"id": 1, "escalation_id": 1, "counselor_id": 1, "chat_id": COUNSELOR_USER, "message_id": 5}
            | {"stage": 0, "sent_at": OLD}
        ],
        "risk_signals": [
            {"id": 1, "patient_id": 1, "at": OLD, "level": "high", "categories": ["suicide"]}
            | {"source": "message"}
        ],
        "suicide_screens": [
            {"id": 1, "patient_id": 1, "escalation_id": 1, "trigger": "alerted", "status": "complete"}
            | {"answers": {"wish_dead": True, "thoughts": False}, "result": "high", "started_at": OLD}
        ],
        "care_flags": [{"id": 1, "patient_id": 1, "kind": "use_reported", "detail": {"count": 1}, **times}],
        "measures": [
            {"id": 1, "patient_id": 1, "instrument": "phq9", "source": "scheduled", "language": "en"}
            | {"status": "open", "step": "q9", "answers": {"q1": 2, "q9": 1}, "scores": None}
            | {"safety_positive": True, "started_at": OLD, "expires_at": OLD}
        ],
        "medication_plans": [
            {"id": 1, "patient_id": 1, "kind": "methadone", "show_name": False, "active": True}
            | {"set_by": "patient", **times, "updated_at": OLD}
        ],
        "naloxone_status": [{"id": 1, "patient_id": 1, "has_naloxone": "no"}],
        "aftercare_checkins": [
            {"id": 1, "patient_id": 2, "week": 1, "due_at": OLD, "status": "open", "step": "use"}
            | {"used": True, "connected": "help", "skipped": ["mood"]}
        ],
        "audit_events": [
            {"id": 1, "at": OLD, "actor_type": "counselor", "actor_id": 1, "action": "caseload.viewed"}
            | {"detail": {"page": 1, "patients": "1,2,99"}},
            {"id": 2, "at": OLD, "actor_type": "system", "action": "escalation.opened"}
            | {"subject_type": "patient", "subject_id": 1}
            | {"detail": {"escalation_id": 1, "level": "imminent", "category": "suicide"}},
            {"id": 3, "at": OLD, "actor_type": "cli", "action": "keys.rotated", "detail": None},
        ],
        "outbox": [
            {"id": 1, "key": OLD_NOTICE_KEY, "kind": "notice", "priority": 5, "chat_id": COUNSELOR_USER}
            | {"subject_patient_id": 1, "payload": keys.encrypt('{"text":"River used","buttons":null}')}
            | {"due_at": OLD, "status": "pending", "attempts": 0, "next_attempt_at": OLD, **times},
        ],
        "inbox": [
            {"update_id": 7, "chat_id": PATIENT_USER, "payload": keys.encrypt(json.dumps(update))}
            | {"status": "pending", "attempts": 0, "next_attempt_at": OLD, "received_at": OLD},
            {"update_id": 8, "chat_id": PATIENT_USER, "status": "done", "attempts": 0}
            | {"next_attempt_at": OLD, "received_at": OLD, "handled_at": OLD},
        ],
    }


async def _write_before(engine: AsyncEngine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Insert through the tables as the database describes them at 0015 (no model of today's is used)."""

    def insert(sync: Connection) -> None:
        tables = MetaData()
        tables.reflect(sync)
        for name, values in rows.items():
            for row in values:  # one by one: the rows of a table do not all set the same columns
                sync.execute(tables.tables[name].insert(), row)

    async with engine.begin() as connection:
        await connection.run_sync(insert)


async def test_0016_converts_a_database_with_data_and_it_reads_right(
    engine: AsyncEngine, database_url: str
) -> None:
    keys = Keyring.parse(TEST_ENCRYPTION_KEY)
    await db.downgrade(engine, BEFORE)
    try:
        await _write_before(engine, _old_rows(keys))
        keyless = db.make_engine(database_url)
        try:  # the values cannot be converted without the key: refused, and nothing changed
            with pytest.raises(RuntimeError, match="ENCRYPTION_KEY"):
                await db.upgrade(keyless)
        finally:
            await keyless.dispose()
        assert await db.current_revision(engine) == BEFORE

        await db.upgrade(engine)
        await db.ensure_current(engine)
        await key_rotation.check_keys(engine)
        await _reads_right(db.make_sessionmaker(engine), keys)
        stored = await raw_values(engine)
        found = search(stored, numbers=(PATIENT_USER, OTHER_USER, COUNSELOR_USER), words=CLINICAL_WORDS)
        assert found == [], found
        codes = ("use_reported", "opioid", "wish_dead", "high", "methadone", "real_concern")
        found = search(stored, words=codes)
        assert found == [], found

        # ...and back: the old columns hold what they held.
        await db.downgrade(engine, BEFORE)
        async with engine.connect() as connection:
            old = (await connection.execute(text("SELECT telegram_user_id, chat_id FROM patients"))).all()
            assert sorted(old) == [(PATIENT_USER, PATIENT_USER), (OTHER_USER, OTHER_USER)]
            level = await connection.scalar(text("SELECT level FROM escalations"))
            assert level == "imminent"
            chats = (await connection.execute(text("SELECT chat_id FROM inbox ORDER BY update_id"))).all()
            assert [chat for (chat,) in chats] == [PATIENT_USER, None]  # a handled update keeps no chat
    finally:
        await db.upgrade(engine)  # the other tests' schema (whatever is left in it, they clear)


async def _reads_right(sessions: async_sessionmaker[AsyncSession], keys: Keyring) -> None:
    async with sessions() as session:
        patient = await people.identify(session, PATIENT_USER)
        assert isinstance(patient, Patient) and (patient.id, patient.chat_id) == (1, PATIENT_USER)
        counselor = await people.identify(session, COUNSELOR_USER)
        assert isinstance(counselor, Counselor) and counselor.chat_id == COUNSELOR_USER
        checkin = await session.get_one(CheckIn, 1)
        assert (checkin.used, checkin.step, checkin.skipped) == (True, "use_what", ["mood"])
        assert (checkin.use_report, checkin.note, checkin.craving) == ({"substances": ["opioid"]}, "rough", 6)
        assert (await session.get_one(CheckIn, 2)).used is False
        escalation = await session.get_one(Escalation, 1)
        assert (escalation.level, escalation.category) == ("imminent", "suicide")
        assert escalation.source == "message"
        assert (escalation.outcome, escalation.verdict) == ("safe", "real_concern")
        assert escalation.detail == "my words"
        assert (await session.get_one(EscalationAlert, 1)).chat_id == COUNSELOR_USER
        signal = await session.get_one(RiskSignal, 1)
        assert (signal.level, signal.categories, signal.source) == ("high", ["suicide"], "message")
        screen = await session.get_one(SuicideScreen, 1)
        assert (screen.trigger, screen.step, screen.result) == ("alerted", None, "high")
        assert screen.answers == {"wish_dead": True, "thoughts": False}
        flag = await session.get_one(CareFlag, 1)
        assert (flag.kind, flag.detail) == ("use_reported", {"count": 1})
        viewed = await session.get_one(AuditEvent, 1)
        assert viewed.detail == {"page": 1, "shown": 3}
        linked = await session.scalars(
            select(AuditPatient.patient_id).where(AuditPatient.audit_event_id == 1)
        )
        assert sorted(linked) == [1, 2]  # the erased (or never existing) 99 is not kept
        opened = await session.get_one(AuditEvent, 2)
        assert opened.detail == {"escalation_id": 1, "level": "imminent", "category": "suicide"}
        assert (await session.get_one(AuditEvent, 3)).detail is None
        notice = await session.get_one(OutboxMessage, 1)
        assert notice.key == f"flag:{keys.tag(OLD_NOTICE_KEY.removeprefix('flag:'))}"  # as notices write it
        assert notice.chat_id == COUNSELOR_USER and notice.chat_ref == keys.pseudonym(COUNSELOR_USER)
        assert notice.payload == {"text": "River used", "buttons": None}
        measure = await session.get_one(Measure, 1)
        assert (measure.step, measure.answers, measure.scores) == ("q9", {"q1": 2, "q9": 1}, None)
        assert measure.safety_positive is True
        assert (await session.get_one(MedicationPlan, 1)).kind is MedicationKind.METHADONE
        assert (await session.get_one(NaloxoneStatus, 1)).has_naloxone == "no"
        aftercare = await session.get_one(AftercareCheckIn, 1)
        assert (aftercare.step, aftercare.used, aftercare.connected) == ("use", True, "help")
        assert aftercare.skipped == ["mood"]
        chats = await session.scalars(select(InboxUpdate.chat_key).order_by(InboxUpdate.update_id))
        assert list(chats) == [keys.pseudonym(PATIENT_USER)] * 2
