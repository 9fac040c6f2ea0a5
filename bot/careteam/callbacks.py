"""Button data of the patient's "what would help?" choices after an emotional message ("care:talk",
"care:lines"). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.callbacks import Codec, choice

CareChoice = Literal["talk", "lines"]  # talk to my care team; the crisis lines


@dataclass(frozen=True)
class CareButton:
    choice: CareChoice


CARE = Codec("care:{choice}", CareButton, choice=choice("talk", "lines"))
