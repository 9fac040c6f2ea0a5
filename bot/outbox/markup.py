"""Inline keyboards as plain data: the (label, callback data) rows that handlers and jobs build and the outbox
stores. The dispatcher turns them into Telegram's markup."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Button = tuple[str, str]  # (label, callback_data)
Rows = Sequence[Sequence[Button]]


def scale_rows(data: Callable[[str], str], low: int, high: int, skip_label: str) -> list[list[Button]]:
    """A rating scale as buttons (each with `data("N")`), at most six to a row, and Skip (`data("skip")`)
    below."""
    numbers = [(str(n), data(str(n))) for n in range(low, high + 1)]
    half = (len(numbers) + 1) // 2 if len(numbers) > 6 else len(numbers)
    rows = [numbers[:half], numbers[half:]] if half < len(numbers) else [numbers]
    return [*rows, [(skip_label, data("skip"))]]
