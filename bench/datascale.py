"""Benchmark: the counselor's queries and the reminder planner on a database holding months of history.

    python bench/datascale.py [--patients 10000] [--days 90] [--caseload 50] [--runs 20] [--seed 1]
                              [--database-url URL-of-a-scratch-database]

Fills a database with N patients' last D days, written with bulk Core inserts through the real tables (free
text still goes through the encrypted column types, so it is ciphertext as in production): US time zones,
a daily check-in at each patient's own time (about 80% answered: craving mostly low, some patients' rising
over the last three weeks, mood, sleep, triggers, use on about 5% of days, a note now and then), the missed
and unfinished ones, treatment groups of about 12 meeting three times a week plus a weekly individual
session, the RSVPs to their reminders and the reminders themselves in the outbox (sent, cancelled by "can't
make it", or planned), escalations (a few per patient, nearly all resolved, some open or acknowledged) with
their alerts, coping exercises, safety plans, counselors' notes and past digests. One counselor per
`--caseload` patients (the primary; one patient in ten also has a backup counselor). PostgreSQL is then
VACUUM ANALYZEd, as autovacuum would do after such a load; SQLite is left as the bot leaves it.

Then it times, each call in its own transaction as a handler runs it, repeated (median and max, after a
warm-up run): `/caseload` page 1 (`caseload.caseload` and `page`, for a different counselor each run);
`/patient` (every query the handler makes: `workspace.visible_patient`, `caseload.patient_summary`, the
safety plan, the notes and the chart's days), and the chart's rendering apart; the daily digest
(`caseload.digest`) for every counselor in one transaction, in all and per counselor; and the planner's
`schedule.due_reminders` for a whole week ahead for every patient (REMINDER_OFFSETS at its default 24h,1h).

The last line printed is one JSON object: database, patients, days, counselors, the rows written (checkins,
escalations, attendance, outbox), fill_s, db_mb, then caseload_ms / caseload_max_ms (caseload_patients: the
largest caseload timed), patient_summary_ms / patient_summary_max_ms, chart_ms, digest_all_ms,
digest_per_counselor_ms, digest_max_ms, plan_week_ms, plan_week_max_ms and plan_week_reminders.
Targets: every counselor query under 100 ms (the max, and each counselor's digest), planning a week under
10 s, on SQLite and PostgreSQL alike, at N=10000, D=90.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time as clock
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import Table, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker  # noqa: E402

from bench.scratch import fresh_schema  # noqa: E402
from bot.checkin import rules as checkin  # noqa: E402
from bot.checkin.history import ChartLabels, Day, fill_window, render_chart  # noqa: E402
from bot.core import db  # noqa: E402
from bot.core.crypto import Keyring  # noqa: E402
from bot.core.models import (  # noqa: E402
    AssignmentRole,
    Attendance,
    AuditEvent,
    CareAssignment,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    Consent,
    CopingSession,
    CopingStatus,
    Counselor,
    CounselorNote,
    CounselorRole,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    GroupMember,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientGroup,
    PatientStatus,
    Priority,
    ProgramSession,
    Rsvp,
    SafetyPlan,
    SessionKind,
)
from bot.enrollment.consent import CONSENT_VERSION, SCOPE  # noqa: E402
from bot.risk import safety_plan as plans  # noqa: E402
from bot.risk.escalation import Outcome  # noqa: E402
from bot.risk.levels import Category, RiskLevel  # noqa: E402
from bot.schedule import rules as schedule  # noqa: E402
from bot.schedule.callbacks import RSVP, RsvpButton  # noqa: E402
from bot.schedule.recurrence import Occurrence, Series, occurrences, to_local  # noqa: E402
from bot.schedule.reminder_times import reminder_due  # noqa: E402
from bot.workspace import caseload as rules  # noqa: E402
from bot.workspace import rules as workspace  # noqa: E402

T = TypeVar("T")
KEY = Fernet.generate_key().decode()  # one run's database, one key
KEYRING = Keyring.parse(KEY)
FIRST_PATIENT_USER = 8_000_000
FIRST_COUNSELOR_USER = 9_000_000
ZONES = (  # roughly where the US population lives
    ("America/New_York", 45),
    ("America/Chicago", 26),
    ("America/Denver", 7),
    ("America/Phoenix", 4),
    ("America/Los_Angeles", 18),
)
GROUP_SIZE = 12
FOREVER = datetime.max.replace(tzinfo=UTC)
GROUP_PATTERNS = (  # (RRULE days, title's days, local start hour)
    ("MO,WE,TH", "Mon/Wed/Thu", 18),
    ("TU,TH,FR", "Tue/Thu/Fri", 9),
    ("MO,TU,TH", "Mon/Tue/Thu", 13),
    ("MO,WE,FR", "Mon/Wed/Fri", 18),
)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
OFFSETS = (timedelta(hours=24), timedelta(hours=1))  # REMINDER_OFFSETS' default
PLAN_AHEAD = timedelta(minutes=15)  # bot.schedule.jobs.PLAN_AHEAD: what the running bot has planned
EXPIRY = timedelta(hours=6)  # CHECKIN_EXPIRY_HOURS' default
NUDGE = timedelta(minutes=120)  # CHECKIN_NUDGE_MINUTES' default
HIGH_CRAVING = 7  # HIGH_CRAVING's default
SUMMARY_DAYS = 14  # bot.handlers.caseload.SUMMARY_DAYS
CHUNK = 5000  # rows per executemany
TRIGGER_WEIGHTS = {
    "hungry": 4,
    "angry": 5,
    "lonely": 8,
    "tired": 9,
    "stress": 14,
    "boredom": 8,
    "conflict": 6,
    "pain": 3,
    "people": 6,
    "places": 4,
    "money": 5,
    "celebration": 2,
    "other": 2,
}
MODULES = (
    "body_scan",
    "box_breathing",
    "breathing_478",
    "grounding_54321",
    "halt_check",
    "play_the_tape_forward",
    "progressive_muscle_relaxation",
    "urge_surfing",
)
NOTES = {
    "en": (
        "Rough day at work but I went to a meeting after.",
        "Called my sponsor, feeling better.",
        "Couldn't sleep, thinking about money a lot.",
        "My sister came over, we had a good talk.",
        "Drove past the old bar on the way home. Kept going.",
        "Tired. Kids were sick all week.",
        "Felt proud today, 30 days.",
        "Argued with my partner again. Took a walk instead of drinking.",
    ),
    "es": (
        "Día difícil en el trabajo pero fui a una reunión.",
        "Hablé con mi padrino, me siento mejor.",
        "No pude dormir, pensando en el dinero.",
        "Me sentí orgulloso hoy, 30 días.",
    ),
}
USES = ("two beers", "a few drinks at a party", "smoked a joint", "pills from a friend", "wine at dinner")
OTHER_TRIGGERS = ("anniversary of my dad's death", "court date coming up", "saw my ex", "payday")
SAID = (
    "I can't do this anymore",
    "I don't see the point of any of this",
    "I'm going to use tonight, I already called him",
    "I relapsed yesterday and I feel like garbage",
    "My craving is through the roof",
    "Nobody would care if I was gone",
    "He's back and he's drunk again, I'm scared",
)
REASONS = ("work shift", "no ride", "sick kid", "doctor's appointment", "court", "I'm sick")
COUNSELOR_NOTES = (
    "Discussed triggers around payday; plan to hand card to partner.",
    "Patient engaged in group, shared about family conflict.",
    "Reviewed safety plan together, updated supports.",
    "Missed two sessions: transport issue, gave bus pass info.",
    "Cravings rising this week; increase check-ins, talk to prescriber.",
    "Doing well, talking about step-down to OP next month.",
)
PLAN_TEXTS = (
    "Isolating, not answering the phone, skipping meals",
    "Go for a run, call my sister, read",
    "The library, my aunt's place, the YMCA",
    "Mom 555-0134, sponsor Mike 555-0199",
    "Clinic line 555-0100, 988",
    "No alcohol in the house; meds with my partner",
    "My daughter",
)
_LEVELS = ((RiskLevel.MODERATE, 60), (RiskLevel.HIGH, 32), (RiskLevel.IMMINENT, 8))
_CATEGORIES = {
    RiskLevel.MODERATE: (Category.CRAVING, Category.HOPELESS, Category.RELAPSE),
    RiskLevel.HIGH: (
        Category.RELAPSE,
        Category.USE_PLAN,
        Category.SUICIDE,
        Category.HOPELESS,
        Category.DANGER,
    ),
    RiskLevel.IMMINENT: (Category.SUICIDE, Category.OVERDOSE, Category.SELF_HARM),
}
_SOURCES = ("message", "message", "message", "checkin_note", "cssrs", "safety_check")


# ---- the people and their sessions ------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    id: int
    alias: str
    zone: str
    tz: ZoneInfo
    language: str
    checkin_time: time
    created_at: datetime
    gone_at: datetime | None  # discharged
    unreachable_since: datetime | None
    counselor_id: int
    backup_id: int | None
    base: float  # craving the patient hovers around
    rising: bool  # craving rising over the last three weeks
    adherence: float  # share of days with a check-in answered
    use_rate: float
    status: PatientStatus = PatientStatus.ACTIVE
    group_id: int = 0
    ends: datetime = FOREVER  # discharged or unreachable from then on

    def here(self, at: datetime) -> bool:
        """Enrolled, still in the program and reachable at `at`."""
        return self.created_at <= at < self.ends


@dataclass(slots=True)
class Planned:
    id: int
    row: dict[str, Any]
    series: Series
    attendees: list[Person] = field(default_factory=list)


@dataclass
class World:
    now: datetime
    days: int
    people: list[Person]
    counselors: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    sessions: list[Planned]
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + (end - start) * rng.random()


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def build_world(rng: random.Random, patients: int, days: int, per_counselor: int, now: datetime) -> World:
    start = now - timedelta(days=days)
    zones = rng.choices([z for z, _ in ZONES], weights=[w for _, w in ZONES], k=patients)
    zones.sort(key=[z for z, _ in ZONES].index)  # one zone per caseload and group, as in a clinic
    width = max(5, len(str(patients)))
    n_counselors = math.ceil(patients / per_counselor)
    people = []
    for i, zone in enumerate(zones):
        late = rng.random() < 0.25  # rolling admission: a quarter joined during the period
        created = _between(rng, start + timedelta(days=1), now - timedelta(days=3)) if late else start
        gone = (
            _between(rng, now - timedelta(days=20), now - timedelta(hours=6)) if rng.random() < 0.03 else None
        )
        if gone is not None and gone <= created:
            gone = None
        unreachable = (
            _between(rng, now - timedelta(days=10), now) if gone is None and rng.random() < 0.01 else None
        )
        counselor = i // per_counselor + 1
        people.append(
            Person(
                id=i + 1,
                alias=f"P-{i:0{width}d}",
                zone=zone,
                tz=ZoneInfo(zone),
                language="es" if rng.random() < 0.18 else "en",
                checkin_time=time(rng.choice((8, 9, 12, 17, 18, 19, 20, 20, 21, 21)), rng.choice((0, 30))),
                created_at=created,
                gone_at=gone,
                unreachable_since=unreachable,
                counselor_id=counselor,
                backup_id=(counselor % n_counselors) + 1 if rng.random() < 0.1 and n_counselors > 1 else None,
                base=min(7.0, rng.expovariate(1 / 2.2)),
                rising=rng.random() < 0.15,
                adherence=min(0.97, max(0.45, rng.gauss(0.82, 0.1))),
                use_rate=min(0.3, rng.expovariate(1 / 0.03)),
                status=PatientStatus.DISCHARGED if gone else PatientStatus.ACTIVE,
            )
        )
        people[-1].ends = min(x for x in (gone, unreachable, people[-1].ends) if x is not None)
    counselors = []
    for c in range(1, n_counselors + 1):
        zone = people[(c - 1) * per_counselor].zone
        counselors.append(
            {
                "id": c,
                "name": f"Counselor {c}",
                "role": CounselorRole.COUNSELOR,
                "telegram_user_id": FIRST_COUNSELOR_USER + c,
                "telegram_ref": KEYRING.pseudonym(FIRST_COUNSELOR_USER + c),  # as the ORM sets it
                "chat_id": FIRST_COUNSELOR_USER + c,
                "timezone": zone,
                "language": "en",
                "active": True,
                "created_at": start - timedelta(days=30),
                "digest_time": time(8, 0),
            }
        )
    groups: list[dict[str, Any]] = []
    planned: list[Planned] = []
    local_start = to_local(start, ZoneInfo("UTC")).date()
    for person in people:
        if not groups or groups[-1]["zone"] != person.zone or groups[-1]["size"] == GROUP_SIZE:
            days_rule, days_title, hour = GROUP_PATTERNS[len(groups) % len(GROUP_PATTERNS)]
            kind = {9: "Morning", 13: "Afternoon", 18: "Evening"}[hour]
            gid = len(groups) + 1
            groups.append(
                {"id": gid, "name": f"{kind} IOP {days_title} #{gid}", "zone": person.zone, "size": 0}
            )
            monday = local_start - timedelta(days=local_start.weekday())
            first = monday + timedelta(days=WEEKDAYS.index(days_rule[:2]))  # DTSTART on a day of the rule
            series = Series(
                start=datetime.combine(first, time(hour)),
                timezone=person.zone,
                duration=timedelta(minutes=180),
                rrule=f"FREQ=WEEKLY;BYDAY={days_rule}",
            )
            row = {
                "id": 0,
                "kind": SessionKind.GROUP,
                "title": f"{kind} IOP group",
                "location": "Riverside Clinic, Group Room B",
                "group_id": gid,
                "counselor_id": person.counselor_id,
                "timezone": person.zone,
                "starts_local": series.start,
                "duration_minutes": 180,
                "rrule": series.rrule,
                "exdates": [],
                "rdates": [],
                "overrides": [],
                "active": True,
                "created_at": start - timedelta(days=7),
                "updated_at": start - timedelta(days=7),
            }
            planned.append(Planned(0, row, series))
        groups[-1]["size"] += 1
        person.group_id = groups[-1]["id"]
        planned[-1].attendees.append(person)
    group_sessions = list(planned)
    for person in people:  # a weekly individual session with the primary counselor
        first = to_local(person.created_at, person.tz).date() + timedelta(days=1)
        weekday = rng.randrange(5)
        first += timedelta(days=(weekday - first.weekday()) % 7)
        video = rng.random() < 0.3
        series = Series(
            start=datetime.combine(first, time(rng.randrange(9, 17))),
            timezone=person.zone,
            duration=timedelta(minutes=50),
            rrule=f"FREQ=WEEKLY;BYDAY={WEEKDAYS[weekday]}",
        )
        row = {
            "id": 0,
            "kind": SessionKind.INDIVIDUAL,
            "title": "Individual counseling",
            "location": None if video else "Riverside Clinic, Room 4",
            "url": "https://telehealth.example.org/room/riverside-4" if video else None,
            "patient_id": person.id,
            "counselor_id": person.counselor_id,
            "timezone": person.zone,
            "starts_local": series.start,
            "duration_minutes": 50,
            "rrule": series.rrule,
            "exdates": [],
            "rdates": [],
            "overrides": [],
            "active": person.status is PatientStatus.ACTIVE,
            "created_at": person.created_at,
            "updated_at": person.created_at,
        }
        planned.append(Planned(0, row, series, [person]))
    for number, item in enumerate(planned, start=1):
        item.id = item.row["id"] = number
    for item in rng.sample(group_sessions, k=len(group_sessions) // 10):  # a holiday: one occurrence off
        past = [o for o in occurrences(item.series, start, now) if o.start > start + timedelta(days=7)]
        if past:
            gone_one = to_local(rng.choice(past).original_start, ZoneInfo(item.series.timezone))
            item.row["exdates"] = [gone_one.isoformat()]
            item.series = dataclasses.replace(item.series, exdates=(gone_one,))
    return World(now, days, people, counselors, groups, planned)


# ---- rows -------------------------------------------------------------------------------------------------


def patient_rows(world: World) -> Iterator[dict[str, Any]]:
    for p in world.people:
        yield {
            "id": p.id,
            "telegram_user_id": FIRST_PATIENT_USER + p.id,
            "telegram_ref": KEYRING.pseudonym(FIRST_PATIENT_USER + p.id),  # as the ORM sets it
            "chat_id": FIRST_PATIENT_USER + p.id,
            "alias": p.alias,
            "timezone": p.zone,
            "language": p.language,
            "checkin_time": p.checkin_time,
            "quiet_start": time(22, 0),
            "quiet_end": time(7, 0),
            "status": p.status,
            "unreachable_since": p.unreachable_since,
            "created_at": p.created_at - timedelta(minutes=20),
            "updated_at": p.gone_at or p.created_at,
        }


def craving_on(rng: random.Random, p: Person, day_index: int, days_total: int, days_left: int) -> int:
    value = p.base - 1.2 * day_index / max(days_total, 1)  # most get a little better over time
    if p.rising and days_left < 21:
        value += 4.5 * (21 - days_left) / 21
    return max(0, min(10, round(value + rng.gauss(0, 1.3))))


def checkin_rows(rng: random.Random, world: World, p: Person) -> Iterator[dict[str, Any]]:
    now = world.now
    first = to_local(p.created_at, p.tz).date() + timedelta(days=1)
    last = to_local(p.gone_at or now, p.tz).date()
    total = (last - first).days + 1
    for index in range(total):
        day = first + timedelta(days=index)
        started = datetime.combine(day, p.checkin_time, tzinfo=p.tz).astimezone(UTC)
        if started > now or (p.gone_at is not None and started > p.gone_at):
            break
        expires = started + EXPIRY
        row: dict[str, Any] = {
            "patient_id": p.id,
            "source": CheckInSource.SCHEDULED,
            "local_day": day,
            "scheduled_for": day,
            "started_at": started,
            "expires_at": expires,
        }
        craving = craving_on(rng, p, index, total, (to_local(now, p.tz).date() - day).days)
        draw = rng.random()
        if now < expires:  # today's, still open
            answered = started + timedelta(minutes=rng.expovariate(1 / 35))
            if draw < p.adherence * 0.6 and answered + timedelta(minutes=6) < now:
                yield {**row, **_answers(rng, p, craving, answered, started)}
            else:
                nudged = started + NUDGE if now >= started + NUDGE else None
                yield {**row, "status": CheckInStatus.OPEN, "step": "craving", "nudged_at": nudged}
            continue
        if draw < p.adherence:
            answered = started + timedelta(minutes=min(300.0, rng.expovariate(1 / 35)))
            yield {**row, **_answers(rng, p, craving, answered, started)}
        elif draw < p.adherence + 0.04:
            yield {
                **row,
                "status": CheckInStatus.PARTIAL,
                "answered_at": started + timedelta(minutes=rng.uniform(1, 200)),
                "nudged_at": started + NUDGE,
                "finished_at": expires,
                "craving": craving,
                "mood": rng.choice((None, 2, 3, 3, 4)),
            }
        else:
            yield {
                **row,
                "status": CheckInStatus.MISSED,
                "nudged_at": started + NUDGE,
                "finished_at": expires,
            }
        if rng.random() < 0.03:  # an extra check-in the patient started (/checkin) later that day
            begun = started + timedelta(hours=rng.uniform(2, 8))
            done = begun + timedelta(minutes=rng.uniform(2, 8))
            if done < now and (p.gone_at is None or done < p.gone_at):
                extra = min(10, craving + rng.choice((0, 1, 2, 3)))
                yield {
                    "patient_id": p.id,
                    "source": CheckInSource.ON_DEMAND,
                    "local_day": to_local(begun, p.tz).date(),
                    "started_at": begun,
                    "expires_at": begun + EXPIRY,
                    **_answers(rng, p, extra, begun + timedelta(minutes=1), begun),
                }


def _answers(
    rng: random.Random, p: Person, craving: int, answered: datetime, started: datetime
) -> dict[str, Any]:
    how_many = rng.choices((0, 1, 2, 3), weights=(35, 35, 20, 10))[0]
    chosen = set(rng.choices(list(TRIGGER_WEIGHTS), weights=list(TRIGGER_WEIGHTS.values()), k=how_many))
    triggers = [k for k in checkin.TRIGGERS if k in chosen]
    used = rng.random() < p.use_rate * (0.4 + craving / 4)
    note = rng.choice(NOTES[p.language]) if rng.random() < 0.15 else None
    sleep = rng.choice(checkin.SLEEP) if rng.random() > 0.05 else None
    return {
        "status": CheckInStatus.COMPLETE,
        "answered_at": answered,
        "nudged_at": started + NUDGE if answered > started + NUDGE else None,
        "finished_at": answered + timedelta(minutes=rng.uniform(1, 6)),
        "craving": craving,
        "triggers": triggers,
        "trigger_other": rng.choice(OTHER_TRIGGERS) if "other" in chosen else None,
        "mood": max(1, min(5, round(4.2 - craving / 3 + rng.gauss(0, 0.7)))),
        "sleep": sleep,
        "used": used,
        "use_what": rng.choice(USES) if used and rng.random() < 0.7 else None,
        "note": note,
        "skipped": [] if sleep else ["sleep"],
    }


def escalation_rows(rng: random.Random, world: World, p: Person, first_id: int) -> list[dict[str, Any]]:
    now = world.now
    end = p.gone_at or now
    mean = 2.0 * (end - p.created_at) / timedelta(days=90) * (2 if p.rising else 1)
    rows = []
    for n in range(_poisson(rng, mean)):
        created = _between(rng, p.created_at, end)
        level = rng.choices([lv for lv, _ in _LEVELS], weights=[w for _, w in _LEVELS])[0]
        recent = now - created < timedelta(days=2)
        status = rng.choices(list(EscalationStatus), weights=(30, 30, 40) if recent else (0.5, 3.5, 96))[0]
        acknowledged = created + timedelta(minutes=rng.expovariate(1 / 25))
        resolved = acknowledged + timedelta(hours=rng.expovariate(1 / 20))
        if status is EscalationStatus.RESOLVED and resolved > now:
            status = EscalationStatus.ACKNOWLEDGED
        if status is EscalationStatus.ACKNOWLEDGED and acknowledged > now:
            status = EscalationStatus.OPEN
        handled_by = p.counselor_id if p.backup_id is None or rng.random() < 0.8 else p.backup_id
        rows.append(
            {
                "id": first_id + n,
                "patient_id": p.id,
                "level": level.label,
                "category": rng.choice(_CATEGORIES[level]).value,
                "source": rng.choice(_SOURCES),
                "detail": rng.choice(SAID),
                "status": status,
                "created_at": created,
                "last_signal_at": created,
                "stage": rng.choice((0, 0, 1)) if status is EscalationStatus.OPEN else 0,
                "alerted_at": created,
                "next_page_at": now + timedelta(minutes=rng.uniform(1, 30))
                if status is EscalationStatus.OPEN
                else None,
                "acknowledged_at": acknowledged if status is not EscalationStatus.OPEN else None,
                "acknowledged_by": handled_by if status is not EscalationStatus.OPEN else None,
                "resolved_at": resolved if status is EscalationStatus.RESOLVED else None,
                "resolved_by": handled_by if status is EscalationStatus.RESOLVED else None,
                "outcome": rng.choice(list(Outcome)).value if status is EscalationStatus.RESOLVED else None,
            }
        )
    return rows


@dataclass(slots=True)
class Reminded:
    """What one session's reminders left behind: RSVPs and outbox rows."""

    attendance: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def reminder_rows(rng: random.Random, world: World, item: Planned) -> Reminded:
    now = world.now
    found = Reminded()
    row = item.row
    window = occurrences(item.series, now - timedelta(days=world.days + 1), now + OFFSETS[0] + PLAN_AHEAD)
    due_cache: dict[tuple[datetime, timedelta, str], datetime] = {}
    for occurrence in window:
        payloads: dict[str, dict[str, Any]] = {}
        for person in item.attendees:
            if not person.here(occurrence.start - OFFSETS[0]) and not person.here(occurrence.start):
                continue
            dues = []
            for offset in OFFSETS:
                key = (occurrence.start, offset, person.zone)
                if key not in due_cache:
                    due_cache[key] = reminder_due(occurrence.start, offset, person.zone, time(22), time(7))
                dues.append(due_cache[key])
            answer: Rsvp | None = None
            answered = now
            if dues[0] <= now and person.here(dues[0]):
                answer = rng.choices((Rsvp.COMING, Rsvp.LATE, Rsvp.CANNOT, None), weights=(55, 7, 8, 30))[0]
                answered = dues[0] + (min(occurrence.start, now) - dues[0]) * rng.uniform(0.05, 0.9)
            if answer is not None:
                found.attendance.append(
                    {
                        "patient_id": person.id,
                        "session_id": item.id,
                        "occurrence": occurrence.original_start,
                        "response": answer,
                        "reason": rng.choice(REASONS)
                        if answer is Rsvp.CANNOT and rng.random() < 0.5
                        else None,
                        "awaiting_reason": False,
                        "responded_at": answered,
                    }
                )
            for offset, due in zip(OFFSETS, dues, strict=True):
                if due > now + PLAN_AHEAD or not person.here(due):
                    continue
                planned_at = due - PLAN_AHEAD
                status, error, sent = OutboxStatus.SENT, None, None
                if answer is Rsvp.CANNOT and answered < due:
                    if planned_at > answered:
                        continue  # never planned: the planner skips a declined occurrence
                    status, error = OutboxStatus.CANCELLED, schedule.CANNOT_ATTEND
                elif due > now:
                    status = OutboxStatus.PENDING
                else:
                    sent = due + timedelta(seconds=rng.uniform(0.2, 20))
                if person.language not in payloads:
                    payloads[person.language] = _reminder_payload(row, item.id, occurrence, person)
                found.outbox.append(
                    {
                        "key": schedule.reminder_key(item.id, occurrence.original_start, person.id, offset),
                        "kind": schedule.REMINDER_KIND,
                        "priority": int(Priority.BULK),
                        "chat_id": FIRST_PATIENT_USER + person.id,
                        "chat_ref": KEYRING.pseudonym(FIRST_PATIENT_USER + person.id),  # as enqueue sets it
                        "patient_id": person.id,
                        "payload": payloads[person.language],
                        "ref": {"session_id": item.id},
                        "due_at": due,
                        "expires_at": occurrence.start,
                        "status": status,
                        "attempts": 1 if sent else 0,
                        "next_attempt_at": due,
                        "sent_at": sent,
                        "message_id": rng.randrange(1, 2**31) if sent else None,
                        "error": error,
                        "created_at": planned_at,
                    }
                )
    return found


