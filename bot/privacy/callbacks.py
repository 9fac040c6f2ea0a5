"""Button data of /deleteme ("deleteme:yes:ID", "deleteme:no:ID": the id is the audit event that recorded
the request). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.callbacks import ID, Codec, choice


@dataclass(frozen=True)
class DeletionButton:
    choice: Literal["yes", "no"]
    request_id: int


DELETION = Codec("deleteme:{choice}:{request_id}", DeletionButton, choice=choice("yes", "no"), request_id=ID)
