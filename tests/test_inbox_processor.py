"""The inbox processor (bot/intake/processor.py) on the test database, with a stand-in for the handlers that
records the order updates reach them: what the poller stores claimed is handled from memory (no claim, no
search), a chat's rows already in the database come first, and handled rows are marked done together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update
from telegram.ext import Application

from bot.core import db
from bot.core.config import Settings
from bot.core.models import InboxStatus, InboxUpdate, utcnow
from bot.intake import grouped, parse, polling, processor, store
from bot.runtime import Runtime
from devtools.simulator import TelegramStandIn
from tests.harness import TEST_TOKEN


def _message(update_id: int, chat_id: int, text: str | None = None) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "T"},
            "text": f"hello {update_id}" if text is None else text,
        },
    }


CRISIS = "I am going to kill myself tonight"


class _Handlers:
    """Stands in for the Application: records the update ids it is given, in order."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.bot = None
        self.before: Callable[[Update], Awaitable[None]] | None = None  # a handler's time, before recording

    async def process_update(self, update: Update) -> None:
        if self.before is not None:
            await self.before(update)
        self.seen.append(update.update_id)


def _one_chat_at_a_time(runtime: Runtime, handlers: _Handlers) -> processor.InboxProcessor:
    return processor.InboxProcessor(
        runtime, cast(Application, handlers), flood_notice=_no_notice, concurrency=1
    )


@pytest.fixture
async def runtime(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Runtime]:
    made = Runtime.create(settings)
    yield made
    await made.engine.dispose()


@pytest.fixture
def handlers() -> _Handlers:
    return _Handlers()


@pytest.fixture
def inbox(runtime: Runtime, handlers: _Handlers) -> processor.InboxProcessor:
    return processor.InboxProcessor(runtime, cast(Application, handlers), flood_notice=_no_notice)


async def _no_notice(update: Update, context: Any) -> None:
    raise AssertionError("no flood here")


async def _until(condition: Callable[[], object]) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached")


async def _statuses(runtime: Runtime) -> dict[int, tuple[InboxStatus, str | None]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(InboxUpdate.update_id, InboxUpdate.status, InboxUpdate.claimed_by)
        )
        return {update_id: (status, claimed_by) for update_id, status, claimed_by in rows.all()}


async def _poll(runtime: Runtime, inbox: processor.InboxProcessor, *raws: dict[str, object]) -> None:
    """What the poller does with a page: store it claimed if there is room in memory (marking what was
    handled meanwhile done in passing), then hand it over."""
    claimant = inbox.claimant(len(raws))
    done = inbox.take_done()
    new = await polling.store_updates(runtime, list(raws), claimed_by=claimant, done=done)
    inbox.done_written(done)
    inbox.stored(new, claimed=claimant is not None)