def _reminder_payload(
    row: dict[str, Any], session_id: int, occurrence: Occurrence, person: Person
) -> dict[str, Any]:
    local = occurrence.start.astimezone(person.tz)
    where = row.get("location") or row.get("url") or ""
    text_ = (
        f"Reminder: {row['title']}, {local:%a %b %d, %H:%M}\n{where}\nWill you be there?"
        if person.language == "en"
        else f"Recordatorio: {row['title']}, {local:%d/%m %H:%M}\n{where}\n¿Vas a venir?"
    )

    def data(choice: Rsvp) -> str:
        return RSVP.pack(RsvpButton(session_id, occurrence.original_start, choice))

    return {
        "text": text_,
        "buttons": [
            [["I'm coming", data(Rsvp.COMING)], ["Running late", data(Rsvp.LATE)]],
            [["Can't make it", data(Rsvp.CANNOT)]],
        ],
    }


def digest_rows(world: World) -> Iterator[dict[str, Any]]:
    for counselor in world.counselors:
        zone = ZoneInfo(counselor["timezone"])
        today = to_local(world.now, zone).date()
        for back in range(1, world.days + 1):  # today's is not sent yet: the benchmark computes it
            day = today - timedelta(days=back)
            due = datetime.combine(day, time(8, 0), tzinfo=zone).astimezone(UTC)
            yield {
                "key": workspace.digest_key(counselor["id"], day),
                "kind": "digest",
                "priority": int(Priority.NORMAL),
                "chat_id": counselor["chat_id"],
                "chat_ref": counselor["telegram_ref"],  # a private chat: the user's id, so its pseudonym
                "counselor_id": counselor["id"],
                "payload": {"text": "Your caseload, last 24 hours: ... (bench digest text)", "buttons": None},
                "due_at": due,
                "status": OutboxStatus.SENT,
                "attempts": 1,
                "next_attempt_at": due,
                "sent_at": due + timedelta(seconds=2),
                "message_id": 1000 + back,
                "created_at": due,
            }


