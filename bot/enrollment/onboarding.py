"""The set-up after consent: time zone, daily check-in time, language. State lives on the patient row."""

from __future__ import annotations

import enum
import re
import unicodedata
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import Patient, PatientStatus


class Step(enum.StrEnum):
    TIMEZONE = "timezone"
    CHECKIN_TIME = "checkin_time"
    LANGUAGE = "language"


NEXT_STEP: dict[Step, Step | None] = {
    Step.TIMEZONE: Step.CHECKIN_TIME,
    Step.CHECKIN_TIME: Step.LANGUAGE,
    Step.LANGUAGE: None,
}

# Offered as buttons; anything else in the IANA database can be typed.
COMMON_TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
COMMON_CHECKIN_TIMES = (time(8, 0), time(12, 0), time(17, 0), time(19, 0), time(20, 0), time(21, 0))

_ZONES_BY_LOWER = {name.lower(): name for name in available_timezones()}


_AREAS = {
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
}


def _zones_by_city() -> dict[str, str]:
    """ "chicago" -> America/Chicago: the last part of each zone name, as people type their city. Where two
    zones end alike, the buttons' zones win, then the shorter (canonical) name."""
    found: dict[str, str] = {}
    ranked = sorted(_ZONES_BY_LOWER.values(), key=lambda n: (n not in COMMON_TIMEZONES, len(n), n))
    for name in ranked:
        if name.split("/", 1)[0] in _AREAS and "/" in name:  # not legacy names such as US/Eastern
            found.setdefault(name.rsplit("/", 1)[1].lower(), name)
    return found


def plain(text: str) -> str:
    """Lower case without accents and with single spaces: "Los Ángeles " -> "los angeles"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


_ZONES_BY_CITY = _zones_by_city()
_IN_BRACKETS = re.compile(r"\(([^()]*)\)")
# "8:30 pm", "8.15 P.M.", "8:30 p. m." (as Spanish writes it), "20h30", "20h"
_CLOCK = re.compile(r"^\s*(\d{1,2})(?:[:.h](\d{2})|h)?\s*(?:([ap])\.?\s?m\.?)?\s*$", re.IGNORECASE)


def parse_timezone(text: str) -> str | None:
    """An IANA zone name, typed in any letter case, with spaces for underscores, or its city alone
    ("chicago", "Los Angeles"), or a button's label with the city in brackets ("Central (Chicago)"); None if
    unknown."""
    bracketed = _IN_BRACKETS.search(text)
    if bracketed:
        text = bracketed[1]
    candidate = "_".join(text.strip().split())
    if not candidate or len(candidate) > 64:
        return None
    name = _ZONES_BY_LOWER.get(candidate.lower()) or _ZONES_BY_CITY.get("_".join(plain(text).split()))
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def parse_clock(text: str) -> time | None:
    """'20:00', '8pm', '8:30 pm', '8:30 p. m.', '20h30', '20h', '7.15' -> a time of day; None when not a clear
    time."""
    match = _CLOCK.match(text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    half = (match.group(3) or "").lower()  # "a" or "p": am or pm
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def format_clock(value: time) -> str:
    return value.strftime("%H:%M")


class Invalid(ValueError):
    """The answer does not fit the question; the handler asks again."""


def _set(patient: Patient, step: Step, value: str, languages: list[str]) -> None:
    if step is Step.TIMEZONE:
        zone = parse_timezone(value)
        if zone is None:
            raise Invalid("unknown time zone")
        patient.timezone = zone
    elif step is Step.CHECKIN_TIME:
        clock = parse_clock(value)
        if clock is None:
            raise Invalid("not a time of day")
        patient.checkin_time = clock
    else:
        if value not in languages:
            raise Invalid("unsupported language")
        patient.language = value


async def answer(
    session: AsyncSession, patient: Patient, step: Step, value: str, *, languages: list[str]
) -> Step | None:
    """Apply one set-up answer; return the next step, or None when set-up is complete."""
    if patient.status is not PatientStatus.ONBOARDING or patient.onboarding_step != step:
        raise Invalid("not the current question")
    _set(patient, step, value, languages)
    following = NEXT_STEP[step]
    patient.onboarding_step = following
    if following is None:
        patient.status = PatientStatus.ACTIVE
        audit.record(
            session,
            "onboarding.completed",
            actor_type="patient",
            actor_id=patient.id,
            subject_type="patient",
            subject_id=patient.id,
        )
    return following


def await_typed(patient: Patient, step: Step) -> None:
    """An active patient chose to type a new setting: the next text they send is taken as it."""
    if patient.status is not PatientStatus.ACTIVE:
        raise Invalid("settings are for active patients")
    patient.onboarding_step = step


def change(session: AsyncSession, patient: Patient, step: Step, value: str, *, languages: list[str]) -> None:
    """/settings: change one set-up answer of an active patient."""
    if patient.status is not PatientStatus.ACTIVE:
        raise Invalid("settings are for active patients")
    _set(patient, step, value, languages)
    patient.onboarding_step = None
    audit.record(
        session,
        "settings.changed",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="patient",
        subject_id=patient.id,
        setting=step.value,
    )
