"""Audit the detector on labelled messages: recall per level, false alarms on harmless ones, every miss.

The file is tab-separated with a header naming the columns `level`, `category` and `text`. A message
labelled at a level counts as found when it is screened at that level or above (an imminent message screened
high is a miss; a high one screened imminent is found). A false alarm is a `none` message screened high or
imminent, the levels that page a counselor.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.risk.detector import Detector, Screening
from bot.risk.levels import RiskLevel

ALARM = RiskLevel.HIGH
COLUMNS = ("level", "category", "text")


class EvalFileError(ValueError):
    pass


@dataclass(frozen=True)
class Labelled:
    line: int
    level: RiskLevel
    category: str
    text: str


@dataclass(frozen=True)
class Outcome:
    item: Labelled
    result: Screening

    @property
    def missed(self) -> bool:
        return self.item.level > RiskLevel.NONE and self.result.level < self.item.level

    @property
    def false_alarm(self) -> bool:
        return self.item.level is RiskLevel.NONE and self.result.level >= ALARM


@dataclass
class Evaluation:
    outcomes: list[Outcome] = field(default_factory=list)
    microseconds: list[float] = field(default_factory=list)

    def count(self, level: RiskLevel) -> int:
        return sum(1 for o in self.outcomes if o.item.level is level)

    def recall(self, level: RiskLevel) -> float | None:
        total = self.count(level)
        if not total:
            return None
        found = sum(1 for o in self.outcomes if o.item.level is level and not o.missed)
        return found / total

    @property
    def false_alarm_rate(self) -> float | None:
        total = self.count(RiskLevel.NONE)
        return sum(1 for o in self.outcomes if o.false_alarm) / total if total else None

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.missed or o.false_alarm]

    @property
    def median_microseconds(self) -> float:
        return statistics.median(self.microseconds) if self.microseconds else 0.0

    def summary(self) -> dict[str, object]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "messages": len(self.outcomes),
            "recall": {
                level.label: rounded(self.recall(level))
                for level in (RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.MODERATE)
            },
            "counts": {level.label: self.count(level) for level in reversed(RiskLevel)},
            "false_alarm_rate": rounded(self.false_alarm_rate),
            "false_alarms": sum(1 for o in self.outcomes if o.false_alarm),
            "missed": sum(1 for o in self.outcomes if o.missed),
            "median_us": round(self.median_microseconds, 1),
        }


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


def evaluate(detector: Detector, items: Iterable[Labelled]) -> Evaluation:
    evaluation = Evaluation()
    for item in items:
        started = time.perf_counter()
        result = detector.screen(item.text)
        evaluation.microseconds.append((time.perf_counter() - started) * 1e6)
        evaluation.outcomes.append(Outcome(item, result))
    return evaluation
