"""The outbox (bot/outbox/store.py): idempotent planning, leased claims in priority order, expiry, retries
with backoff, cancelling, and two workers claiming at once. All times are fixed; the real clock is never
read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import OutboxMessage, OutboxStatus, Patient, PatientStatus, Priority
from bot.outbox import store as outbox
from bot.outbox.store import Claimed
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]

T0 = datetime(2027, 3, 8, 15, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _msg(key: str, due: datetime = T0, priority: Priority = Priority.NORMAL, **fields: Any) -> outbox.Planned:
    return outbox.Planned(
        key=key, kind="notice", chat_id=42, text=f"text of {key}", due_at=due, priority=priority, **fields
    )


async def _enqueue(sessions: Sessions, *messages: outbox.Planned) -> int:
    async with db.transaction(sessions) as session:
        return await outbox.enqueue(session, messages)


async def _claim(
    sessions: Sessions, worker: str, now: datetime, *, limit: int = 10, lease: timedelta = LEASE
) -> list[Claimed]:
    async with db.transaction(sessions) as session:
        return await outbox.claim(session, worker, now, limit=limit, lease=lease)


async def _rows(sessions: Sessions) -> dict[str, OutboxMessage]:
    async with sessions() as session:
        return {row.key: row for row in await session.scalars(select(OutboxMessage))}


def _keys(claimed: list[Claimed]) -> list[str]:
    return [row.key for row in claimed]


async def test_enqueue_is_idempotent_by_key(sessions: Sessions) -> None:
    assert await _enqueue(sessions, _msg("a")) == 1
    assert await _enqueue(sessions, _msg("a")) == 0
    # The same key with other content changes nothing either: the first plan stands.
    assert await _enqueue(sessions, outbox.Planned("a", "notice", 7, "other", T0 + LEASE)) == 0
    # A key repeated within one batch is inserted once.
    assert await _enqueue(sessions, _msg("b"), _msg("b"), _msg("a")) == 1
    async with sessions() as session:
        assert await outbox.enqueue(session, []) == 0
    rows = await _rows(sessions)
    assert sorted(rows) == ["a", "b"]
    a = rows["a"]
    assert (a.chat_id, a.payload, a.due_at, a.next_attempt_at) == (
        42,
        {"text": "text of a", "buttons": None},
        T0,
        T0,
    )
    assert (a.status, a.attempts, a.claimed_by) == (OutboxStatus.PENDING, 0, None)


async def test_claim_takes_the_most_urgent_first_then_the_oldest(sessions: Sessions) -> None:
    await _enqueue(
        sessions,
        _msg("bulk-oldest", T0 - timedelta(hours=1), Priority.BULK),
        _msg("normal-10m", T0 - timedelta(minutes=10)),
        _msg("urgent", T0 - timedelta(minutes=1), Priority.URGENT, buttons=[[("Yes", "y"), ("No", "n")]]),
        _msg("normal-20m", T0 - timedelta(minutes=20), ref={"check_in": 3}),
    )
    first = await _claim(sessions, "w1", T0, limit=3)
    assert _keys(first) == ["urgent", "normal-20m", "normal-10m"]
    urgent, older = first[0], first[1]
    assert urgent.text == "text of urgent" and urgent.buttons == [[("Yes", "y"), ("No", "n")]]
    assert urgent.ref == {} and older.ref == {"check_in": 3} and older.buttons is None
    assert all(row.attempts == 0 and row.claimed_until == T0 + LEASE for row in first)
    assert _keys(await _claim(sessions, "w1", T0, limit=3)) == ["bulk-oldest"]
    rows = await _rows(sessions)
    assert {row.claimed_by for row in rows.values()} == {"w1"}
    assert {row.claimed_until for row in rows.values()} == {T0 + LEASE}


async def test_a_leased_row_waits_for_its_lease_to_end(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("a"))
    assert _keys(await _claim(sessions, "w1", T0)) == ["a"]
    assert await _claim(sessions, "w2", T0 + timedelta(seconds=30)) == []
    assert await _claim(sessions, "w1", T0 + timedelta(seconds=59)) == []
    # The first worker died mid-send: once its lease has passed, another takes the row.
    taken = await _claim(sessions, "w2", T0 + LEASE + timedelta(seconds=1))
    assert _keys(taken) == ["a"]
    row = (await _rows(sessions))["a"]
    assert (row.claimed_by, row.claimed_until) == ("w2", T0 + 2 * LEASE + timedelta(seconds=1))


async def test_rows_not_yet_due_are_not_claimed(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("later", T0 + timedelta(minutes=5)))
    assert await _claim(sessions, "w1", T0) == []
    assert await _claim(sessions, "w1", T0 + timedelta(minutes=4, seconds=59)) == []
    assert _keys(await _claim(sessions, "w1", T0 + timedelta(minutes=5))) == ["later"]


async def test_expired_rows_are_never_claimed_and_are_dropped_and_counted(sessions: Sessions) -> None:
    await _enqueue(
        sessions,
        _msg("expired-now", T0 - timedelta(hours=1), expires_at=T0),
        _msg("expired-before", T0 - timedelta(hours=2), expires_at=T0 - timedelta(hours=1)),
        _msg("expires-later", T0 - timedelta(hours=1), expires_at=T0 + timedelta(hours=1)),
        _msg("never-expires", T0 - timedelta(hours=1)),
    )
    assert sorted(_keys(await _claim(sessions, "w1", T0))) == ["expires-later", "never-expires"]
    async with db.transaction(sessions) as session:
        assert await outbox.drop_expired(session, T0) == 2
    rows = await _rows(sessions)
    for key in ("expired-now", "expired-before"):
        assert (rows[key].status, rows[key].error, rows[key].sent_at) == (
            OutboxStatus.DROPPED,
            "expired",
            None,
        )
    assert rows["expires-later"].status is OutboxStatus.PENDING
    # A row that expires while leased is left to its worker until the lease has passed.
    async with db.transaction(sessions) as session:
        assert await outbox.drop_expired(session, T0 + timedelta(seconds=30)) == 0
        assert await outbox.drop_expired(session, T0 + timedelta(hours=2)) == 1
    async with sessions() as session:
        assert await outbox.counts(session) == {"dropped": 3, "pending": 1}
    assert _keys(await _claim(sessions, "w2", T0 + timedelta(hours=3))) == ["never-expires"]


async def test_mark_sent_records_the_message_and_clears_the_claim(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("a"), _msg("b"))
    claimed = await _claim(sessions, "w1", T0)
    sent_at = T0 + timedelta(seconds=2)
    async with db.transaction(sessions) as session:
        await outbox.mark_sent(session, "w1", [(claimed[0], 777), (claimed[1], 778)], sent_at)
        await outbox.mark_sent(session, "w1", [], sent_at)
    rows = await _rows(sessions)
    a = rows[claimed[0].key]
    assert (a.status, a.message_id, a.attempts, a.sent_at) == (OutboxStatus.SENT, 777, 1, sent_at)
    assert (a.claimed_by, a.claimed_until, a.error) == (None, None, None)
    assert rows[claimed[1].key].message_id == 778
    assert await _claim(sessions, "w2", T0 + timedelta(hours=1)) == []


async def test_mark_retry_backs_off_then_fails_after_max_attempts(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("a"))
    now = T0
    [row] = await _claim(sessions, "w1", now)
    async with db.transaction(sessions) as session:
        assert await outbox.mark_retry(session, "w1", row, "timeout", now, max_attempts=3, wait=None) is False
    stored = (await _rows(sessions))["a"]
    assert (stored.status, stored.attempts, stored.error) == (OutboxStatus.PENDING, 1, "timeout")
    assert stored.next_attempt_at == now + outbox.backoff(1) == now + timedelta(seconds=5)
    assert (stored.claimed_by, stored.claimed_until) == (None, None)
    assert await _claim(sessions, "w1", now + timedelta(seconds=4)) == []

    now += timedelta(seconds=5)
    [row] = await _claim(sessions, "w1", now)
    assert row.attempts == 1
    async with db.transaction(sessions) as session:  # Telegram said "retry after 30 s": that wait wins
        assert (
            await outbox.mark_retry(
                session, "w1", row, "x" * 100, now, max_attempts=3, wait=timedelta(seconds=30)
            )
            is False
        )
    stored = (await _rows(sessions))["a"]
    assert (stored.attempts, stored.next_attempt_at, stored.error) == (
        2,
        now + timedelta(seconds=30),
        "x" * 40,
    )

    now += timedelta(seconds=30)
    [row] = await _claim(sessions, "w1", now)
    async with db.transaction(sessions) as session:
        assert await outbox.mark_retry(session, "w1", row, "timeout", now, max_attempts=3, wait=None) is True
    stored = (await _rows(sessions))["a"]
    assert (stored.status, stored.attempts, stored.claimed_by) == (OutboxStatus.FAILED, 3, None)
    assert await _claim(sessions, "w1", now + timedelta(days=1)) == []


def test_backoff_doubles_from_five_seconds_up_to_ten_minutes() -> None:
    seconds = [outbox.backoff(attempts).total_seconds() for attempts in range(11)]
    assert seconds == [5, 5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    # Still capped for every attempt count the settings allow (OUTBOX_MAX_ATTEMPTS is at most 50).
    for attempts in range(11, 51):
        assert outbox.backoff(attempts) == timedelta(minutes=10), attempts


async def test_mark_failed_and_release(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("a"), _msg("b"), _msg("c"))
    claimed = await _claim(sessions, "w1", T0)
    async with db.transaction(sessions) as session:
        await outbox.mark_failed(session, "w1", claimed[0], "chat not found")
        await outbox.release(session, "w1", claimed[1:])
        await outbox.release(session, "w1", [])
    rows = await _rows(sessions)
    failed = rows[claimed[0].key]
    assert (failed.status, failed.attempts, failed.error, failed.claimed_by) == (
        OutboxStatus.FAILED,
        1,
        "chat not found",
        None,
    )
    for row in claimed[1:]:
        assert (rows[row.key].claimed_by, rows[row.key].claimed_until, rows[row.key].attempts) == (
            None,
            None,
            0,
        )
    # Released rows go to the next worker at once, without waiting for the lease.
    assert _keys(await _claim(sessions, "w2", T0)) == [row.key for row in claimed[1:]]


async def test_only_the_worker_holding_a_row_records_its_result(sessions: Sessions) -> None:
    await _enqueue(sessions, _msg("a"), _msg("b"))
    [a, b] = await _claim(sessions, "w1", T0)
    # w1 stalled past its lease; w2 took "a" over. w1's late results must not land on it.
    later = T0 + LEASE + timedelta(seconds=1)
    [a2, b2] = await _claim(sessions, "w2", later)
    async with db.transaction(sessions) as session:
        await outbox.mark_sent(session, "w1", [(a, 1)], later)
        await outbox.mark_retry(session, "w1", b, "timeout", later, max_attempts=1, wait=None)
        await outbox.mark_failed(session, "w1", b, "blocked")
        await outbox.release(session, "w1", [a, b])
    rows = await _rows(sessions)
    for key in ("a", "b"):
        assert (rows[key].status, rows[key].attempts, rows[key].claimed_by) == (OutboxStatus.PENDING, 0, "w2")
    # A row cancelled while being sent: the sender's result is not recorded over the cancellation.
    async with db.transaction(sessions) as session:
        assert await outbox.cancel(session, OutboxMessage.key == "a", reason="discharged") == 1
        await outbox.mark_sent(session, "w2", [(a2, 9), (b2, 10)], later)
    rows = await _rows(sessions)
    assert (rows["a"].status, rows["a"].message_id, rows["a"].claimed_by) == (
        OutboxStatus.CANCELLED,
        None,
        None,
    )
    assert (rows["b"].status, rows["b"].message_id) == (OutboxStatus.SENT, 10)


async def _two_patients(sessions: Sessions) -> tuple[Patient, Patient]:
    return await add_patient(sessions), await add_patient(sessions)


async def test_cancel_touches_only_pending_rows_that_match(sessions: Sessions) -> None:
    p, q = await _two_patients(sessions)
    await _enqueue(
        sessions,
        _msg("p-pending", patient_id=p.id),
        _msg("p-later", T0 + timedelta(days=1), patient_id=p.id),
        _msg("p-sent", T0 - timedelta(minutes=1), priority=Priority.URGENT, patient_id=p.id),
        _msg("q-pending", patient_id=q.id),
    )
    [sent] = await _claim(sessions, "w1", T0 - timedelta(seconds=30), limit=1)
    async with db.transaction(sessions) as session:
        await outbox.mark_sent(session, "w1", [(sent, 1)], T0)
        assert await outbox.cancel(session, OutboxMessage.patient_id == p.id, reason="discharged") == 2
        assert (
            await outbox.cancel(
                session, OutboxMessage.key == "q-pending", OutboxMessage.kind == "x", reason="-"
            )
            == 0
        )
    rows = await _rows(sessions)
    for key in ("p-pending", "p-later"):
        assert (rows[key].status, rows[key].error) == (OutboxStatus.CANCELLED, "discharged")
    assert rows["p-sent"].status is OutboxStatus.SENT and rows["p-sent"].error is None
    assert rows["q-pending"].status is OutboxStatus.PENDING


async def test_mark_unreachable_notes_it_once_and_cancels_only_that_patients_rows(sessions: Sessions) -> None:
    p, q = await _two_patients(sessions)
    await _enqueue(
        sessions, _msg("p1", patient_id=p.id), _msg("p2", patient_id=p.id), _msg("q1", patient_id=q.id)
    )
    async with db.transaction(sessions) as session:
        news = await outbox.mark_unreachable(session, p.id, T0)
        assert news is not None and news.id == p.id and news.unreachable_since == T0
    rows = await _rows(sessions)
    assert {key: (row.status, row.error) for key, row in rows.items()} == {
        "p1": (OutboxStatus.CANCELLED, "unreachable"),
        "p2": (OutboxStatus.CANCELLED, "unreachable"),
        "q1": (OutboxStatus.PENDING, None),
    }
    # Told once: the second time is not news, though anything planned since is still cancelled.
    await _enqueue(sessions, _msg("p3", patient_id=p.id))
    async with db.transaction(sessions) as session:
        assert await outbox.mark_unreachable(session, p.id, T0 + timedelta(hours=1)) is None
        assert await outbox.mark_unreachable(session, 987_654, T0) is None
    async with sessions() as session:
        stored = await session.get_one(Patient, p.id)
        assert stored.unreachable_since == T0
        assert (await session.get_one(Patient, q.id)).unreachable_since is None
    assert (await _rows(sessions))["p3"].status is OutboxStatus.CANCELLED


async def test_next_due_is_the_earliest_pending_row(sessions: Sessions) -> None:
    async with sessions() as session:
        assert await outbox.next_due(session) is None
    await _enqueue(
        sessions,
        _msg("soon", T0 - timedelta(minutes=5)),
        _msg("later", T0 + timedelta(minutes=20)),
        _msg("next", T0 + timedelta(minutes=10)),
    )
    async with sessions() as session:
        assert await outbox.next_due(session) == T0 - timedelta(minutes=5)
    [soon] = await _claim(sessions, "w1", T0)
    async with db.transaction(sessions) as session:
        await outbox.mark_sent(session, "w1", [(soon, 5)], T0)
    async with sessions() as session:
        assert await outbox.next_due(session) == T0 + timedelta(minutes=10)


async def test_counts_groups_rows_by_status(sessions: Sessions) -> None:
    async with sessions() as session:
        assert await outbox.counts(session) == {}
    await _enqueue(sessions, *(_msg(f"m{i}") for i in range(5)))
    a, b, c, *_ = await _claim(sessions, "w1", T0)
    async with db.transaction(sessions) as session:
        await outbox.mark_sent(session, "w1", [(a, 1), (b, 2)], T0)
        await outbox.mark_failed(session, "w1", c, "blocked")
        await outbox.cancel(session, OutboxMessage.key == "m4", reason="moot")
    async with sessions() as session:
        assert await outbox.counts(session) == {"sent": 2, "failed": 1, "cancelled": 1, "pending": 1}


async def test_two_workers_claiming_at_once_never_share_a_row(sessions: Sessions) -> None:
    await _enqueue(sessions, *(_msg(f"m{i:02}", T0 - timedelta(seconds=i)) for i in range(40)))
    # Started together, a few rounds, each worker taking a handful per round (32 of the 40 rows in all).
    taken: dict[str, list[str]] = {"a": [], "b": []}
    for round_ in range(4):
        now = T0 + timedelta(seconds=round_)
        got_a, got_b = await asyncio.gather(
            _claim(sessions, "a", now, limit=4, lease=timedelta(hours=1)),
            _claim(sessions, "b", now, limit=4, lease=timedelta(hours=1)),
        )
        taken["a"] += _keys(got_a)
        taken["b"] += _keys(got_b)
    assert len(taken["a"]) == len(taken["b"]) == 16
    assert not set(taken["a"]) & set(taken["b"])
    rows = await _rows(sessions)
    assert {key for key, row in rows.items() if row.claimed_by == "a"} == set(taken["a"])
    assert {key for key, row in rows.items() if row.claimed_by == "b"} == set(taken["b"])


async def test_a_second_worker_skips_rows_another_holds_in_an_open_transaction(sessions: Sessions) -> None:
    """Worker A keeps its claiming transaction open while B claims. On PostgreSQL B skips A's locked rows
    (FOR UPDATE SKIP LOCKED) and finishes at once; on SQLite it waits for A's write lock. Either way the two
    get different rows."""
    await _enqueue(sessions, *(_msg(f"m{i}", T0 - timedelta(minutes=10 - i)) for i in range(6)))
    a_claimed, b_done = asyncio.Event(), asyncio.Event()
    b_done_before_a_committed = False

    async def worker_a() -> list[Claimed]:
        nonlocal b_done_before_a_committed
        async with db.transaction(sessions) as session:
            rows = await outbox.claim(session, "a", T0, limit=3, lease=LEASE)
            a_claimed.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b_done.wait(), timeout=1.0)
            b_done_before_a_committed = b_done.is_set()
        return rows

    async def worker_b() -> list[Claimed]:
        await a_claimed.wait()
        rows = await _claim(sessions, "b", T0, limit=3)
        b_done.set()
        return rows

    got_a, got_b = await asyncio.gather(worker_a(), worker_b())
    assert _keys(got_a) == ["m0", "m1", "m2"]
    assert _keys(got_b) == ["m3", "m4", "m5"]
    async with sessions() as session:
        dialect = session.get_bind().dialect.name
    assert b_done_before_a_committed is (dialect == "postgresql")


async def test_rows_for_a_patient_no_longer_active_are_cancelled_not_claimed(sessions: Sessions) -> None:
    active, revoked = await _two_patients(sessions)
    async with db.transaction(sessions) as session:
        (await session.get_one(Patient, revoked.id)).status = PatientStatus.CONSENT_REVOKED
    await _enqueue(
        sessions, _msg("mine", patient_id=active.id), _msg("theirs", patient_id=revoked.id), _msg("team")
    )
    async with db.transaction(sessions) as session:
        assert await outbox.cancel_unwanted(session, T0) == 1
    assert sorted(_keys(await _claim(sessions, "w1", T0))) == ["mine", "team"]
    rows = await _rows(sessions)
    assert rows["theirs"].status is OutboxStatus.CANCELLED and rows["theirs"].error == "patient_inactive"


async def test_a_message_to_a_patient_goes_in_the_program_only_unless_it_is_for_after(
    sessions: Sessions,
) -> None:
    """`to_patient`: a question in the program is cancelled once the patient is discharged; one for after
    the program (aftercare) still goes, and both name the patient (so erasing them deletes both)."""
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        (await session.get_one(Patient, patient.id)).status = PatientStatus.DISCHARGED
    await _enqueue(
        sessions,
        outbox.to_patient(patient, "prompt", "checkin_prompt", "How are you?", due_at=T0),
        outbox.to_patient(patient, "after", "aftercare_prompt", "How are you?", due_at=T0, in_program=False),
    )
    async with db.transaction(sessions) as session:
        assert await outbox.cancel_unwanted(session, T0) == 1
    assert _keys(await _claim(sessions, "w1", T0)) == ["after"]
    rows = await _rows(sessions)
    assert rows["prompt"].patient_id == patient.id and rows["after"].subject_patient_id == patient.id
    assert {row.chat_id for row in rows.values()} == {patient.chat_id}


async def test_next_due_waits_for_a_lease_to_end(sessions: Sessions) -> None:
    """A row held by a process that died is claimable when its lease ends, not before: no busy loop."""
    await _enqueue(sessions, _msg("held"))
    await _claim(sessions, "dead", T0)
    async with sessions() as session:
        assert await outbox.next_due(session) == T0 + LEASE


async def test_a_row_that_cannot_be_decrypted_is_set_aside_and_the_rest_of_the_batch_goes_on(
    sessions: Sessions, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A row written with a key ENCRYPTION_KEY no longer holds used to fail every claim, so nothing was sent
    to anyone; now it is set aside as unreadable, logged once with its id, counted, never claimed again."""
    foreign = db.make_engine(database_url, encryption_key=Fernet.generate_key().decode())
    try:
        await _enqueue(
            db.make_sessionmaker(foreign), _msg("foreign", T0 - timedelta(minutes=1), Priority.URGENT)
        )
    finally:
        await foreign.dispose()
    await _enqueue(sessions, _msg("a"), _msg("b", priority=Priority.URGENT))
    caplog.set_level(logging.ERROR, logger="bot.outbox.store")
    assert _keys(await _claim(sessions, "w1", T0)) == ["b", "a"]
    async with sessions() as session:
        row_id, status, error, claimed_by = (
            await session.execute(
                select(
                    OutboxMessage.id, OutboxMessage.status, OutboxMessage.error, OutboxMessage.claimed_by
                ).where(OutboxMessage.key == "foreign")
            )
        ).one()
        assert (status, error, claimed_by) == (OutboxStatus.UNREADABLE, "unreadable", None)
        assert await outbox.counts(session) == {"pending": 2, "unreadable": 1}
    # the others' lease ends and they are claimed again; the one set aside never is, nor logged again
    assert _keys(await _claim(sessions, "w2", T0 + LEASE + timedelta(seconds=1))) == ["b", "a"]
    logged = [r.getMessage() for r in caplog.records if "event=outbox.unreadable" in r.getMessage()]
    assert logged == [f"event=outbox.unreadable outbox_id={row_id} kind=notice"]
