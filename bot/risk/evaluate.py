"""Audit the detector on labelled messages: recall per level, false alarms on harmless ones, every miss.

The file is tab-separated with a header naming the columns `level`, `category` and `text`. A message
labelled at a level counts as found when it is screened at that level or above (an imminent message screened
high is a miss; a high one screened imminent is found). A false alarm is a `none` message screened high or
imminent, the levels that page a counselor.

Not every miss goes unanswered: a message screened below its level may still be asked about (the C-SSRS
screener, or "are you safe right now?", from a softened rule or the semantic layer). `paged` counts the high
and imminent messages that page the care team, `reached` those paged or asked about; `questions_on_none`
the harmless ones asked about.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.risk.detector import Detector, Screening
from bot.risk.labelled import EvalFileError, Labelled, read_labelled
from bot.risk.levels import RiskLevel

__all__ = ["EvalFileError", "Evaluation", "Labelled", "Outcome", "evaluate", "read_labelled"]

ALARM = RiskLevel.HIGH


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

    @property
    def asked(self) -> bool:
        """A question follows (and nobody is paged): what the patient answers decides."""
        return self.result.follow_up is not None and self.result.level < ALARM

    @property
    def reached(self) -> bool:
        return self.result.level >= ALARM or self.asked


@dataclass
class Evaluation:
    outcomes: list[Outcome] = field(default_factory=list)
    microseconds: list[float] = field(default_factory=list)
    cpu_microseconds: list[float] = field(
        default_factory=list
    )  # this process's CPU time: less the machine's load

    def count(self, level: RiskLevel) -> int:
        return sum(1 for o in self.outcomes if o.item.level is level)

    def recall(self, level: RiskLevel) -> float | None:
        total = self.count(level)
        if not total:
            return None
        found = sum(1 for o in self.outcomes if o.item.level is level and not o.missed)
        return found / total

    def paged(self, level: RiskLevel) -> float | None:
        """The share of messages labelled `level` that page the care team (screened high or imminent)."""
        total = self.count(level)
        if not total:
            return None
        return sum(1 for o in self.outcomes if o.item.level is level and o.result.level >= ALARM) / total

    def reached(self, level: RiskLevel) -> float | None:
        total = self.count(level)
        if not total:
            return None
        return sum(1 for o in self.outcomes if o.item.level is level and o.reached) / total

    @property
    def question_rate(self) -> float | None:
        total = self.count(RiskLevel.NONE)
        if not total:
            return None
        return sum(1 for o in self.outcomes if o.item.level is RiskLevel.NONE and o.asked) / total

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

    @property
    def p99_microseconds(self) -> float:
        return _p99(self.microseconds)

    @property
    def cpu_p99_microseconds(self) -> float:
        return _p99(self.cpu_microseconds)

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
            "paged": {
                level.label: rounded(self.paged(level)) for level in (RiskLevel.IMMINENT, RiskLevel.HIGH)
            },
            "reached": {
                level.label: rounded(self.reached(level)) for level in (RiskLevel.IMMINENT, RiskLevel.HIGH)
            },
            "false_alarm_rate": rounded(self.false_alarm_rate),
            "questions_on_none": rounded(self.question_rate),
            "false_alarms": sum(1 for o in self.outcomes if o.false_alarm),
            "missed": sum(1 for o in self.outcomes if o.missed),
            "median_us": round(self.median_microseconds, 1),
            "p99_us": round(self.p99_microseconds, 1),
            "cpu_p50_us": round(statistics.median(self.cpu_microseconds), 1)
            if self.cpu_microseconds
            else 0.0,
            "cpu_p99_us": round(self.cpu_p99_microseconds, 1),
        }


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def evaluate(detector: Detector, items: Iterable[Labelled]) -> Evaluation:
    evaluation = Evaluation()
    for item in items:
        started, cpu = time.perf_counter(), time.thread_time()
        result = detector.screen(item.text)
        evaluation.microseconds.append((time.perf_counter() - started) * 1e6)
        evaluation.cpu_microseconds.append((time.thread_time() - cpu) * 1e6)
        evaluation.outcomes.append(Outcome(item, result))
    return evaluation
