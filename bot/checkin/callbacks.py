"""The check-in's button data ("ci:..."), /history's ("hist:..."), and the keys of check-in prompts in the
outbox. Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.checkin.rules import Question
from bot.core.callbacks import ID, Codec, Part, choice, word

TRIGGER_FIELD = "trig"  # toggles and Done on the trigger list ("triggers" is the question, for its Skip)
HISTORY_WINDOWS = (14, 30)  # days /history shows; each has its button


@dataclass(frozen=True)
class CheckinButton:
    """An answer to a check-in question: `field` is the question (or TRIGGER_FIELD), `value` a number, a
    choice, "skip", or a trigger to tick (or "done")."""

    checkin_id: int
    field: str
    value: str


CHECKIN = Codec(
    "ci:{checkin_id}:{field}:{value}",
    CheckinButton,
    checkin_id=ID,
    field=choice(TRIGGER_FIELD, *Question),
    value=word(r"[a-z0-9_]{1,16}"),
)


@dataclass(frozen=True)
class HistoryButton:
    days: int


HISTORY = Codec(
    "hist:{days}",
    HistoryButton,
    days=Part("|".join(map(str, HISTORY_WINDOWS)), int),
)


@dataclass(frozen=True)
class PromptKey:
    """A check-in question the bot sent on its own: the scheduled prompt or the nudge, once per check-in."""

    kind: str
    checkin_id: int


PROMPT_KINDS = ("checkin_prompt", "checkin_nudge")
PROMPT_KEY = Codec("{kind}:{checkin_id}", PromptKey, limit=None, kind=choice(*PROMPT_KINDS), checkin_id=ID)
