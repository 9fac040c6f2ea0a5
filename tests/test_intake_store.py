"""The inbox (bot/intake/store.py, parse.py) on the test database: storing once, claiming a chat in order and
by one worker at a time, retries with backoff, parking, forgetting. All times are fixed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.crypto import Keyring
from bot.core.models import InboxStatus, InboxUpdate
from bot.intake import parse, store
from tests.harness import TEST_ENCRYPTION_KEY

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)
Sessions = async_sessionmaker[AsyncSession]
KEYS = Keyring.parse(TEST_ENCRYPTION_KEY)  # the test engine's


def chat(chat_id: int) -> int:
    """The key a chat's rows are stored and claimed by (its pseudonym)."""
    return KEYS.pseudonym(chat_id)


def _message(update_id: int, chat_id: int, text: str = "hello") -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "T", "language_code": "es-MX"},
            "text": text,
        },
    }


async def _add(sessions: Sessions, *raws: dict[str, object]) -> list[int]:
    async with db.transaction(sessions) as session:
        return await store.add(session, [parse.incoming(raw, KEYS) for raw in raws], NOW)


async def test_an_update_is_stored_once(sessions: Sessions) -> None:
    assert await _add(sessions, _message(1, 10), _message(2, 10)) == [1, 2]
    assert await _add(sessions, _message(2, 10), _message(3, 11)) == [3]
    async with sessions() as session:
        assert await store.counts(session) == {"pending": 3, "done": 0, "parked": 0}


async def test_a_full_page_is_stored_in_one_go_and_only_its_new_updates_are_named(sessions: Sessions) -> None:
    await _add(sessions, *(_message(i, 10 + i % 3) for i in range(1, 51)))
    page = [_message(i, 10 + i % 3) for i in range(1, 101)]  # Telegram's largest page, half of it sent again
    assert sorted(await _add(sessions, *page)) == list(range(51, 101))
    async with sessions() as session:
        assert await store.counts(session) == {"pending": 100, "done": 0, "parked": 0}
        row = await session.get_one(InboxUpdate, 77)
        assert row.chat_key == chat(12) != 12  # the chat's pseudonym, never its id
        assert row.payload is not None and json.loads(row.payload)["update_id"] == 77


async def test_a_chat_is_claimed_in_order_by_one_worker_at_a_time(sessions: Sessions) -> None:
    await _add(sessions, _message(5, 10), _message(3, 10), _message(4, 11))
    async with db.transaction(sessions) as session:
        assert await store.chats_with_work(session, "a", NOW, exclude=[], limit=5) == [chat(10), chat(11)]
        claimed = await store.claim_chat(session, chat(10), "a", NOW, lease=LEASE, limit=10)
    assert [c.update_id for c in claimed] == [3, 5]
    assert json.loads(claimed[0].payload)["update_id"] == 3
    await _add(sessions, _message(6, 10))
    async with db.transaction(sessions) as session:
        # Another worker gets nothing of chat 10 while "a" holds a live lease on it, but chat 11 is free.
        assert await store.claim_chat(session, chat(10), "b", NOW, lease=LEASE, limit=10) is None
        assert await store.chats_with_work(session, "b", NOW, exclude=[], limit=5) == [chat(11)]
        # Once the lease has run out (the worker died), its rows are anyone's.
        later = NOW + LEASE + timedelta(seconds=1)
        taken = await store.claim_chat(session, chat(10), "b", later, lease=LEASE, limit=10)
    assert [c.update_id for c in taken] == [3, 5, 6]


async def test_done_forgets_the_words(sessions: Sessions) -> None:
    await _add(sessions, _message(1, 10, "my words"))
    async with db.transaction(sessions) as session:
        await store.mark_done(session, [1], NOW)
    async with sessions() as session:
        row = await session.get_one(InboxUpdate, 1)
        assert row.status is InboxStatus.DONE and row.payload is None and row.handled_at == NOW


async def test_failures_back_off_then_park_and_done_rows_are_not_reopened(sessions: Sessions) -> None:
    await _add(sessions, _message(1, 10), _message(2, 10))
    async with db.transaction(sessions) as session:
        assert (
            await store.mark_failed(session, 1, "OperationalError", NOW, max_attempts=3)
            is InboxStatus.PENDING
        )
    async with sessions() as session:
        row = await session.get_one(InboxUpdate, 1)
        assert row.attempts == 1 and row.next_attempt_at == NOW + store.BACKOFF_BASE
        # Not due yet: the chat's later update is not held back by it.
        claimed = await store.claim_chat(session, chat(10), "a", NOW, lease=LEASE, limit=10)
        assert [c.update_id for c in claimed] == [2]
    async with db.transaction(sessions) as session:
        await store.mark_failed(session, 1, "OperationalError", NOW, max_attempts=3)
        assert (
            await store.mark_failed(session, 1, "OperationalError", NOW, max_attempts=3) is InboxStatus.PARKED
        )
        await store.mark_done(session, [2], NOW)
        assert await store.mark_failed(session, 2, "BadRequest", NOW, max_attempts=3) is None
    async with sessions() as session:
        assert await store.counts(session) == {"pending": 0, "done": 1, "parked": 1}
        parked = await session.get_one(InboxUpdate, 1)
        assert parked.payload is not None and parked.error == "OperationalError"


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 2), (2, 4), (3, 8), (20, 300)])
def test_backoff(attempts: int, seconds: int) -> None:
    assert store.backoff(attempts) == timedelta(seconds=seconds)


