"""A questionnaire's answer buttons ("ms:..."), and the keys of its questions in the outbox. Written and read
only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.callbacks import COUNT, ID, Codec, Part, choice, word


@dataclass(frozen=True)
class MeasureButton:
    """The answer `value` (an option's value, as content gives it) to item `item` of questionnaire
    `measure_id`."""

    measure_id: int
    item: str
    value: int


MEASURE = Codec(
    "ms:{measure_id}:{item}:{value}",
    MeasureButton,
    measure_id=ID,
    item=word(r"[a-z0-9]{1,12}"),
    value=Part(r"[0-9]{1,2}", int),
)


@dataclass(frozen=True)
class PromptKey:
    """A question the bot sent on its own: the first one of a scheduled questionnaire ("measure_prompt"), the
    current one sent again at a later check-in time ("measure_resume", once per local day, `day` its ordinal),
    or the first one of a questionnaire a counselor sent ("measure_sent")."""

    kind: str
    measure_id: int
    day: int


PROMPT_KINDS = ("measure_prompt", "measure_resume", "measure_sent")
PROMPT_KEY = Codec(
    "{kind}:{measure_id}:{day}", PromptKey, limit=None, kind=choice(*PROMPT_KINDS), measure_id=ID, day=COUNT
)


@dataclass(frozen=True)
class DoneKey:
    """The notice to the counselor who sent a questionnaire, once it is answered."""

    measure_id: int


DONE_KEY = Codec("measure_done:{measure_id}", DoneKey, limit=None, measure_id=ID)
