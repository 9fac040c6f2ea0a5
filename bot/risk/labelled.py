"""Labelled messages: a tab-separated file with a header naming the columns `level`, `category`, `text`.

The format of `python -m bot risk eval` files and of the model's training examples in content/.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bot.risk.levels import RiskLevel

COLUMNS = ("level", "category", "text")


class EvalFileError(ValueError):
    pass


@dataclass(frozen=True)
class Labelled:
    line: int
    level: RiskLevel
    category: str
    text: str


def read_labelled(path: Path) -> list[Labelled]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != list(COLUMNS):
            raise EvalFileError(f"{path}:1: the first line must name the columns: level, category, text")
        items: list[Labelled] = []
        for number, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise EvalFileError(f"{path}:{number}: expected 3 tab-separated columns, found {len(row)}")
            try:
                level = RiskLevel.parse(row[0])
            except KeyError:
                raise EvalFileError(
                    f"{path}:{number}: level {row[0]!r} is not one of imminent, high, moderate, none"
                ) from None
            items.append(Labelled(number, level, row[1].strip(), "\t".join(row[2:])))
    return items