def coping_rows(rng: random.Random, world: World, p: Person) -> Iterator[dict[str, Any]]:
    end = p.gone_at or world.now
    for _ in range(_poisson(rng, 0.8 * (end - p.created_at) / timedelta(days=7))):
        started = _between(rng, p.created_at, end - timedelta(hours=1))
        steps = rng.randint(4, 9)
        before = rng.randint(2, 9)
        done = rng.random() < 0.8
        yield {
            "patient_id": p.id,
            "module_id": rng.choice(MODULES),
            "status": CopingStatus.DONE if done else CopingStatus.ABANDONED,
            "step_index": steps if done else rng.randrange(steps),
            "steps_total": steps,
            "message_id": rng.randrange(1, 2**31),
            "stopped_early": not done,
            "craving_before": before,
            "craving_after": max(0, before - rng.choice((0, 1, 1, 2, 2, 3, 4))) if done else None,
            "started_at": started,
            "updated_at": started + timedelta(minutes=8),
            "finished_at": started + timedelta(minutes=rng.uniform(4, 15)),
        }


# ---- filling --------------------------------------------------------------------------------------------


async def insert_rows(session: AsyncSession, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk insert through the table's types (so free text is encrypted). A value None is left out, so the
    column gets what the bot would have written by not setting it (NULL, not a JSON null)."""
    count = 0
    batch: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)

    async def flush() -> None:
        for group in batch.values():
            await session.execute(table.insert(), group)
        batch.clear()

    for row in rows:
        kept = {k: v for k, v in row.items() if v is not None}
        batch[tuple(kept)].append(kept)
        count += 1
        if count % CHUNK == 0:
            await flush()
    await flush()
    return count


def table(model: type[Any]) -> Table:
    found = model.__table__
    assert isinstance(found, Table)
    return found


async def fill(sessions: async_sessionmaker[AsyncSession], world: World, rng: random.Random) -> None:
    counts = world.counts
    async with db.transaction(sessions) as session:
        await insert_rows(session, table(Counselor), world.counselors)
        counts["patients"] = await insert_rows(session, table(Patient), patient_rows(world))
        await insert_rows(
            session,
            table(CareAssignment),
            (
                {"patient_id": p.id, "counselor_id": c, "role": role, "created_at": p.created_at}
                for p in world.people
                for c, role in (
                    (p.counselor_id, AssignmentRole.PRIMARY),
                    (p.backup_id, AssignmentRole.BACKUP),
                )
                if c is not None
            ),
        )
        await insert_rows(
            session,
            table(Consent),
            (
                {
                    "patient_id": p.id,
                    "scope": SCOPE,
                    "version": CONSENT_VERSION,
                    "language": p.language,
                    "accepted_at": p.created_at - timedelta(minutes=15),
                }
                for p in world.people
            ),
        )
        await insert_rows(
            session,
            table(PatientGroup),
            (
                {"id": g["id"], "name": g["name"], "created_at": world.now - timedelta(days=400)}
                for g in world.groups
            ),
        )
        await insert_rows(
            session,
            table(GroupMember),
            ({"group_id": p.group_id, "patient_id": p.id, "created_at": p.created_at} for p in world.people),
        )
        await insert_rows(session, table(ProgramSession), (item.row for item in world.sessions))
        await insert_rows(
            session,
            table(SafetyPlan),
            (
                {
                    "patient_id": p.id,
                    **{step.value: PLAN_TEXTS[n] for n, step in enumerate(plans.STEPS) if rng.random() < 0.9},
                    "walkthrough": True,
                    "created_at": p.created_at + timedelta(days=2),
                    "updated_at": p.created_at + timedelta(days=2),
                }
                for p in world.people
                if rng.random() < 0.6
            ),
        )
        await insert_rows(
            session,
            table(AuditEvent),
            (
                {
                    "at": p.gone_at,
                    "actor_type": "cli",
                    "action": "patient.discharged",
                    "subject_type": "patient",
                    "subject_id": p.id,
                    "detail": {"previous": "active", "cancelled": 0, "goodbye": True},
                }
                for p in world.people
                if p.gone_at is not None
            ),
        )
    async with db.transaction(sessions) as session:
        counts["checkins"] = await insert_rows(
            session, table(CheckIn), (row for p in world.people for row in checkin_rows(rng, world, p))
        )
    async with db.transaction(sessions) as session:
        escalations: list[dict[str, Any]] = []
        for p in world.people:
            escalations.extend(escalation_rows(rng, world, p, len(escalations) + 1))
        counts["escalations"] = await insert_rows(session, table(Escalation), escalations)
        owners = {p.id: p for p in world.people}
        await insert_rows(
            session,
            table(EscalationAlert),
            (
                {
                    "escalation_id": e["id"],
                    "counselor_id": c,
                    "chat_id": FIRST_COUNSELOR_USER + c,
                    "message_id": rng.randrange(1, 2**31),
                    "stage": 0,
                    "sent_at": e["created_at"],
                }
                for e in escalations
                for c in (owners[e["patient_id"]].counselor_id, owners[e["patient_id"]].backup_id)
                if c is not None
            ),
        )
        await insert_rows(
            session, table(CopingSession), (r for p in world.people for r in coping_rows(rng, world, p))
        )
        await insert_rows(
            session,
            table(CounselorNote),
            (
                {
                    "patient_id": p.id,
                    "counselor_id": p.counselor_id,
                    "text": rng.choice(COUNSELOR_NOTES),
                    "created_at": _between(rng, p.created_at, p.gone_at or world.now),
                }
                for p in world.people
                for _ in range(_poisson(rng, (world.now - p.created_at) / timedelta(days=14)))
            ),
        )
    async with db.transaction(sessions) as session:
        attendance: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        for item in world.sessions:
            found = reminder_rows(rng, world, item)
            attendance += found.attendance
            outbox += found.outbox
            if len(outbox) >= 4 * CHUNK:
                counts["attendance"] += await insert_rows(session, table(Attendance), attendance)
                counts["outbox"] += await insert_rows(session, table(OutboxMessage), outbox)
                attendance, outbox = [], []
        counts["attendance"] += await insert_rows(session, table(Attendance), attendance)
        counts["outbox"] += await insert_rows(session, table(OutboxMessage), [*outbox, *digest_rows(world)])


async def finish_fill(engine: AsyncEngine) -> None:
    """PostgreSQL: sequences past the ids given, then VACUUM ANALYZE (autovacuum's work after a big load).
    SQLite: its connections closed, so the write-ahead log is checkpointed into the file."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            for name in ("patients", "counselors", "patient_groups", "program_sessions", "escalations"):
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                    )
                )
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


