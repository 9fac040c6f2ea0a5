"""Button data of session reminders ("rsvp:SESSION:OCCURRENCE:CHOICE", "rsvp:skip:ATTENDANCE") and the outbox
keys of reminders ("rem:...") and of the notices an answer sends the care team ("rsvp:..."). Written and
read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement

from bot.core.callbacks import COUNT, ID, MAX_ID, Codec, Part, choice, member
from bot.core.models import OutboxMessage, Rsvp


def occurrence_id(original_start: datetime) -> int:
    """An occurrence's identity in keys and buttons: its original start in whole minutes since 1970 (UTC)."""
    return int(original_start.timestamp() // 60)


def from_occurrence_id(value: int) -> datetime:
    return datetime.fromtimestamp(value * 60, UTC)


def _occurrence(text: str) -> datetime | None:
    value = int(text)
    return from_occurrence_id(value) if 1 <= value <= MAX_ID else None


def _write_occurrence(original_start: datetime) -> str:
    return str(occurrence_id(original_start))


OCCURRENCE: Part[datetime] = Part(r"[0-9]{1,10}", _occurrence, _write_occurrence)


@dataclass(frozen=True)
class RsvpButton:
    session_id: int
    occurrence: datetime  # the original start
    choice: Rsvp


@dataclass(frozen=True)
class SkipReason:
    """ "Skip" after "Can't make it": no reason given."""

    attendance_id: int


RSVP = Codec(
    "rsvp:{session_id}:{occurrence}:{choice}",
    RsvpButton,
    session_id=ID,
    occurrence=OCCURRENCE,
    choice=member(Rsvp),
)
SKIP_REASON = Codec("rsvp:skip:{attendance_id}", SkipReason, attendance_id=ID)


@dataclass(frozen=True)
class ReminderKey:
    session_id: int
    occurrence: datetime  # the original start
    patient_id: int
    minutes: int  # before the start


REMINDER_KEY = Codec(
    "rem:{session_id}:{occurrence}:{patient_id}:{minutes}",
    ReminderKey,
    limit=None,
    session_id=ID,
    occurrence=OCCURRENCE,
    patient_id=ID,
    minutes=COUNT,
)


def reminders_of(
    session_id: int, occurrence: datetime | None = None, patient_id: int | None = None
) -> ColumnElement[bool]:
    """A condition on outbox rows: the reminders of a session (of one occurrence, and one patient's)."""
    leading: dict[str, object] = {"session_id": session_id}
    if occurrence is not None:
        leading["occurrence"] = occurrence
        if patient_id is not None:
            leading["patient_id"] = patient_id
    return OutboxMessage.key.startswith(REMINDER_KEY.prefix(**leading), autoescape=True)


@dataclass(frozen=True)
class NoticeKey:
    """The care team told of a "can't make it" (or of its reason), per counselor; `stamp` (seconds) keeps a
    changed answer from being taken for one already told."""

    attendance_id: int
    part: Literal["cannot", "reason"]
    counselor_id: int
    stamp: int


NOTICE_KEY = Codec(
    "rsvp:{attendance_id}:{part}:{counselor_id}:{stamp}",
    NoticeKey,
    limit=None,
    attendance_id=ID,
    part=choice("cannot", "reason"),
    counselor_id=ID,
    stamp=COUNT,
)


def notices_of(attendance_id: int, part: Literal["cannot", "reason"]) -> ColumnElement[bool]:
    """A condition on outbox rows: the care team's notices of this answer (that part, every counselor)."""
    prefix = NOTICE_KEY.prefix(attendance_id=attendance_id, part=part)
    return OutboxMessage.key.startswith(prefix, autoescape=True)
