"""Long polling that loses nothing: what `getUpdates` returns is stored in the inbox before the next call's
offset tells Telegram it arrived. If the inbox cannot be written, the offset stays where it is (Telegram keeps
the updates and sends them again), and an imminent-risk message among them gets its crisis reply from
content at once.

python-telegram-bot's own updater acknowledges updates before they are handled, so it is not used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from bot.core.db import transaction
from bot.core.models import utcnow
from bot.intake import parse, processor, store

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 100  # Telegram's largest getUpdates page
RETRY_SECONDS = (0.5, 1, 2, 5, 10)  # waits between tries after a failure, the last one repeated


async def store_updates(
    runtime: Runtime,
    raws: list[Any],
    *,
    claimed_by: str | None = None,
    done: Sequence[int] = (),
    unclaimed: Callable[[Collection[int | None]], Collection[int | None]] | None = None,
) -> list[store.Incoming]:
    """Write the updates to the inbox; return those that were new. Bodies that are not updates are dropped
    with a log line (they never will be). With `claimed_by`, the new rows are stored claimed by that worker
    (the processor takes them from memory), except those of the chats `unclaimed` names among theirs. The
    rows `done` (handled) are marked so in passing."""
    rows = parse.unique(raws, runtime.keyring)
    shared = () if unclaimed is None else unclaimed({row.chat_key for row in rows})
    async with transaction(runtime.sessions) as session:
        now = utcnow()
        new = set(
            await store.add(
                session,
                rows,
                now,
                claimed_by=claimed_by,
                lease=processor.lease(runtime.settings),
                unclaimed_chats=shared,
            )
        )
        if done:
            await store.mark_done(session, done, now)
    return [row for row in rows if row.update_id in new]


class Intake(Protocol):
    """What the poller tells the processor (bot.intake.processor.InboxProcessor)."""

    def claimant(self, count: int) -> str | None: ...

    def held_full(self, chats: Collection[int | None]) -> set[int | None]: ...

    def stored(self, rows: Sequence[store.Incoming], *, claimed: bool) -> None: ...

    def served_from_database(self, chat_id: int | None) -> bool: ...

    def take_done(self) -> list[int]: ...

    def done_written(self, update_ids: Sequence[int]) -> None: ...

    def done_not_written(self, update_ids: Sequence[int]) -> None: ...

    def intake_behind(self, behind: bool) -> None: ...


class Poller:
    """`run()` until `stop()`. Each batch is stored claimed by the processor when it has room for it in
    memory, and handed to it once safely in the inbox (else stored unclaimed, and the chats named)."""

    def __init__(self, runtime: Runtime, bot: Bot, intake: Intake, *, timeout: int) -> None:
        self.runtime = runtime
        self.bot = bot
        self.intake = intake
        self.timeout = timeout
        self._offset: int | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def start(self) -> None:
        """Take over from any webhook (updates stay queued at Telegram); raises on a bad token."""
        await self.bot.delete_webhook(drop_pending_updates=False)

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                raws = await self._fetch()
            except InvalidToken:
                raise
            except (NetworkError, Conflict, TelegramError) as error:
                failures += 1
                log.warning("event=intake.poll_failed kind=%s", type(error).__name__)
                self.intake.intake_behind(False)  # nothing comes in meanwhile: handle what is stored
                await self._pause(failures)
                continue
            failures = 0
            if not raws:
                self.intake.intake_behind(False)
            elif not await self._keep(raws):
                return  # stopping before the batch could be stored: Telegram still has it

    async def _fetch(self) -> list[Any]:
        """One getUpdates call, its JSON kept as it came (PTB's get_updates would parse every update only for
        it to be written back to JSON)."""
        fetch = asyncio.ensure_future(
            self.bot.do_api_request(
                "getupdates",  # Bot API method names are case-insensitive; PTB warns on its own spelling
                api_kwargs={
                    "offset": self._offset,
                    "timeout": self.timeout,
                    "limit": BATCH,
                    "allowed_updates": list(Update.ALL_TYPES),
                },
                read_timeout=self.timeout + 10,
            )
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not fetch.done():
            fetch.cancel()  # stopping: what this call would have returned stays at Telegram
            stopping.cancel()
            return []
        stopping.cancel()
        result = fetch.result()
        return result if isinstance(result, list) else []

    async def _keep(self, raws: list[Any]) -> bool:
        """Store the batch, trying until it works; move the offset past it only then."""
        failures = 0
        while True:
            claimant = self.intake.claimant(len(raws))
            done = self.intake.take_done()
            full: set[int | None] = set()  # chats whose new rows are stored unclaimed (memory share held)

            def unclaimed(chats: Collection[int | None], full: set[int | None] = full) -> set[int | None]:
                full.update(self.intake.held_full(chats))
                return full

            try:
                new = await store_updates(
                    self.runtime, raws, claimed_by=claimant, done=done, unclaimed=unclaimed
                )
                self.intake.done_written(done)
                break
            except Exception as error:
                self.intake.done_not_written(done)
                failures += 1
                log.error("event=intake.store_failed count=%d kind=%s", len(raws), type(error).__name__)
                for raw in raws:
                    if isinstance(raw, dict):
                        await processor.answer_crisis_without_database(self.runtime, self.bot, raw)
                if self._stopping.is_set():
                    return False
                await self._pause(failures)
        ids = [
            raw["update_id"]
            for raw in raws
            if isinstance(raw, dict) and isinstance(raw.get("update_id"), int)
        ]
        if ids:
            self._offset = max(ids) + 1
        if claimant is None:
            self.intake.stored(new, claimed=False)
        else:  # a chat with its share of memory held already is served from the database
            self.intake.stored([row for row in new if row.chat_key in full], claimed=False)
            self.intake.stored([row for row in new if row.chat_key not in full], claimed=True)
        self.intake.intake_behind(len(raws) >= BATCH)
        return True

    async def _pause(self, failures: int) -> None:
        wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]
        try:
            async with asyncio.timeout(wait):
                await self._stopping.wait()
        except TimeoutError:
            pass