async def test_a_polled_page_is_handled_from_memory_without_a_claim_and_marked_done_together(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims: list[object] = []
    writes: list[list[int]] = []
    real_claim, real_done = store.claim_chat, store.mark_done

    async def claim_chat(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[1])
        return await real_claim(*args, **kwargs)

    async def mark_done(session: Any, update_ids: Any, now: Any) -> None:
        await _until(lambda: len(handlers.seen) == 9)  # the rest are handled while the first write waits
        writes.append(list(update_ids))
        await real_done(session, update_ids, now)

    monkeypatch.setattr(store, "claim_chat", claim_chat)
    monkeypatch.setattr(store, "mark_done", mark_done)
    await inbox.start()
    try:
        await _poll(runtime, inbox, *(_message(100 + n, 10 + n % 3) for n in range(9)))
        async with runtime.sessions() as session:  # stored claimed by this process's worker
            held = await session.scalars(select(InboxUpdate.claimed_by).where(InboxUpdate.update_id >= 100))
            assert set(held.all()) <= {inbox.worker, None}
        await _until(lambda: len(handlers.seen) == 9)
        await _until(lambda: sum(map(len, writes)) == 9)
        # the same page fetched again (the offset had not moved): stored once, handled once
        await _poll(runtime, inbox, *(_message(100 + n, 10 + n % 3) for n in range(9)))
    finally:
        await inbox.close()
    assert claims == []
    assert len(writes) <= 2  # what was handled while a write was under way goes in the next one
    assert sorted(handlers.seen) == list(range(100, 109))
    for chat in (10, 11, 12):
        mine = [u for u in handlers.seen if (u - 100) % 3 == chat - 10]
        assert mine == sorted(mine)  # each chat in order
    assert set((await _statuses(runtime)).values()) == {(InboxStatus.DONE, None)}


async def test_a_chats_rows_already_in_the_database_are_handled_before_its_new_ones(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers
) -> None:
    async with db.transaction(runtime.sessions) as session:  # left by a process that stopped
        old = [parse.incoming(_message(n, 10), runtime.keyring) for n in (1, 2, 3)]
        await store.add(session, old, utcnow(), claimed_by="in-gone", lease=processor.lease(runtime.settings))
        await store.release_all(session, "in-gone")
    await inbox.start()
    try:
        await _poll(runtime, inbox, _message(4, 10), _message(5, 11), _message(6, 10))
        await _until(lambda: len(handlers.seen) == 6)
    finally:
        await inbox.close()
    assert [u for u in handlers.seen if u != 5] == [1, 2, 3, 4, 6]
    assert set((await _statuses(runtime)).values()) == {(InboxStatus.DONE, None)}


@pytest.mark.parametrize(
    ("first_page", "second_page"),
    [
        # row 1 in hand: chat 11's rows wait in memory
        pytest.param([(1, 10)], [(2, 11), (3, 11)], id="in memory"),
        # rows 1 to 3 taken out of memory for one turn of chat 10, row 1 being handled
        pytest.param([(1, 10), (2, 10), (3, 10)], [], id="in hand"),
    ],
)
async def test_rows_held_are_claimed_again_after_the_presence_lock_was_lost(
    runtime: Runtime,
    handlers: _Handlers,
    first_page: list[tuple[int, int]],
    second_page: list[tuple[int, int]],
) -> None:
    """While this process's presence lock was gone, another process judged it gone, took rows it held (in
    memory, or in hand for a chat's turn) and handled them: once told (`lock_lost`), this one claims what
    is left from the database and does not handle those again."""
    started, release = asyncio.Event(), asyncio.Event()

    async def first_waits(update: Update) -> None:
        if update.update_id == 1:
            started.set()
            await release.wait()

    handlers.before = first_waits
    inbox = _one_chat_at_a_time(runtime, handlers)
    await inbox.start()
    try:
        await _poll(runtime, inbox, *(_message(*row) for row in first_page))
        await asyncio.wait_for(started.wait(), 30)
        if second_page:
            await _poll(runtime, inbox, *(_message(*row) for row in second_page))
        async with db.transaction(runtime.sessions) as session:  # the other process handled 2 and 3
            await store.mark_done(session, [2, 3], utcnow())
        inbox.lock_lost()
        release.set()
        await _poll(runtime, inbox, _message(4, 12))
        await _until(lambda: 4 in handlers.seen)
    finally:
        await inbox.close()
    assert handlers.seen == [1, 4]


async def _left_waiting(runtime: Runtime, raws: list[dict[str, object]]) -> None:
    """Rows left in the inbox by a process that has ended (a crash with a backlog)."""
    async with db.transaction(runtime.sessions) as session:
        rows = [parse.incoming(raw, runtime.keyring) for raw in raws]
        await store.add(session, rows, utcnow())


async def test_at_start_a_crisis_message_waiting_behind_other_chats_is_handled_first(
    runtime: Runtime, handlers: _Handlers
) -> None:
    """A backlog of thirty chats, the crisis message last: it is not handled in whatever order the chats
    come, but before them (one chat at a time here, so the order shows)."""
    await _left_waiting(runtime, [*(_message(n, n) for n in range(1, 31)), _message(31, 99, CRISIS)])
    inbox = _one_chat_at_a_time(runtime, handlers)
    await inbox.start()
    try:
        await _until(lambda: len(handlers.seen) == 31)
    finally:
        await inbox.close()
    assert handlers.seen[0] == 31


async def test_a_crisis_message_deep_in_a_backlog_is_found_while_the_others_are_served(
    runtime: Runtime, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiting rows are read while chats are served: the crisis chat goes next once its page is read,
    not after every chat before it."""
    monkeypatch.setattr(processor, "START_READ_PAGE", 5)
    monkeypatch.setattr(processor, "START_READ_WAIT_SECONDS", 0.0)  # chats are served from the start
    await _left_waiting(runtime, [*(_message(n, n) for n in range(1, 61)), _message(61, 99, CRISIS)])

    async def handled_slowly(update: Update) -> None:
        await asyncio.sleep(0.2)  # a slow Telegram round trip: the reader runs meanwhile

    handlers.before = handled_slowly
    inbox = _one_chat_at_a_time(runtime, handlers)
    await inbox.start()
    try:
        await _until(lambda: 61 in handlers.seen)
    finally:
        await inbox.close()
    assert len(handlers.seen) <= 5  # twelve pages to read; one chat handled meanwhile, perhaps a few


async def test_past_the_memory_bound_rows_are_stored_unclaimed_and_served_from_the_database(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "MEMORY_ROWS", 3)
    await inbox.start()
    gate = asyncio.Event()
    real = handlers.process_update

    async def held_up(update: Update) -> None:
        await gate.wait()
        await real(update)

    handlers.process_update = held_up  # type: ignore[method-assign]
    try:
        await _poll(runtime, inbox, _message(1, 10), _message(2, 10), _message(3, 11))
        assert inbox.claimant(1) is None and inbox.claimant(2) is None  # memory is full: stored unclaimed
        await _poll(runtime, inbox, _message(4, 10), _message(5, 12))
        statuses = await _statuses(runtime)
        # Row 4 waits behind its chat's rows held in memory; row 5's chat has none, so the database loop
        # may already have claimed it (a race the test must not depend on): pending either way.
        assert statuses[4] == (InboxStatus.PENDING, None) and statuses[5][0] is InboxStatus.PENDING
        gate.set()
        await _until(lambda: len(handlers.seen) == 5)
    finally:
        await inbox.close()
    assert [u for u in handlers.seen if u in (1, 2, 4)] == [1, 2, 4]
    assert set((await _statuses(runtime)).values()) == {(InboxStatus.DONE, None)}


async def test_closing_marks_what_was_handled_and_gives_back_what_was_not_begun(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers
) -> None:
    gate = asyncio.Event()
    real = handlers.process_update

    async def first_waits(update: Update) -> None:
        await real(update)
        if update.update_id == 1:
            await gate.wait()

    handlers.process_update = first_waits  # type: ignore[method-assign]
    await inbox.start()
    await _poll(runtime, inbox, _message(1, 10), _message(2, 10), _message(3, 10))
    await _until(lambda: handlers.seen == [1])
    closing = asyncio.create_task(inbox.close())
    await asyncio.sleep(0)
    gate.set()
    await closing
    statuses = await _statuses(runtime)
    assert statuses[1] == (InboxStatus.DONE, None)
    assert statuses[2] == (InboxStatus.PENDING, None) and statuses[3] == (InboxStatus.PENDING, None)


async def test_other_work_runs_between_two_rows_of_a_chat(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers
) -> None:
    """A flood's messages are handled without waiting on anything; the poller (here `other`, which needs
    three turns of the event loop) must not wait for a chat's twenty of them."""
    order: list[object] = []
    started: list[asyncio.Task[None]] = []

    async def other() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        order.append("other")

    async def record(update: Update) -> None:
        if not started:
            started.append(asyncio.create_task(other()))
        order.append(update.update_id)

    handlers.process_update = record  # type: ignore[method-assign]
    await inbox.start()
    try:
        await _poll(runtime, inbox, *(_message(n, 10) for n in range(1, 21)))
        await _until(lambda: len(order) == 21)
    finally:
        await inbox.close()
    assert order.index("other") < order.index(20)


async def test_a_row_being_handled_keeps_its_lease(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow handler (Telegram answering slowly) must not let the lease run out under it: another process
    would take the row and handle it again."""
    monkeypatch.setattr(runtime.settings, "inbox_lease_seconds", 0.6)

    async def lease_until() -> Any:
        async with runtime.sessions() as session:
            return await session.scalar(select(InboxUpdate.claimed_until).where(InboxUpdate.update_id == 1))

    async def slow(update: Update) -> None:
        first = await lease_until()
        for _ in range(200):
            if await lease_until() > first:
                handlers.seen.append(update.update_id)
                return
            await asyncio.sleep(0.05)

    handlers.process_update = slow  # type: ignore[method-assign]
    await inbox.start()
    try:
        await _poll(runtime, inbox, _message(1, 10))
        await _until(lambda: handlers.seen == [1])
    finally:
        await inbox.close()


async def test_rows_handled_are_marked_done_by_the_next_page_without_a_write_of_their_own(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "DONE_EVERY_SECONDS", 5.0)  # the recorder waits longer than this test
    await inbox.start()
    try:
        await _poll(runtime, inbox, _message(1, 10), _message(2, 11))
        await _until(lambda: len(handlers.seen) == 2)
        assert (await _statuses(runtime))[1] == (InboxStatus.PENDING, inbox.worker)
        await _poll(runtime, inbox, _message(3, 10))  # its transaction marks 1 and 2
        statuses = await _statuses(runtime)
        assert statuses[1] == statuses[2] == (InboxStatus.DONE, None)
        await _until(lambda: len(handlers.seen) == 3)
    finally:
        await inbox.close()


async def test_webhook_posts_at_once_are_written_together_and_handed_over_in_memory(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram posts several chats' updates at once: one transaction stores them all, and the processor
    takes them from memory (no claim), as it does the poller's pages."""
    writes: list[int] = []
    claims: list[object] = []
    real_add, real_claim = store.add, store.claim_chat

    async def add(session: Any, updates: Any, *args: Any, **kwargs: Any) -> list[int]:
        writes.append(len(updates))
        return await real_add(session, updates, *args, **kwargs)

    async def claim_chat(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[1])
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(store, "add", add)
    monkeypatch.setattr(store, "claim_chat", claim_chat)
    intake = grouped.GroupedIntake(runtime, inbox)
    await inbox.start()
    try:
        await asyncio.gather(*(intake.store(_message(200 + n, 20 + n)) for n in range(10)))
        await _until(lambda: len(handlers.seen) == 10)
    finally:
        await inbox.close()
    assert writes == [10]
    assert claims == []
    assert sorted(handlers.seen) == list(range(200, 210))


async def test_a_webhook_row_of_a_chat_with_rows_in_the_database_waits_for_them(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of the chat are pending in the database (another instance's, or left from before a restart): the
    new one is stored unclaimed and served from the database after them, never from memory ahead of them."""
    async with db.transaction(runtime.sessions) as session:
        await store.add(
            session, [parse.incoming(_message(n, 10), runtime.keyring) for n in (1, 2, 3)], utcnow()
        )
    unclaimed: list[object] = []
    real_add = store.add

    async def add(*args: Any, **kwargs: Any) -> list[int]:
        unclaimed.append(set(kwargs.get("unclaimed_chats", ())))
        return await real_add(*args, **kwargs)

    monkeypatch.setattr(store, "add", add)
    intake = grouped.GroupedIntake(runtime, inbox)
    await inbox.start()
    try:
        await intake.store(_message(4, 10))
        await intake.store(_message(5, 11))  # a chat with nothing pending: handed over in memory
        # chat 10 is stored unclaimed unless its rows were already in this worker's hands by then
        assert unclaimed[0] <= {runtime.keyring.pseudonym(10)} and unclaimed[1] == set()
        await _until(lambda: len(handlers.seen) == 5)
    finally:
        await inbox.close()
    assert [u for u in handlers.seen if u != 5] == [1, 2, 3, 4]


class _Intake:
    """Stands in for the processor beside the poller: records what it is told."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.behind: list[bool] = []

    def claimant(self, count: int) -> str | None:
        return None

    def held_full(self, chats: Any) -> set[int | None]:
        return set()

    def stored(self, rows: Any, *, claimed: bool) -> None:
        self.ids += [row.update_id for row in rows]

    def served_from_database(self, chat_id: int | None) -> bool:
        return False

    def take_done(self) -> list[int]:
        return []

    def done_written(self, update_ids: Any) -> None:
        pass

    def done_not_written(self, update_ids: Any) -> None:
        pass

    def intake_behind(self, behind: bool) -> None:
        self.behind.append(behind)


async def test_the_poller_stores_each_page_and_asks_for_the_next_without_screening_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch loop does only what durability needs: store the page, move the offset, hand it over. The
    risk screen (the semantic layer's read of a page included) is the processor's, off the loop that asks
    Telegram for what comes behind a flood; the processor is told while pages come back full."""
    screened: list[int] = []
    detector = runtime.content.risk
    for name in ("prime", "screen_many", "screen"):
        monkeypatch.setattr(detector, name, lambda texts, *args: screened.append(len(texts)))
    intake = _Intake()
    async with TelegramStandIn(token=TEST_TOKEN) as telegram:
        for number in range(250):
            await telegram.send_text(5000 + number % 2, f"hello again {number}")
        async with Bot(TEST_TOKEN, base_url=f"{telegram.base_url}/bot") as bot:
            poller = polling.Poller(runtime, bot, cast(polling.Intake, intake), timeout=0)
            polling_task = asyncio.create_task(poller.run())
            try:
                await _until(lambda: telegram.pending_updates == 0 and len(intake.ids) == 250)
            finally:
                poller.stop()
                await polling_task
    assert screened == []
    assert intake.behind[:3] == [True, True, False]  # pages of 100, 100, 50
    async with runtime.sessions() as session:
        assert len((await session.scalars(select(InboxUpdate.update_id))).all()) == 250


async def test_while_the_intake_is_behind_a_chat_with_a_backlog_waits_and_a_new_chat_does_not(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While pages come back full (Telegram has more waiting: a crisis message may be behind the flood), a
    chat with a claim's worth of rows waiting is left for later; a chat with one new message is handled at
    once. Once the intake has caught up, the backlog is handled, in order."""
    await inbox.start()
    try:
        inbox.intake_behind(True)
        await _poll(runtime, inbox, *(_message(100 + n, 10) for n in range(processor.ROWS_PER_CLAIM + 5)))
        await _poll(runtime, inbox, _message(200, 11))
        await _until(lambda: 200 in handlers.seen)
        await asyncio.sleep(0.2)
        assert handlers.seen == [200]
        inbox.intake_behind(False)
        await _until(lambda: len(handlers.seen) == processor.ROWS_PER_CLAIM + 6)
    finally:
        await inbox.close()
    assert handlers.seen[1:] == list(range(100, 100 + processor.ROWS_PER_CLAIM + 5))


async def test_a_backlog_waits_for_the_intake_a_bounded_time_only(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intake that never catches up (pages full for ever) does not starve a flooding chat: it waits
    FLOOD_DEFER_SECONDS at a time, then a claim's worth of its rows is handled."""
    monkeypatch.setattr(processor, "FLOOD_DEFER_SECONDS", 0.3)
    await inbox.start()
    try:
        inbox.intake_behind(True)
        await _poll(runtime, inbox, *(_message(100 + n, 10) for n in range(processor.ROWS_PER_CLAIM + 5)))
        await _until(lambda: len(handlers.seen) == processor.ROWS_PER_CLAIM + 5)
    finally:
        await inbox.close()
    assert handlers.seen == list(range(100, 100 + processor.ROWS_PER_CLAIM + 5))


async def test_a_chat_with_its_share_of_memory_has_its_new_rows_served_from_the_database_in_order(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood waiting for the intake cannot fill the memory for everyone: past MEMORY_ROWS_PER_CHAT rows
    of one chat held, the poller stores that chat's new rows unclaimed (served from the database after
    the rows held), and other chats' rows still go to memory."""
    monkeypatch.setattr(processor, "MEMORY_ROWS_PER_CHAT", processor.ROWS_PER_CLAIM)
    poller = polling.Poller(runtime, cast(Bot, None), inbox, timeout=0)
    await inbox.start()
    try:
        inbox.intake_behind(True)
        await poller._keep([_message(100 + n, 10) for n in range(processor.ROWS_PER_CLAIM)])
        assert not inbox.served_from_database(runtime.keyring.pseudonym(10))
        await poller._keep([_message(200, 10), _message(201, 11)])  # a full page would say it is behind
        assert inbox.served_from_database(runtime.keyring.pseudonym(10))
        assert not inbox.served_from_database(runtime.keyring.pseudonym(11))
        await _until(lambda: len(handlers.seen) == processor.ROWS_PER_CLAIM + 2)
    finally:
        await inbox.close()
    assert [u for u in handlers.seen if u != 201] == [*range(100, 100 + processor.ROWS_PER_CLAIM), 200]
    assert set((await _statuses(runtime)).values()) == {(InboxStatus.DONE, None)}


def _crisis(update_id: int, chat_id: int) -> dict[str, object]:
    raw = _message(update_id, chat_id)
    message = raw["message"]
    assert isinstance(message, dict)
    message["text"] = "I am going to kill myself tonight"
    return raw


async def test_the_other_chats_give_way_while_a_crisis_message_is_handled(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the intake catches up with a flood, dozens of chats' messages are handled together: a crisis
    message among them is handled first, the other chats' next messages waiting for it (bounded:
    GIVE_WAY_SECONDS, made long here so that only the order is seen)."""
    monkeypatch.setattr(processor, "GIVE_WAY_SECONDS", 600.0)
    release = asyncio.Event()
    gave_way: list[object] = []
    real_give_way = runtime.precedence.give_way

    async def give_way(seconds: float) -> None:
        gave_way.append(runtime.precedence.held)
        await real_give_way(seconds)

    async def record(update: Update) -> None:
        handlers.seen.append(update.update_id)
        if update.update_id == 1:
            await release.wait()

    monkeypatch.setattr(runtime.precedence, "give_way", give_way)
    handlers.process_update = record  # type: ignore[method-assign]
    await inbox.start()
    try:
        await _poll(runtime, inbox, _crisis(1, 10), _message(2, 11), _message(3, 12))
        await _until(lambda: gave_way.count(True) == 2)  # both others wait while the crisis is handled
        assert handlers.seen == [1]
        release.set()
        await _until(lambda: len(handlers.seen) == 3)
    finally:
        await inbox.close()
    assert not runtime.precedence.held
    assert sorted(handlers.seen[1:]) == [2, 3]


async def test_a_crisis_message_never_waits_for_another_chats_crisis(
    runtime: Runtime, inbox: processor.InboxProcessor, handlers: _Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the hold on the others is limited to once a minute per chat: a chat whose message pages, even
    one that made the others wait a moment ago, is handled while another chat's crisis is, not after it."""
    monkeypatch.setattr(processor, "GIVE_WAY_SECONDS", 600.0)
    release = asyncio.Event()

    async def record(update: Update) -> None:
        handlers.seen.append(update.update_id)
        if update.update_id == 2:
            await release.wait()

    handlers.process_update = record  # type: ignore[method-assign]
    await inbox.start()
    try:
        await _poll(runtime, inbox, _crisis(1, 11))  # chat 11 goes first once: its minute has begun
        await _until(lambda: handlers.seen == [1])
        await _poll(runtime, inbox, _crisis(2, 10), _crisis(3, 11))
        await _until(lambda: 3 in handlers.seen)  # chat 11's second crisis does not wait for chat 10's
        assert 2 in handlers.seen
        release.set()
    finally:
        release.set()
        await inbox.close()
    assert not runtime.precedence.held
