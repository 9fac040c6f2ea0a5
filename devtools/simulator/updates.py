"""The bot's update queue: update ids, allowed_updates, getUpdates long polling with offsets."""

from __future__ import annotations

import itertools
import secrets
import time
from collections import OrderedDict
from typing import Any

from .errors import conflict
from .sync import Pulse, wait_until

ALL_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
        "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query",
        "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
    }
)  # fmt: skip
# Telegram's default when allowed_updates was never given (or given as []).
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}
# Like Telegram, each stand-in starts its update ids at a number of its own: two stand-ins (two tests, a
# restarted demo) sharing one bot database never hand out the same id for different updates.
FIRST_UPDATE_IDS = (100_000_001, 900_000_000)
MAX_LIMIT = 100

OTHER_POLL = "terminated by other getUpdates request; make sure that only one bot instance is running"
BY_WEBHOOK = "terminated by setWebhook request"


class UpdateQueue:
    """Updates waiting for the bot. An update stays until confirmed (offset) or delivered (webhook). Update
    ids are consecutive: the webhook reads the queue by id (`next_id`, `get`), chat by chat."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._next_id = secrets.randbelow(FIRST_UPDATE_IDS[1] - FIRST_UPDATE_IDS[0]) + FIRST_UPDATE_IDS[0]
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.allowed_list: list[str] | None = None
        self.changed = Pulse()
        self._poll_generation = 0
        self._terminated_reason = OTHER_POLL
        self.closing = False

    # ------------------------------------------------------------------ producing
    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update; returns its update_id, or None when allowed_updates filters it out."""
        if kind not in self.allowed:
            return None
        update_id = self._next_id
        self._next_id += 1
        self._pending[update_id] = {"update_id": update_id, kind: payload}
        self.changed.fire()
        return update_id

    def set_allowed(self, allowed: Any) -> None:
        """Apply an ``allowed_updates`` parameter: None keeps the current setting, [] restores the default."""
        if allowed is None:
            return
        if not isinstance(allowed, list):
            return
        wanted = frozenset(a for a in allowed if isinstance(a, str) and a in ALL_UPDATE_TYPES)
        self.allowed = wanted or DEFAULT_UPDATE_TYPES
        self.allowed_list = sorted(wanted) if wanted else None

    # ------------------------------------------------------------------ consuming
    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def next_id(self) -> int:
        """The id the next update will get (every id below it was given out)."""
        return self._next_id

    def first_id(self) -> int | None:
        return next(iter(self._pending), None)

    def get(self, update_id: int) -> dict[str, Any] | None:
        """The update with that id while it is pending."""
        return self._pending.get(update_id)

    def confirm(self, offset: int) -> None:
        """getUpdates ``offset``: forget every update before it (negative: keep only the last -offset)."""
        if offset > 0:
            while self._pending and next(iter(self._pending)) < offset:
                self._pending.popitem(last=False)
        elif offset < 0:
            while len(self._pending) > -offset:
                self._pending.popitem(last=False)

    def remove(self, update_id: int) -> None:
        """Delivered (webhook): gone, wherever it is in the queue."""
        self._pending.pop(update_id, None)

    def drop_all(self) -> None:
        self._pending.clear()

    def terminate_polls(self, reason: str) -> None:
        """Make the pending getUpdates (if any) fail with 409 Conflict ``reason``."""
        self._poll_generation += 1
        self._terminated_reason = reason
        self.changed.fire()

    def reopen(self) -> None:
        self.closing = False

    def close(self) -> None:
        """Release every waiting getUpdates with an empty result (server shutting down)."""
        self.closing = True
        self.changed.fire()

    async def poll(self, offset: int | None, limit: int, wait_s: float) -> list[dict[str, Any]]:
        # A newer getUpdates terminates an older one that is still waiting, like Telegram does.
        self.terminate_polls(OTHER_POLL)
        me = self._poll_generation
        if offset:
            self.confirm(offset)
        limit = MAX_LIMIT if limit <= 0 or limit > MAX_LIMIT else limit
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            event = self.changed.current()
            if me != self._poll_generation:
                raise conflict(self._terminated_reason)
            if self.closing:
                return []
            if self._pending:
                return list(itertools.islice(self._pending.values(), limit))
            if time.monotonic() >= deadline:
                return []
            await wait_until(event, deadline)
