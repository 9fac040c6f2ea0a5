"""Risk screening of what patients type.

Every place that takes free text from a patient (check-in notes, the "other" trigger, anything typed to the
bot) calls `screen` first. The risk issue fills it in: a lexicon kept in content/, crisis responses, the
C-SSRS screener and escalation to the care team. Until then it finds nothing, and says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RiskLevel(enum.IntEnum):
    NONE = 0
    LOW = 1
    HIGH = 2
    IMMINENT = 3


@dataclass(frozen=True)
class Screening:
    level: RiskLevel


def screen(text: str, *, language: str) -> Screening:
    """How worried to be about `text` (not yet implemented: always NONE)."""
    return Screening(RiskLevel.NONE)
