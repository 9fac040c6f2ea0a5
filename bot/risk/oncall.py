"""The on-call roster: whoever's shift covers the moment gets imminent alerts (in office hours too), and
after hours (`bot.core.clock`: outside OFFICE_HOURS or on OFFICE_CLOSED_DAYS) a high alert's re-pages; kept
with `python -m bot oncall set|list|remove`.

Shifts are stored in UTC and entered in the clinic's time zone (DEFAULT_TIMEZONE), so a shift across a
daylight-saving change lasts the hours the clinic means.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Counselor, OnCallShift


async def on_call(session: AsyncSession, now: datetime) -> list[Counselor]:
    """Active, linked counselors whose shift covers `now`."""
    rows = await session.scalars(
        select(Counselor)
        .join(OnCallShift, OnCallShift.counselor_id == Counselor.id)
        .where(
            OnCallShift.starts_at <= now,
            OnCallShift.ends_at > now,
            Counselor.active.is_(True),
            Counselor.chat_id.is_not(None),
        )
        .order_by(Counselor.id)
    )
    return list({c.id: c for c in rows}.values())


async def add_shift(
    session: AsyncSession, counselor_id: int, starts_at: datetime, ends_at: datetime
) -> OnCallShift:
    if ends_at <= starts_at:
        raise ValueError("the shift must end after it starts")
    counselor = await session.get(Counselor, counselor_id)
    if counselor is None:
        raise ValueError(f"no counselor {counselor_id} (see `python -m bot counselor list`)")
    if not counselor.active:
        raise ValueError(f"counselor {counselor_id} is not active")
    shift = OnCallShift(counselor_id=counselor_id, starts_at=starts_at, ends_at=ends_at)
    session.add(shift)
    await session.flush()
    return shift


async def shifts_from(session: AsyncSession, since: datetime) -> list[tuple[OnCallShift, Counselor]]:
    rows = await session.execute(
        select(OnCallShift, Counselor)
        .join(Counselor, Counselor.id == OnCallShift.counselor_id)
        .where(OnCallShift.ends_at > since)
        .order_by(OnCallShift.starts_at, OnCallShift.id)
    )
    return [(shift, counselor) for shift, counselor in rows]


async def remove_shift(session: AsyncSession, shift_id: int) -> None:
    shift = await session.get(OnCallShift, shift_id)
    if shift is None:
        raise ValueError(f"no on-call shift {shift_id} (see `python -m bot oncall list`)")
    await session.delete(shift)


def local_datetime(text: str, zone: ZoneInfo) -> datetime:
    """'2026-11-24 18:00' in the clinic's time zone, as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time like 2026-11-24 18:00") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
