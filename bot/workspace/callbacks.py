"""Button data of /caseload's pages ("cl:N"). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.callbacks import Codec, Part


@dataclass(frozen=True)
class CaseloadPage:
    number: int  # out of range is clamped to the pages there are


CASELOAD_PAGE = Codec("cl:{number}", CaseloadPage, number=Part(r"[0-9]{1,4}", int))