async def database_mb(engine: AsyncEngine) -> float:
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            size = await connection.scalar(text("SELECT pg_database_size(current_database())"))
        return round(int(size or 0) / 2**20, 1)
    path = Path(engine.url.database or "")
    files = [path, path.with_name(path.name + "-wal")]
    return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)


# ---- timing -----------------------------------------------------------------------------------------------


async def measure(
    sessions: async_sessionmaker[AsyncSession], runs: int, call: Callable[[AsyncSession, int], Awaitable[T]]
) -> tuple[list[float], list[T]]:
    """Milliseconds of `runs` calls, each in its own transaction (opened and committed in the time), after
    one call not counted (imports, the pool's first connection)."""
    times: list[float] = []
    results: list[T] = []
    for run in range(runs + 1):
        started = clock.perf_counter()
        async with db.transaction(sessions) as session:
            result = await call(session, run)
        if run:
            times.append((clock.perf_counter() - started) * 1000)
            results.append(result)
    return times, results


def ms(values: list[float], how: Callable[[list[float]], float] = statistics.median) -> float:
    return round(how(values), 2)


LABELS = ChartLabels(
    title="{alias}: last 14 days",
    craving="Craving (0-10)",
    mood="Mood (1-5)",
    use="Use reported",
    triggers="Triggers",
    no_triggers="No triggers named",
    trigger_names={key: key.title() for key in checkin.TRIGGERS},
)


