"""What one process remembers about updates without the database."""

from __future__ import annotations

from collections import OrderedDict

ANSWERED_MEMORY = 10_000  # update ids remembered as answered without the database


class AnsweredWithoutDatabase:
    """Update ids whose crisis reply went out while the database could not be used, so the handler, once the
    database is back, records and pages but does not send the same reply again. Bounded; per process."""

    def __init__(self, size: int = ANSWERED_MEMORY) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def add(self, update_id: int) -> None:
        self._ids[update_id] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, update_id: object) -> bool:
        return update_id in self._ids
