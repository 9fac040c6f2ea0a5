"""Webhook intake written together: Telegram posts up to max_connections updates at once (one per chat at a
time), and each must be stored before it is answered. Whoever arrives while a write is under way waits for the
next one, which takes everyone waiting: one transaction, one commit (on SQLite, one sync to disk) for many,
and a flooding chat's updates cannot queue everyone else's behind their own commits.

A new row is stored claimed by this process's inbox processor and handed to it in memory (no claim to write)
when nothing of its chat is pending that the processor does not hold: then nothing of that chat can be handled
ahead of it. Otherwise (another instance holds the chat, or a row of it waits for a retry) it is stored
unclaimed and served from the database in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.core.db import transaction
from bot.core.models import utcnow
from bot.intake import parse, polling, store
from bot.intake.processor import lease, prime

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MOST = 200  # updates in one write at most


async def store_claiming(
    runtime: Runtime,
    raws: Sequence[Any],
    worker: str | None,
    done: Sequence[int] = (),
    *,
    pending_elsewhere: Callable[[int | None], bool] | None = None,
) -> tuple[list[store.Incoming], list[store.Incoming]]:
    """Store `raws` in one transaction; return the new rows (claimed by `worker`, to hand over in memory;
    not claimed, to serve from the database). Without a worker, none is claimed. The rows `done` (handled)
    are marked so in passing. Which chats have pending rows the worker does not hold: the database says, or
    `pending_elsewhere` when the process knows (SQLite serves one process: its processor knows them all)."""
    rows = parse.unique(raws, runtime.keyring)
    chats = {row.chat_key for row in rows}
    async with transaction(runtime.sessions) as session:
        now = utcnow()
        if worker is None:
            shared = chats
        elif pending_elsewhere is not None:
            shared = {chat for chat in chats if chat is None or pending_elsewhere(chat)}
        else:
            shared = await store.chats_not_held(session, chats, worker, now)
        new = set(
            await store.add(
                session, rows, now, claimed_by=worker, lease=lease(runtime.settings), unclaimed_chats=shared
            )
        )
        if done:
            await store.mark_done(session, done, now)
    fresh = [row for row in rows if row.update_id in new]
    return [r for r in fresh if r.chat_key not in shared], [r for r in fresh if r.chat_key in shared]


class GroupedIntake:
    """`await store(update)` returns once the update is in the inbox (and handed to `intake`), or raises
    what the write raised (the caller answers 503, and Telegram posts it again)."""

    def __init__(self, runtime: Runtime, intake: polling.Intake) -> None:
        self.runtime = runtime
        self.intake = intake
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._one_process = intake.served_from_database if runtime.engine.dialect.name == "sqlite" else None

    async def store(self, raw: dict[str, Any]) -> None:
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((raw, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="webhook-intake")
        await asyncio.shield(written)  # a request given up on is still written with the others

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MOST], self._waiting[MOST:]
            handled = self.intake.take_done()
            try:
                claimed, shared = await store_claiming(
                    self.runtime,
                    [raw for raw, _ in batch],
                    self.intake.claimant(len(batch)),
                    handled,
                    pending_elsewhere=self._one_process,
                )
                self.intake.done_written(handled)
            except Exception as error:
                self.intake.done_not_written(handled)
                for _, written in batch:
                    if not written.done():
                        written.set_exception(error)
                        written.exception()  # retrieved: a request given up on must not log it as lost
                continue
            prime(self.runtime, [raw for raw, _ in batch])
            self.intake.stored(shared, claimed=False)
            self.intake.stored(claimed, claimed=True)
            for _, written in batch:
                if not written.done():
                    written.set_result(None)
