"""Button data of /caseload's pages ("cl:N"), and the outbox keys of the daily digests ("digest:..."). Written
and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.core.callbacks import DAY, ID, Codec, Part


@dataclass(frozen=True)
class CaseloadPage:
    number: int  # out of range is clamped to the pages there are


CASELOAD_PAGE = Codec("cl:{number}", CaseloadPage, number=Part(r"[0-9]{1,4}", int))


@dataclass(frozen=True)
class DigestKey:
    """A counselor's digest, once per their local day (a key already in the outbox means it went)."""

    counselor_id: int
    day: date


DIGEST_KEY = Codec("digest:{counselor_id}:{day}", DigestKey, limit=None, counselor_id=ID, day=DAY)
