"""When a session reminder goes out.

Product rules:

- An offset of whole days (24h, 48h, 1d...) is counted on the patient's local WALL CLOCK: the reminder goes
  at the same local time N days earlier. Across a daylight-saving change a "24 h" reminder for a Monday
  18:00 session therefore goes on Sunday at 18:00 local, which is 23 or 25 real hours before. A local time
  that does not exist (spring-forward gap) moves forward by the gap; an ambiguous one takes the first.
- Any other offset (1h, 90m, 30m) is real elapsed time before the session.
- Quiet hours are the patient's local clock times (they may wrap midnight, e.g. 22:00-07:00; equal start
  and end means no quiet hours). A reminder due inside them moves to the END of that quiet period, worked
  out on the local wall clock (so it is 07:00 local even on a daylight-saving night) — unless the moved
  time would be at or after the session start (the session starts within that quiet period or right at its
  end): then the reminder is sent at its computed time, since a reminder after the session is useless.
- Offsets are between 1 minute and 14 days.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.schedule.recurrence import to_local, to_utc, zone

_DAY = timedelta(days=1)


def in_quiet_hours(local_clock: time, quiet_start: time, quiet_end: time) -> bool:
    """Whether a local clock time is inside quiet hours [quiet_start, quiet_end), which may wrap midnight."""
    clock, start, end = (t.replace(tzinfo=None) for t in (local_clock, quiet_start, quiet_end))
    if start == end:
        return False
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def reminder_due(
    session_start: datetime, offset: timedelta, timezone: str, quiet_start: time, quiet_end: time
) -> datetime:
    """Aware UTC time at which to send the reminder `offset` before `session_start` (aware UTC)."""
    if session_start.tzinfo is None:
        raise ValueError("session_start must be an aware datetime")
    if offset <= timedelta(0):
        raise ValueError("a reminder offset must be positive")
    tz = zone(timezone)
    if offset % _DAY == timedelta(0):
        due = to_utc(to_local(session_start, tz) - offset, tz)
    else:
        due = session_start - offset

    local_due = to_local(due, tz)
    if not in_quiet_hours(local_due.time(), quiet_start, quiet_end):
        return due
    quiet_end_clock = quiet_end.replace(tzinfo=None)
    end_day = local_due.date()
    if local_due.time() >= quiet_end_clock:  # quiet hours wrap midnight and this is the evening part
        end_day += _DAY
    quiet_over = to_utc(datetime.combine(end_day, quiet_end_clock), tz)
    return quiet_over if due < quiet_over < session_start else due
