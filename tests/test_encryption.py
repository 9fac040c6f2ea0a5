"""Free text at rest: ciphertext in the raw database, readable only with the key, and key rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import serve
from bot.core import db, key_rotation, people
from bot.core.config import ConfigError, Settings
from bot.core.crypto import EncryptionError, Keyring
from bot.core.models import CheckIn, CheckInSource, InboxUpdate, OutboxMessage, SafetyPlan, utcnow
from bot.intake import parse
from bot.intake import store as inbox
from bot.outbox import store as outbox
from bot.runtime import Runtime
from tests.harness import TEST_ENCRYPTION_KEY
from tests.records import add_counselor, add_patient

Sessions = async_sessionmaker[AsyncSession]
NOTE = "relapsed at my sister's place, do not tell my PO"
PLAN = "call Maria at 555-0100"
LEASE = timedelta(seconds=60)


async def raw_text_values(engine: AsyncEngine) -> list[str]:
    """Every text value in every encrypted column, as the database holds it."""
    found: list[str] = []
    async with engine.connect() as connection:
        for table, names in key_rotation.encrypted_columns().items():
            for name in names:
                rows = await connection.execute(text(f"SELECT {name} FROM {table.name}"))
                found += [str(value) for (value,) in rows if value is not None]
    return found


@pytest.fixture
async def engine_with(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Engines on the test database with other keys (or none), disposed afterwards."""
    made: list[AsyncEngine] = []
    yield made
    for engine in made:
        await engine.dispose()


def _engine(made: list[AsyncEngine], url: str, key: str | None) -> Sessions:
    engine = db.make_engine(url, encryption_key=key)
    made.append(engine)
    return db.make_sessionmaker(engine)


async def _write(sessions: Sessions) -> tuple[int, int]:
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        checkin = CheckIn(
            patient_id=patient.id,
            source=CheckInSource.ON_DEMAND,
            local_day=date(2027, 1, 4),
            expires_at=utcnow() + timedelta(hours=6),
            note=NOTE,
            use_what="two beers",
        )
        session.add(checkin)
        session.add(SafetyPlan(patient_id=patient.id, help_people=PLAN))
        await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    key="k1", kind="notice", chat_id=1, text=f"Their reason: {NOTE}", due_at=utcnow()
                )
            ],
        )
        await session.flush()
        return patient.id, checkin.id


async def test_the_raw_database_holds_no_free_text(sessions: Sessions, engine: AsyncEngine) -> None:
    _, checkin_id = await _write(sessions)
    raw = await raw_text_values(engine)
    assert len(raw) >= 4 and all(value.startswith("gAAAAA") for value in raw)
    assert not any(word in value for value in raw for word in ("relapsed", "Maria", "beers", "reason"))
    async with sessions() as session:  # ...and the bot reads it back as written
        checkin = await session.get_one(CheckIn, checkin_id)
        assert (checkin.note, checkin.use_what) == (NOTE, "two beers")
        row = await session.scalar(select(OutboxMessage))
        assert row is not None and row.payload["text"] == f"Their reason: {NOTE}"


