"""How handling one inbox update went, shared between the inbox processor, the turn and the error handler
(a context variable: each update is handled in its own task)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Outcome:
    """What handling one inbox update came to; the error handler fills in `error`."""

    update_id: int
    error: str | None = None
    reference: str | None = None  # the id the error handler logged, for the apology
    marked: bool = False  # a turn handling it committed (an error after that is not retried)


CURRENT: ContextVar[Outcome | None] = ContextVar("inbox_outcome", default=None)
