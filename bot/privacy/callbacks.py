"""Button data of /deleteme ("deleteme:yes:ID", "deleteme:no:ID": the id is the audit event that recorded
the request), and the outbox keys of the goodbye at discharge and of "your data is deleted". Written and read
only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.callbacks import HEX, ID, NUMBER, Codec, choice


@dataclass(frozen=True)
class DeletionButton:
    choice: Literal["yes", "no"]
    request_id: int


DELETION = Codec("deleteme:{choice}:{request_id}", DeletionButton, choice=choice("yes", "no"), request_id=ID)


@dataclass(frozen=True)
class GoodbyeKey:
    """The goodbye at discharge: the patient and the moment of the discharge (seconds since 1970)."""

    patient_id: int
    stamp: int


GOODBYE_KEY = Codec("discharge:{patient_id}:{stamp}", GoodbyeKey, limit=None, patient_id=ID, stamp=NUMBER)


@dataclass(frozen=True)
class DeletedKey:
    """ "Your data is deleted", told once the patient's rows are gone: a random uuid4's hex, for nothing of
    theirs is left to key it by."""

    nonce: str


DELETED_KEY = Codec("deleted:{nonce}", DeletedKey, limit=None, nonce=HEX)
