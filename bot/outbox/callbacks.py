"""The outbox keys of a turn's own replies when they go through the outbox (an urgent turn's, or those a
failed delivery left): "reply:UPDATE:INDEX". Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.callbacks import COUNT, NUMBER, Codec


@dataclass(frozen=True)
class ReplyKey:
    """One row per update and place among its replies: a turn retried sends nothing twice."""

    update_id: int
    index: int


REPLY_KEY = Codec("reply:{update_id}:{index}", ReplyKey, limit=None, update_id=NUMBER, index=COUNT)