async def time_queries(
    sessions: async_sessionmaker[AsyncSession], world: World, runs: int
) -> dict[str, object]:
    now = world.now
    async with db.transaction(sessions) as session:
        counselors = list(await session.scalars(select(Counselor).order_by(Counselor.id)))
    by_id = {c.id: c for c in counselors}
    step = max(1, len(counselors) // runs)

    async def caseload_page(session: AsyncSession, run: int) -> int:
        counselor = counselors[(run * step) % len(counselors)]
        lines = await rules.caseload(
            session,
            counselor.id,
            now,
            high_craving=HIGH_CRAVING,
            whole_program=workspace.whole_program(counselor),
        )
        rules.page(lines, 1)
        return len(lines)

    caseload_times, sizes = await measure(sessions, runs, caseload_page)
    print(
        f"/caseload page 1 ({min(sizes)}-{max(sizes)} patients): "
        f"median {ms(caseload_times)} ms, max {ms(caseload_times, max)} ms"
    )

    active = [p for p in world.people if p.status is PatientStatus.ACTIVE]
    chosen = [active[(run * len(active)) // (runs + 1)] for run in range(runs + 1)]
    chart_days: list[list[Day]] = []

    async def patient_view(session: AsyncSession, run: int) -> int:
        person = chosen[run]
        patient = await workspace.visible_patient(session, by_id[person.counselor_id], person.alias)
        assert patient is not None
        summary = await rules.patient_summary(session, patient.id, now, days=SUMMARY_DAYS)
        await plans.plan_of(session, patient.id)
        await workspace.recent_notes(session, patient.id)
        found = await checkin.days_between(session, patient.id, summary.days[0].day, summary.days[-1].day)
        chart_days.append(fill_window(summary.days[-1].day, SUMMARY_DAYS, found))
        return summary.totals.checkins

    summary_times, _ = await measure(sessions, runs, patient_view)
    print(f"/patient queries: median {ms(summary_times)} ms, max {ms(summary_times, max)} ms")
    chart_times = []
    for n, days in enumerate(chart_days[: min(len(chart_days), 6)]):
        started = clock.perf_counter()
        render_chart(days, LABELS)
        if n:  # the first imports matplotlib
            chart_times.append((clock.perf_counter() - started) * 1000)
    print(f"/patient chart: median {ms(chart_times)} ms")

    per_counselor: list[float] = []

    async def all_digests(session: AsyncSession, run: int) -> int:
        sent = 0
        for counselor in counselors:
            started = clock.perf_counter()
            found = await rules.digest(
                session,
                counselor.id,
                now,
                high_craving=HIGH_CRAVING,
                whole_program=workspace.whole_program(counselor),
            )
            if run:
                per_counselor.append((clock.perf_counter() - started) * 1000)
            sent += found is not None
        return sent

    digest_times, sent = await measure(sessions, 3, all_digests)
    print(
        f"daily digest, {len(counselors)} counselors ({sent[0]} with news): "
        f"median {ms(digest_times)} ms in all, {ms(per_counselor)} ms each, max {ms(per_counselor, max)} ms"
    )

    async def plan_week(session: AsyncSession, run: int) -> int:
        return len(await schedule.due_reminders(session, now, OFFSETS, ahead=timedelta(days=7)))

    plan_times, planned = await measure(sessions, 2, plan_week)
    print(
        f"planner, one week ahead: {planned[0]} reminders, "
        f"median {ms(plan_times)} ms, max {ms(plan_times, max)} ms"
    )
    return {
        "caseload_ms": ms(caseload_times),
        "caseload_max_ms": ms(caseload_times, max),
        "caseload_patients": max(sizes),
        "patient_summary_ms": ms(summary_times),
        "patient_summary_max_ms": ms(summary_times, max),
        "chart_ms": ms(chart_times),
        "digest_all_ms": ms(digest_times),
        "digest_per_counselor_ms": ms(per_counselor),
        "digest_max_ms": ms(per_counselor, max),
        "plan_week_ms": ms(plan_times),
        "plan_week_max_ms": ms(plan_times, max),
        "plan_week_reminders": planned[0],
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    work = None if args.database_url else Path(tempfile.mkdtemp(prefix="datascale-"))
    url = args.database_url or f"sqlite+aiosqlite:///{work}/bench.sqlite3"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rng = random.Random(args.seed)
    engine = db.make_engine(url, encryption_key=KEY)
    try:
        await fresh_schema(engine)
        sessions = db.make_sessionmaker(engine)
        started = clock.perf_counter()
        world = build_world(rng, args.patients, args.days, args.caseload, now)
        await fill(sessions, world, rng)
        await finish_fill(engine)
        fill_s = round(clock.perf_counter() - started, 1)
        size = await database_mb(engine)
        counts = dict(world.counts)
        print(f"filled in {fill_s} s: {size} MB, {counts}")
        timings = await time_queries(sessions, world, args.runs)
    finally:
        await engine.dispose()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)  # a gigabyte, of no use once measured
    return {
        "database": engine.dialect.name,
        "patients": args.patients,
        "days": args.days,
        "counselors": len(world.counselors),
        **counts,
        "fill_s": fill_s,
        "db_mb": size,
        **timings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--caseload", type=int, default=50, help="patients per counselor")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of /caseload and /patient")
    parser.add_argument("--seed", type=int, default=1, help="for the random history")
    parser.add_argument(
        "--database-url",
        help="a SCRATCH database: on PostgreSQL its public schema is dropped and rebuilt; a SQLite file must "
        "have no tables (default: a new SQLite file in a temporary directory)",
    )
    args = parser.parse_args()
    if args.patients < 1 or args.days < 7 or args.caseload < 1 or args.runs < 1:
        parser.error("--patients, --caseload and --runs must be positive, --days at least 7")
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