async def test_without_the_key_free_text_is_neither_written_nor_read(
    sessions: Sessions, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    _, checkin_id = await _write(sessions)
    keyless = _engine(engine_with, database_url, None)
    with pytest.raises(EncryptionError, match="ENCRYPTION_KEY is not set"):
        async with keyless() as session:
            await session.get(CheckIn, checkin_id)
    # (SQLAlchemy wraps it when a column's value is encrypted; the patient's pseudonym raises it as it is)
    with pytest.raises((StatementError, EncryptionError), match="never stored unencrypted"):
        await _write(keyless)
    wrong = _engine(engine_with, database_url, Fernet.generate_key().decode())
    with pytest.raises(EncryptionError, match="cannot be decrypted"):
        async with wrong() as session:
            await session.get(CheckIn, checkin_id)


async def test_rotation_moves_everything_to_the_new_key_and_encrypts_old_plain_text(
    sessions: Sessions, engine: AsyncEngine, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    patient_id, checkin_id = await _write(sessions)
    async with engine.begin() as connection:  # a value from before encryption existed
        await connection.execute(
            text("UPDATE safety_plans SET coping = 'walk the dog' WHERE patient_id = :id"), {"id": patient_id}
        )
    new = Fernet.generate_key().decode()
    both = _engine(engine_with, database_url, f"{new},{TEST_ENCRYPTION_KEY}")
    async with db.transaction(both) as session:
        written = await key_rotation.rotate(session)
    assert written["checkins"] == 1 and written["safety_plans"] == 1 and written["outbox"] == 1
    assert all(value.startswith("gAAAAA") for value in await raw_text_values(engine))
    only_new = _engine(engine_with, database_url, new)
    async with only_new() as session:
        checkin = await session.get_one(CheckIn, checkin_id)
        plan = await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == patient_id))
        assert (
            checkin.note == NOTE
            and plan is not None
            and (plan.help_people, plan.coping)
            == (
                PLAN,
                "walk the dog",
            )
        )
    with pytest.raises(EncryptionError):  # the old key alone no longer reads it
        async with sessions() as session:
            await session.get(CheckIn, checkin_id, populate_existing=True)


# ---- the keys checked at start -----------------------------------------------------------------------------


def _keyed(made: list[AsyncEngine], url: str, key: str) -> AsyncEngine:
    engine = db.make_engine(url, encryption_key=key)
    made.append(engine)
    return engine


async def _outbox_rows(sessions: Sessions, *keys: str) -> None:
    async with db.transaction(sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(key=k, kind="notice", chat_id=1, text=f"note {k}", due_at=utcnow())
                for k in keys
            ],
        )