async def test_purge_and_forget(sessions: Sessions) -> None:
    await _add(sessions, _message(1, 10), _message(2, 10), _message(3, 11))
    async with db.transaction(sessions) as session:
        await store.mark_done(session, [1], NOW - timedelta(days=3))
        await store.mark_done(session, [3], NOW)
        assert await store.purge(session, NOW - timedelta(days=2)) == 1
        assert await store.forget_chat(session, 10) == 1  # the pending one; 1 was purged already
    async with sessions() as session:
        assert await store.counts(session) == {"pending": 0, "done": 1, "parked": 0}


def test_parse_reads_the_chat_and_the_typed_text() -> None:
    raw = _message(7, 42, "help me")
    assert parse.chat_of(raw) == 42
    typed = parse.typed(raw)
    assert typed is not None and (typed.chat_id, typed.text, typed.language_code) == (42, "help me", "es-MX")
    tap = {"update_id": 8, "callback_query": {"id": "q", "from": {"id": 5}, "data": "x"}}
    assert parse.chat_of(tap) == 5 and parse.typed(tap) is None
    group = {"update_id": 9, "message": {"chat": {"id": -100, "type": "group"}, "text": "hi"}}
    assert parse.chat_of(group) == -100 and parse.typed(group) is None


@pytest.mark.parametrize(
    "body", [[], None, 5, "x", {}, {"update_id": "1"}, {"update_id": True}, {"update_id": -1}]
)
def test_parse_refuses_what_is_not_an_update(body: object) -> None:
    with pytest.raises(parse.NotAnUpdate):
        parse.incoming(body, KEYS)


async def test_rows_stored_claimed_are_held_by_that_worker_and_not_searched_for(sessions: Sessions) -> None:
    async with db.transaction(sessions) as session:
        rows = [parse.incoming(_message(i, 10), KEYS) for i in (1, 2)]
        assert await store.add(session, rows, NOW, claimed_by="a", lease=LEASE) == [1, 2]
        await store.add(session, [parse.incoming(_message(3, 11), KEYS)], NOW)
    async with db.transaction(sessions) as session:
        # "a" has chat 10 in hand: only what nobody holds is searched for; "b" must wait for chat 10
        assert await store.chats_with_work(session, "a", NOW, exclude=[], limit=5, mine=False) == [chat(11)]
        assert await store.chats_with_work(session, "a", NOW, exclude=[], limit=5) == [chat(10), chat(11)]
        assert await store.claim_chat(session, chat(10), "b", NOW, lease=LEASE, limit=10) is None
        assert sorted(await store.chats_pending(session)) == sorted([chat(10), chat(11)])
        # "a" claiming its own chat leaves out what it handled and has not marked done yet
        claimed = await store.claim_chat(session, chat(10), "a", NOW, lease=LEASE, limit=10, skip=[1])
        assert claimed is not None and [c.update_id for c in claimed] == [2]
        later = NOW + LEASE + timedelta(seconds=1)  # "a" died: its rows are searched for again
        assert await store.chats_with_work(session, "b", later, exclude=[], limit=5, mine=False) == [
            chat(10),
            chat(11),
        ]


async def test_a_page_stored_in_one_go_reads_back_as_each_row_was_given(sessions: Sessions) -> None:
    """The values a page's rows share (status, times) are converted once for the whole page: they read back
    exactly, claimed or not, and the payload is still encrypted at rest with each chat under its pseudonym."""
    page = [_message(i, 10 + i % 2, text="hola, ¿cómo estás?") for i in range(1, 7)]
    rows = parse.unique(page, KEYS)
    async with db.transaction(sessions) as session:
        new = await store.add(session, rows, NOW, claimed_by="a", lease=LEASE, unclaimed_chats={chat(11)})
    assert new == list(range(1, 7))
    async with sessions() as session:
        stored = (await session.scalars(select(InboxUpdate).order_by(InboxUpdate.update_id))).all()
        raw = (await session.execute(text("SELECT payload FROM inbox WHERE update_id = 2"))).scalar_one()
    assert [(r.chat_key, r.status, r.attempts, r.received_at, r.next_attempt_at) for r in stored] == [
        (chat(10 + i % 2), InboxStatus.PENDING, 0, NOW, NOW) for i in range(1, 7)
    ]
    assert [(r.claimed_by, r.claimed_until) for r in stored] == [
        ("a", NOW + LEASE) if i % 2 == 0 else (None, None) for i in range(1, 7)
    ]
    assert [json.loads(r.payload or "") for r in stored] == page
    assert "hola" not in raw and KEYS.decrypt(raw) == stored[1].payload


async def test_what_waits_at_start_is_read_a_chats_first_rows_only(sessions: Sessions) -> None:
    """A flood's thousands of rows do not use up the reading at start: only each chat's first rows."""
    await _add(sessions, *(_message(n, 10) for n in range(1, 31)), _message(31, 11))
    async with sessions() as session:
        first = await store.pending_payloads(session, after=-1, limit=100, per_chat=20)
        paged = await store.pending_payloads(session, after=5, limit=3, per_chat=20)
    assert [update_id for update_id, _, _ in first] == [*range(1, 21), 31]
    assert [chat_key for _, chat_key, _ in first][-1] == chat(11)
    assert json.loads(first[0][2])["update_id"] == 1  # the payload as stored, read back
    assert [update_id for update_id, _, _ in paged] == [6, 7, 8]
