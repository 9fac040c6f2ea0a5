"""The words risk rules speak in: levels, categories and the follow-up question a signal calls for."""

from __future__ import annotations

import enum


class RiskLevel(enum.IntEnum):
    NONE = 0
    MODERATE = 1
    HIGH = 2
    IMMINENT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> RiskLevel:
        return cls[value.strip().upper()]


class Category(enum.StrEnum):
    SUICIDE = "suicide"
    SELF_HARM = "self_harm"
    OVERDOSE = "overdose"
    HARM_OTHERS = "harm_others"
    RELAPSE = "relapse"
    USE_PLAN = "use_plan"
    DANGER = "danger"
    CRAVING = "craving"
    HOPELESS = "hopeless"
    PATIENT_REQUEST = "patient_request"  # the patient asked for their care team now (/sos), no words needed


class FollowUp(enum.StrEnum):
    """What the bot asks next: the C-SSRS screener after anything suicide-adjacent, or a plain 'are you
    safe right now?' when an imminent signal was softened by its context (negated, past, someone else's, a
    joke)."""

    CSSRS = "cssrs"
    SAFETY_CHECK = "safety_check"


class Context(enum.StrEnum):
    """Why a match counts for less than its lexicon level."""

    NEGATED = "negated"
    PAST = "past"
    OTHER_PERSON = "other_person"
    HYPERBOLE = "hyperbole"
    HUMOR = "humor"