async def test_start_refuses_keys_that_cannot_read_what_is_stored(
    sessions: Sessions, engine: AsyncEngine, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    await key_rotation.check_keys(engine)  # nothing stored yet: any key will do
    patient_id, _ = await _write(sessions)
    async with engine.begin() as connection:  # a value from before encryption existed is read as it is
        await connection.execute(
            text("UPDATE safety_plans SET coping = 'walk the dog' WHERE patient_id = :id"), {"id": patient_id}
        )
    await key_rotation.check_keys(engine)
    new = Fernet.generate_key().decode()
    await key_rotation.check_keys(_keyed(engine_with, database_url, f"{new},{TEST_ENCRYPTION_KEY}"))

    wrong = _keyed(engine_with, database_url, new)
    with pytest.raises(key_rotation.KeysCannotRead) as refused:
        await key_rotation.check_keys(wrong)
    message = str(refused.value)
    assert isinstance(refused.value, ConfigError)  # so the CLI prints it as one line and exits 2
    assert "patients.telegram_user_id" in message and "keys rotate" in message and "\n" not in message
    assert new not in message and TEST_ENCRYPTION_KEY not in message


async def test_the_oldest_values_are_checked_too(
    sessions: Sessions, engine: AsyncEngine, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    """The old key dropped before `keys rotate` ran: the newest rows read, the oldest do not."""
    old = Fernet.generate_key().decode()
    await _outbox_rows(_engine(engine_with, database_url, old), "oldest")
    await _outbox_rows(sessions, *(f"newer-{i}" for i in range(2 * key_rotation.SAMPLE)))
    with pytest.raises(key_rotation.KeysCannotRead, match=r"outbox\.(chat_id|payload)"):
        await key_rotation.check_keys(engine)
    await key_rotation.check_keys(_keyed(engine_with, database_url, f"{TEST_ENCRYPTION_KEY},{old}"))


async def test_outbox_rows_set_aside_as_unreadable_stop_neither_start_nor_rotation(
    sessions: Sessions, engine: AsyncEngine, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    await _outbox_rows(_engine(engine_with, database_url, Fernet.generate_key().decode()), "foreign")
    await _outbox_rows(sessions, "ours")
    async with db.transaction(sessions) as session:
        assert [row.key for row in await outbox.claim(session, "w", utcnow(), limit=10, lease=LEASE)] == [
            "ours"
        ]
    await key_rotation.check_keys(engine)
    async with db.transaction(sessions) as session:
        assert (await key_rotation.rotate(session))["outbox"] == 1  # ours; the one set aside stays as it is
    async with sessions() as session:
        assert (await outbox.counts(session)).get("unreadable") == 1


async def test_serve_refuses_to_start_before_it_talks_to_telegram(
    sessions: Sessions, settings: Settings
) -> None:
    await _write(sessions)
    wrong = settings.model_copy(update={"encryption_key": SecretStr(Fernet.generate_key().decode())})
    runtime = Runtime.create(wrong)
    try:
        with pytest.raises(key_rotation.KeysCannotRead, match=r"patients\.telegram_user_id"):
            await serve(runtime, asyncio.Event())
    finally:
        await runtime.engine.dispose()


# ---- pseudonyms: people are found by a keyed hash of their Telegram id (issue 20) --------------------------


def _id(person: people.Person) -> int | None:
    return None if isinstance(person, people.Stranger) else person.id


async def test_rotation_hashes_every_pseudonym_again_and_people_are_found_throughout(
    sessions: Sessions, database_url: str, engine_with: list[AsyncEngine]
) -> None:
    patient = await add_patient(sessions)
    counselor = await add_counselor(sessions, linked=True)
    update = {"update_id": 9, "message": {"chat": {"id": patient.chat_id, "type": "private"}, "text": "hi"}}
    async with db.transaction(sessions) as session:
        await outbox.enqueue(session, [outbox.Planned("p", "checkin", patient.chat_id, "hello", utcnow())])
        keyring = Keyring.parse(TEST_ENCRYPTION_KEY)
        await inbox.add(session, [parse.incoming(update, keyring)], utcnow())

    new = Fernet.generate_key().decode()
    both = _engine(engine_with, database_url, f"{new},{TEST_ENCRYPTION_KEY}")
    async with both() as session:  # the new key in front, not rotated yet: found by the old pseudonym
        assert _id(await people.identify(session, patient.telegram_user_id)) == patient.id
    async with db.transaction(both) as session:
        written = await key_rotation.rotate(session)
    assert written["patients"] == written["counselors"] == written["outbox"] == written["inbox"] == 1

    only_new = _keyed(engine_with, database_url, new)
    await key_rotation.check_keys(only_new)
    async with db.make_sessionmaker(only_new)() as session:
        assert _id(await people.identify(session, patient.telegram_user_id)) == patient.id
        assert _id(await people.identify(session, counselor.telegram_user_id or 0)) == counselor.id
        row = await session.scalar(select(OutboxMessage).where(outbox.to_chat(session, patient.chat_id)))
        assert row is not None and row.chat_id == patient.chat_id
        stored = await session.scalar(select(InboxUpdate.chat_key))
        assert stored == Keyring.parse(new).pseudonym(patient.chat_id)
        assert await inbox.forget_chat(session, patient.chat_id) == 1


async def test_start_refuses_pseudonyms_written_with_a_key_it_does_not_hold(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    patient = await add_patient(sessions)
    await key_rotation.check_keys(engine)
    elsewhere = Keyring.parse(Fernet.generate_key().decode()).pseudonym(patient.telegram_user_id)
    async with engine.begin() as connection:  # the ids decrypt, but nobody would be found by their hash
        await connection.execute(text("UPDATE patients SET telegram_ref = :ref"), {"ref": elsewhere})
    with pytest.raises(key_rotation.KeysCannotRead, match=r"patients\.telegram_ref"):
        await key_rotation.check_keys(engine)
