"""Button data of the patient's "what would help?" choices after an emotional message ("care:talk",
"care:lines"), and the outbox keys of the care team's notices of a flag ("flag:" and a keyed hash of the
flag's kind, the event and the counselor's chat). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.careteam.flags import FlagKind
from bot.core.callbacks import HEX, ID, NUMBER, Codec, OneOf, Part, choice, member

CareChoice = Literal["talk", "lines"]  # talk to my care team; the crisis lines


@dataclass(frozen=True)
class CareButton:
    choice: CareChoice


CARE = Codec("care:{choice}", CareButton, choice=choice("talk", "lines"))


# ---- notice keys -------------------------------------------------------------------------------------------
# The event a notice is about, so each counselor is told of it once: its forms keep the text that was hashed
# before they were typed (the hash of a notice still queued must not change, or it could go out twice).


@dataclass(frozen=True)
class RowEvent:
    """A flag raised once for a row: the check-in that made a run of missed ones (MISSED_CHECKINS), the
    "can't make it" that made a run of missed sessions (MISSED_SESSIONS)."""

    row_id: int


@dataclass(frozen=True)
class UseEvent:
    """A use whose what or how went unanswered, once per check-in: a daily one ("use") or an aftercare one
    ("aftercare-use")."""

    source: Literal["use", "aftercare-use"]
    checkin_id: int


@dataclass(frozen=True)
class MomentEvent:
    """A flag raised at a moment (each one is told): the patient, and the time since 1970 (milliseconds from
    `tell_care_team`, seconds when the patient blocked the bot)."""

    patient_id: int
    stamp: int


NoticeEvent = RowEvent | UseEvent | MomentEvent

ROW_EVENT = Codec("{row_id}", RowEvent, limit=None, row_id=ID)
USE_EVENT = Codec(
    "{source}:{checkin_id}", UseEvent, limit=None, source=choice("use", "aftercare-use"), checkin_id=ID
)
MOMENT_EVENT = Codec("{patient_id}:{stamp}", MomentEvent, limit=None, patient_id=ID, stamp=NUMBER)
_EVENTS: tuple[Codec[Any], ...] = (ROW_EVENT, USE_EVENT, MOMENT_EVENT)


def _write_event(event: NoticeEvent) -> str:
    [codec] = [codec for codec in _EVENTS if isinstance(event, codec.kind)]
    return codec.pack(event)


_EVENT: Part[NoticeEvent] = Part(
    "|".join(f"(?:{codec.pattern[1:-1]})" for codec in _EVENTS),  # each without its ^ and $
    OneOf[NoticeEvent](*_EVENTS).parse,
    _write_event,
)


@dataclass(frozen=True)
class NoticeTold:
    """What a notice's key stands for: the flag's kind, the event, the counselor's chat. Never stored as it
    is (it says what the flag was and whose chat): it is hashed into `FlagKey`."""

    kind: FlagKind
    event: NoticeEvent
    chat_id: int


NOTICE_TOLD = Codec(
    "{kind}:{event}:{chat_id}",
    NoticeTold,
    limit=None,
    kind=member(FlagKind),
    event=_EVENT,
    chat_id=Part(r"-?[0-9]{1,19}", int),
)


@dataclass(frozen=True)
class FlagKey:
    """The outbox key of a notice: `Keyring.tag` of a `NOTICE_TOLD` string."""

    tag: str


FLAG_KEY = Codec("flag:{tag}", FlagKey, limit=None, tag=HEX)
