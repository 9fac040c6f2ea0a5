"""/mydata: everything stored about a patient, as JSON (for computers) and as an HTML page (to read).

The patient's right of access: the export holds every row that belongs to them (found from the models'
foreign keys, `bot.privacy.records`), decrypted, including the words behind an alert, which are their own.
Tables this module does not know by name still come out, column by column, under `other_records`, so a
table added later is never left out. Left out on purpose: the copies of an alert in counselors' chats
(`escalation_alerts`: counselor chat and message ids), the links of audit events to the patient (the events
are in the activity) and invite code hashes.

No Telegram and no texts here: the handler passes the translated labels in (`Wording`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.careteam.flags import FlagKind
from bot.core.models import (
    AftercareCheckIn,
    AftercareStatus,
    AssignmentRole,
    Attendance,
    CareAssignment,
    CareFlag,
    CheckIn,
    CheckInStatus,
    Consent,
    CopingSession,
    CopingStatus,
    Counselor,
    CounselorNote,
    Escalation,
    EscalationStatus,
    GroupMember,
    Invite,
    Measure,
    MeasureSchedule,
    MeasureStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientGroup,
    PatientStatus,
    ProgramSession,
    RiskSignal,
    SafetyPlan,
    ScreenStatus,
    SuicideScreen,
)
from bot.privacy.records import linked_audit_events, links, owned_ids
from bot.risk.safety_plan import STEPS

FORMAT = "iop-companion-export/1"

# Tables the named sections below cover; any other table that belongs to a patient goes to other_records.
CURATED = frozenset(
    {
        "patients",
        "care_assignments",
        "consents",
        "checkins",
        "aftercare_checkins",
        "coping_sessions",
        "safety_plans",
        "suicide_screens",
        "attendance",
        "program_sessions",
        "group_members",
        "escalations",
        "risk_signals",
        "care_flags",
        "outbox",
        "invites",
        "counselor_notes",
        "measures",
        "measure_schedules",
    }
)
# escalation_alerts: counselors' chat and message ids, nothing of the patient's; audit_event_patients: which
# events name the patient (a caseload page that showed them), already listed under "activity"
LEFT_OUT = frozenset({"escalation_alerts", "audit_event_patients"})

# Labels of the HTML page: content keys `mydata.html.<label>`.
LABELS = (
    "title",
    "intro",
    "made_on",
    "nothing",
    "times_note",
    # sections
    "profile",
    "care_team",
    "consents",
    "checkins",
    "aftercare",
    "coping",
    "safety_plan",
    "screens",
    "sessions",
    "attendance",
    "escalations",
    "risk_signals",
    "care_flags",
    "care_team_notes",
    "questionnaires",
    "messages",
    "activity",
    "other_records",
    # fields
    "alias",
    "status",
    "timezone",
    "language",
    "checkin_time",
    "quiet_hours",
    "joined",
    "name",
    "role",
    "agreed",
    "version",
    "withdrawn",
    "day",
    "craving",
    "mood",
    "sleep",
    "triggers",
    "use",
    "note",
    "exercise",
    "before",
    "after",
    "started",
    "result",
    "answered_yes",
    "groups",
    "session",
    "when",
    "answer",
    "reason",
    "level",
    "category",
    "your_words",
    "handled",
    "kind",
    "what",
    "who",
    "team_note",
    "questionnaire",
    "scores",
    "week",
    "connected",
    "use_what",  # an aftercare question skipped: "What did you use?"
    "use_how",  # ... "Were you alone, or did you inject?"
    "skipped",
    "pills",  # a use told as "pills", not knowing what kind (the buttons name the other substances)
    "yes",
    "no",
)

RISK_LEVELS = ("moderate", "high", "imminent")
ACTORS = ("patient", "counselor", "system", "cli")


def value_codes() -> tuple[str, ...]:
    """The codes the page translates (content keys `mydata.values.<code>`): statuses, roles, levels..."""
    codes: list[str] = []
    for kind in (
        PatientStatus,
        CheckInStatus,
        AftercareStatus,
        CopingStatus,
        EscalationStatus,
        ScreenStatus,
        MeasureStatus,
        OutboxStatus,
        AssignmentRole,
        FlagKind,
    ):
        codes.extend(str(member.value) for member in kind)
    codes.extend(RISK_LEVELS)
    codes.extend(ACTORS)
    return tuple(dict.fromkeys(codes))


# ---- gathering ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A column value as JSON: times in ISO 8601 (UTC for moments), enums as their codes."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


def _clock(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


async def gather(session: AsyncSession, patient: Patient, now: datetime) -> dict[str, Any]:
    """Everything stored about the patient, as JSON-ready dicts and lists."""
    pid = patient.id
    return {
        "format": FORMAT,
        "exported_at": now.isoformat(),
        "times": "ISO 8601; moments in UTC, local days and clock times in your time zone",
        "profile": await _profile(session, patient),
        "care_team": await _care_team(session, pid),
        "consents": await _consents(session, pid),
        "checkins": await _checkins(session, pid),
        "aftercare_checkins": await _aftercare(session, pid),
        "coping_sessions": await _coping(session, pid),
        "safety_plan": await _safety_plan(session, pid),
        "screens": await _screens(session, pid),
        "sessions": await _sessions(session, pid),
        "attendance": await _attendance(session, pid),
        "escalations": await _escalations(session, pid),
        "risk_signals": await _risk_signals(session, pid),
        "care_flags": await _care_flags(session, pid),
        "care_team_notes": await _care_team_notes(session, pid),
        "questionnaires": await _questionnaires(session, pid),
        "messages": await _messages(session, patient),
        "activity": await _activity(session, pid),
        "other_records": await _other_records(session, pid),
    }


async def _profile(session: AsyncSession, patient: Patient) -> dict[str, Any]:
    enrolled = await session.scalar(
        select(Invite.used_at).where(Invite.patient_id == patient.id).order_by(Invite.id).limit(1)
    )
    return {
        "alias": patient.alias,
        "status": patient.status.value,
        "timezone": patient.timezone,
        "language": patient.language,
        "checkin_time": _clock(patient.checkin_time),
        "quiet_hours": {"start": _clock(patient.quiet_start), "end": _clock(patient.quiet_end)},
        "telegram_user_id": await session.scalar(
            select(Patient.telegram_user_id).where(Patient.id == patient.id)  # deferred: see the model
        ),
        "chat_id": patient.chat_id,
        "unreachable_since": _plain(patient.unreachable_since),
        "joined_at": _plain(patient.created_at),
        "enrolled_at": _plain(enrolled),
    }


async def _care_team(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Counselor.name, CareAssignment.role, CareAssignment.created_at)
        .join(Counselor, Counselor.id == CareAssignment.counselor_id)
        .where(CareAssignment.patient_id == pid)
        .order_by(CareAssignment.role, CareAssignment.id)
    )
    return [{"name": name, "role": role.value, "since": _plain(since)} for name, role, since in rows.all()]


async def _consents(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(select(Consent).where(Consent.patient_id == pid).order_by(Consent.id))
    return [
        {
            "scope": row.scope,
            "version": row.version,
            "language": row.language,
            "accepted_at": _plain(row.accepted_at),
            "revoked_at": _plain(row.revoked_at),
        }
        for row in rows
    ]


async def _checkins(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(CheckIn).where(CheckIn.patient_id == pid).order_by(CheckIn.local_day, CheckIn.id)
    )
    return [
        {
            "day": _plain(row.local_day),
            "source": row.source.value,
            "status": row.status.value,
            "started_at": _plain(row.started_at),
            "finished_at": _plain(row.finished_at),
            "craving": row.craving,
            "triggers": list(row.triggers or []),
            "trigger_other": row.trigger_other,
            "mood": row.mood,
            "sleep": row.sleep,
            "used": row.used,
            "use_what": row.use_what,
            "use_report": row.use_report,  # what was used and how, as tapped or read (bot.risk.use)
            "note": row.note,
            "skipped": list(row.skipped or []),
        }
        for row in rows
    ]


async def _aftercare(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    """The check-ins after the program (1, 2, 4, 8 and 12 weeks after discharge, for a patient who opted in):
    when each was due and asked, and every answer, "are you connected to ongoing care?" among them."""
    rows = await session.scalars(
        select(AftercareCheckIn).where(AftercareCheckIn.patient_id == pid).order_by(AftercareCheckIn.week)
    )
    return [
        {
            "week": row.week,
            "status": row.status.value,
            "due_at": _plain(row.due_at),
            "asked_at": _plain(row.asked_at),
            "answered_at": _plain(row.answered_at),  # the last answer given
            "finished_at": _plain(row.finished_at),
            "craving": row.craving,
            "mood": row.mood,
            "used": row.used,
            "use_report": row.use_report,  # what was used and how, as tapped or read (bot.risk.use)
            "connected": row.connected,  # "yes", "not_yet" or "help"
            "skipped": list(row.skipped or []),  # the questions skipped (bot.medcare.aftercare.Question)
        }
        for row in rows
    ]


async def _coping(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(CopingSession).where(CopingSession.patient_id == pid).order_by(CopingSession.id)
    )
    return [
        {
            "module": row.module_id,
            "status": row.status.value,
            "steps_seen": row.step_index + 1 if row.status is not CopingStatus.RATING_BEFORE else 0,
            "steps_total": row.steps_total,
            "stopped_early": row.stopped_early,
            "craving_before": row.craving_before,
            "craving_after": row.craving_after,
            "started_at": _plain(row.started_at),
            "finished_at": _plain(row.finished_at),
        }
        for row in rows
    ]


async def _safety_plan(session: AsyncSession, pid: int) -> dict[str, Any] | None:
    plan = await session.scalar(select(SafetyPlan).where(SafetyPlan.patient_id == pid))
    if plan is None:
        return None
    return {
        "steps": {step.value: getattr(plan, step.value) for step in STEPS},
        "created_at": _plain(plan.created_at),
        "updated_at": _plain(plan.updated_at),
    }


async def _screens(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(SuicideScreen).where(SuicideScreen.patient_id == pid).order_by(SuicideScreen.id)
    )
    return [
        {
            "trigger": row.trigger,
            "status": row.status.value,
            "answers": dict(row.answers or {}),
            "result": row.result,
            "started_at": _plain(row.started_at),
            "finished_at": _plain(row.finished_at),
        }
        for row in rows
    ]


async def _sessions(session: AsyncSession, pid: int) -> dict[str, Any]:
    groups = await session.scalars(
        select(PatientGroup.name)
        .join(GroupMember, GroupMember.group_id == PatientGroup.id)
        .where(GroupMember.patient_id == pid)
        .order_by(PatientGroup.name)
    )
    own = await session.scalars(
        select(ProgramSession).where(ProgramSession.patient_id == pid).order_by(ProgramSession.id)
    )
    return {
        "groups": list(groups),
        "individual": [
            {
                "title": row.title,
                "kind": row.kind.value,
                "starts": _plain(row.starts_local),
                "timezone": row.timezone,
                "minutes": row.duration_minutes,
                "repeats": row.rrule,
                "location": row.location,
                "url": row.url,
                "active": row.active,
            }
            for row in own
        ],
    }


async def _attendance(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Attendance, ProgramSession.title)
        .join(ProgramSession, ProgramSession.id == Attendance.session_id)
        .where(Attendance.patient_id == pid)
        .order_by(Attendance.occurrence, Attendance.id)
    )
    return [
        {
            "session": title,
            "starts_at": _plain(row.occurrence),
            "answer": row.response.value,
            "reason": row.reason,
            "answered_at": _plain(row.responded_at),
        }
        for row, title in rows.all()
    ]


async def _escalations(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Escalation).where(Escalation.patient_id == pid).order_by(Escalation.id)
    )
    return [
        {
            "level": row.level,
            "category": row.category,
            "source": row.source,
            "status": row.status.value,
            "created_at": _plain(row.created_at),
            "last_signal_at": _plain(row.last_signal_at),
            "care_team_told_at": _plain(row.alerted_at),
            "acknowledged_at": _plain(row.acknowledged_at),
            "resolved_at": _plain(row.resolved_at),
            "outcome": row.outcome,
            "care_team_verdict": row.verdict,
            "your_words": row.detail,
        }
        for row in rows
    ]


async def _risk_signals(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(RiskSignal).where(RiskSignal.patient_id == pid).order_by(RiskSignal.at, RiskSignal.id)
    )
    return [
        {"at": _plain(row.at), "level": row.level, "categories": list(row.categories), "source": row.source}
        for row in rows
    ]


async def _care_flags(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    rows = await session.scalars(select(CareFlag).where(CareFlag.patient_id == pid).order_by(CareFlag.id))
    return [
        {"kind": row.kind, "created_at": _plain(row.created_at), "resolved_at": _plain(row.resolved_at)}
        for row in rows
    ]


async def _care_team_notes(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    """Notes counselors wrote about the patient (/note). They are part of the patient's record, so the
    patient may read them (right of access); counselors are told so when they write one."""
    rows = await session.execute(
        select(CounselorNote, Counselor.name)
        .outerjoin(Counselor, Counselor.id == CounselorNote.counselor_id)
        .where(CounselorNote.patient_id == pid)
        .order_by(CounselorNote.created_at, CounselorNote.id)
    )
    return [
        {"written_at": _plain(note.created_at), "by": name, "text": note.text} for note, name in rows.all()
    ]


async def _questionnaires(session: AsyncSession, pid: int) -> dict[str, Any]:
    """The questionnaires given (PHQ-9, GAD-7, BAM...): every answer (item -> the chosen option's value), the
    scores, and the schedules the care team set."""
    rows = await session.scalars(select(Measure).where(Measure.patient_id == pid).order_by(Measure.id))
    schedules = await session.scalars(
        select(MeasureSchedule).where(MeasureSchedule.patient_id == pid).order_by(MeasureSchedule.id)
    )
    return {
        "given": [
            {
                "questionnaire": row.instrument,
                "source": row.source.value,
                "status": row.status.value,
                "language": row.language,
                "started_at": _plain(row.started_at),
                "finished_at": _plain(row.finished_at),
                "answers": dict(row.answers or {}),
                "scores": dict(row.scores or {}),
                "safety_question_above_lowest": row.safety_positive,
            }
            for row in rows
        ],
        "schedules": [
            {"questionnaire": row.instrument, "every_days": row.every_days, "set_at": _plain(row.set_at)}
            for row in schedules
        ],
    }


async def _messages(session: AsyncSession, patient: Patient) -> list[dict[str, Any]]:
    """Messages planned for the patient (reminders, check-in prompts...): kind, status and times."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.patient_id == patient.id)
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
    )
    return [
        {
            "kind": row.kind,
            "status": row.status.value,
            "due_at": _plain(row.due_at),
            "sent_at": _plain(row.sent_at),
        }
        for row in rows
    ]


async def _activity(session: AsyncSession, pid: int) -> list[dict[str, Any]]:
    """The audit log's entries about the patient: what was done, when, and by whom (a patient, a
    counselor, the system, an administrator)."""
    return [
        {"at": _plain(event.at), "action": event.action, "by": event.actor_type}
        for event in await linked_audit_events(session, pid)
    ]


async def _other_records(session: AsyncSession, pid: int) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for link in links():
        table: Table = link.table
        if table.name in CURATED or table.name in LEFT_OUT:
            continue
        key = table.primary_key.columns[0]
        rows = await session.execute(select(table).where(key.in_(owned_ids(link, pid))).order_by(key))
        records = [{key: _plain(value) for key, value in row._mapping.items()} for row in rows]
        if records:
            found.setdefault(table.name, []).extend(records)
    return found


def to_json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


# ---- the page to read --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wording:
    """The page's words in the patient's language: `labels` (LABELS), `values` (value_codes()), and names
    for codes (`triggers`, `sleep`, `modules`, `plan_steps`, `categories`, `answers`, `connected`...)."""

    labels: Mapping[str, str]
    values: Mapping[str, str]
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    language: str = "en"


_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ l.title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { text-align: left; vertical-align: top; padding: 0.3rem 0.5rem; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; } .muted { color: #666; } .words { white-space: pre-wrap; }
</style>
</head>
<body>
{%- macro nothing() %}<p class="muted">{{ l.nothing }}</p>{% endmacro %}
{%- macro yesno(value) %}{% if value is none %}–{% elif value %}{{ l.yes }}{% else %}{{ l.no }}{% endif %}
{%- endmacro %}
<h1>{{ l.title }}</h1>
<p>{{ l.made_on }}</p>
<p>{{ l.intro }}</p>
<p class="muted">{{ l.times_note }}</p>

<h2>{{ l.profile }}</h2>
<table>
<tr><th>{{ l.alias }}</th><td>{{ d.profile.alias }}</td></tr>
<tr><th>{{ l.status }}</th><td>{{ v(d.profile.status) }}</td></tr>
<tr><th>{{ l.timezone }}</th><td>{{ d.profile.timezone }}</td></tr>
<tr><th>{{ l.language }}</th><td>{{ d.profile.language }}</td></tr>
<tr><th>{{ l.checkin_time }}</th><td>{{ d.profile.checkin_time or "–" }}</td></tr>
<tr><th>{{ l.quiet_hours }}</th>
<td>{{ d.profile.quiet_hours.start }}–{{ d.profile.quiet_hours.end }}</td></tr>
<tr><th>{{ l.joined }}</th><td>{{ local(d.profile.joined_at) }}</td></tr>
</table>

<h2>{{ l.care_team }}</h2>
{% if d.care_team %}<table><tr><th>{{ l.name }}</th><th>{{ l.role }}</th></tr>
{% for c in d.care_team %}<tr><td>{{ c.name }}</td><td>{{ v(c.role) }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.consents }}</h2>
{% if d.consents %}<table><tr><th>{{ l.agreed }}</th><th>{{ l.version }}</th><th>{{ l.withdrawn }}</th></tr>
{% for c in d.consents %}<tr><td>{{ local(c.accepted_at) }}</td><td>{{ c.version }}</td>
<td>{{ local(c.revoked_at) }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.checkins }}</h2>
{% if d.checkins %}<table><tr><th>{{ l.day }}</th><th>{{ l.status }}</th><th>{{ l.craving }}</th>
<th>{{ l.mood }}</th><th>{{ l.sleep }}</th><th>{{ l.triggers }}</th><th>{{ l.use }}</th>
<th>{{ l.note }}</th></tr>
{% for c in d.checkins %}<tr><td>{{ c.day }}</td><td>{{ v(c.status) }}</td>
<td>{{ c.craving if c.craving is not none else "–" }}</td><td>{{ c.mood if c.mood is not none else "–" }}</td>
<td>{{ name("sleep", c.sleep) if c.sleep else "–" }}</td>
<td>{% for key in c.triggers %}{{ name("triggers", key) }}{% if not loop.last %}, {% endif %}{% endfor %}
{%- if c.trigger_other %}<br><span class="words">{{ c.trigger_other }}</span>{% endif %}</td>
<td>{{ yesno(c.used) }}{% if c.use_what %}<br><span class="words">{{ c.use_what }}</span>{% endif %}</td>
<td class="words">{{ c.note or "" }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.aftercare }}</h2>
{% if d.aftercare_checkins %}<table><tr><th>{{ l.week }}</th><th>{{ l.when }}</th><th>{{ l.status }}</th>
<th>{{ l.craving }}</th><th>{{ l.mood }}</th><th>{{ l.use }}</th><th>{{ l.connected }}</th>
<th>{{ l.skipped }}</th></tr>
{% for a in d.aftercare_checkins %}<tr><td>{{ a.week }}</td><td>{{ local(a.asked_at or a.due_at) }}</td>
<td>{{ v(a.status) }}</td><td>{{ a.craving if a.craving is not none else "–" }}</td>
<td>{{ a.mood if a.mood is not none else "–" }}</td>
<td>{{ yesno(a.used) }}{% if used(a.use_report) %}<br>{{ used(a.use_report) }}{% endif %}</td>
<td>{{ name("connected", a.connected) if a.connected else "–" }}</td>
<td>{% for q in a.skipped %}{{ l.get(q, q) }}{% if not loop.last %}, {% endif %}{% else %}–{% endfor %}
</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.coping }}</h2>
{% if d.coping_sessions %}<table><tr><th>{{ l.started }}</th><th>{{ l.exercise }}</th><th>{{ l.status }}</th>
<th>{{ l.before }}</th><th>{{ l.after }}</th></tr>
{% for c in d.coping_sessions %}<tr><td>{{ local(c.started_at) }}</td><td>{{ name("modules", c.module) }}</td>
<td>{{ v(c.status) }}</td><td>{{ c.craving_before if c.craving_before is not none else "–" }}</td>
<td>{{ c.craving_after if c.craving_after is not none else "–" }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.safety_plan }}</h2>
{% if d.safety_plan %}<table>
{% for key, text in d.safety_plan.steps.items() %}<tr><th>{{ name("plan_steps", key) }}</th>
<td class="words">{{ text or "–" }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.screens }}</h2>
{% if d.screens %}<table><tr><th>{{ l.started }}</th><th>{{ l.status }}</th><th>{{ l.answered_yes }}</th></tr>
{% for s in d.screens %}<tr><td>{{ local(s.started_at) }}</td><td>{{ v(s.status) }}</td>
<td>{% for q, yes in s.answers.items() if yes %}{{ name("screener", q) }}{% if not loop.last %}; {% endif %}
{%- else %}–{% endfor %}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.sessions }}</h2>
{% if d.sessions.groups or d.sessions.individual %}<table>
{% if d.sessions.groups %}<tr><th>{{ l.groups }}</th>
<td>{{ d.sessions.groups | join(", ") }}</td></tr>{% endif %}
{% for s in d.sessions.individual %}<tr><th>{{ s.title }}</th><td>{{ s.starts | replace("T", " ") }}
({{ s.timezone }}){% if s.location %}, {{ s.location }}{% endif %}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.attendance }}</h2>
{% if d.attendance %}<table><tr><th>{{ l.when }}</th><th>{{ l.session }}</th><th>{{ l.answer }}</th>
<th>{{ l.reason }}</th></tr>
{% for a in d.attendance %}<tr><td>{{ local(a.starts_at) }}</td><td>{{ a.session }}</td>
<td>{{ name("answers", a.answer) }}</td><td class="words">{{ a.reason or "" }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.escalations }}</h2>
{% if d.escalations %}<table><tr><th>{{ l.when }}</th><th>{{ l.level }}</th><th>{{ l.category }}</th>
<th>{{ l.status }}</th><th>{{ l.handled }}</th><th>{{ l.your_words }}</th></tr>
{% for e in d.escalations %}<tr><td>{{ local(e.created_at) }}</td><td>{{ v(e.level) }}</td>
<td>{{ name("categories", e.category) }}</td><td>{{ v(e.status) }}</td>
<td>{{ local(e.resolved_at or e.acknowledged_at) }}</td><td class="words">{{ e.your_words or "" }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.risk_signals }}</h2>
{% if d.risk_signals %}<table><tr><th>{{ l.when }}</th><th>{{ l.level }}</th><th>{{ l.category }}</th></tr>
{% for r in d.risk_signals %}<tr><td>{{ local(r.at) }}</td><td>{{ v(r.level) }}</td>
<td>{% for c in r.categories %}{{ name("categories", c) }}{% if not loop.last %}, {% endif %}
{%- endfor %}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.care_flags }}</h2>
{% if d.care_flags %}<table><tr><th>{{ l.when }}</th><th>{{ l.kind }}</th></tr>
{% for f in d.care_flags %}<tr><td>{{ local(f.created_at) }}</td><td>{{ v(f.kind) }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.care_team_notes }}</h2>
{% if d.care_team_notes %}<table><tr><th>{{ l.when }}</th><th>{{ l.who }}</th><th>{{ l.team_note }}</th></tr>
{% for n in d.care_team_notes %}<tr><td>{{ local(n.written_at) }}</td><td>{{ n.by or "–" }}</td>
<td class="words">{{ n.text }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.questionnaires }}</h2>
{% if d.questionnaires.given %}<table><tr><th>{{ l.started }}</th><th>{{ l.questionnaire }}</th>
<th>{{ l.status }}</th><th>{{ l.scores }}</th></tr>
{% for q in d.questionnaires.given %}<tr><td>{{ local(q.started_at) }}</td>
<td>{{ name("questionnaires", q.questionnaire) }}</td><td>{{ v(q.status) }}</td>
<td>{% for key, value in q.scores.items() %}{{ name("scores", q.questionnaire ~ "." ~ key) }}: {{ value }}
{%- if not loop.last %}; {% endif %}
{%- else %}–{% endfor %}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.messages }}</h2>
{% if d.messages %}<table><tr><th>{{ l.when }}</th><th>{{ l.kind }}</th><th>{{ l.status }}</th></tr>
{% for m in d.messages %}<tr><td>{{ local(m.sent_at or m.due_at) }}</td><td>{{ m.kind }}</td>
<td>{{ v(m.status) }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}

<h2>{{ l.activity }}</h2>
{% if d.activity %}<table><tr><th>{{ l.when }}</th><th>{{ l.what }}</th><th>{{ l.who }}</th></tr>
{% for a in d.activity %}<tr><td>{{ local(a.at) }}</td><td>{{ a.action }}</td><td>{{ v(a.by) }}</td></tr>
{% endfor %}</table>{% else %}{{ nothing() }}{% endif %}
{% if d.other_records %}
<h2>{{ l.other_records }}</h2>
{% for table, rows in d.other_records.items() %}<h3>{{ table }}</h3>
<table>{% for row in rows %}<tr><td class="words">{% for key, value in row.items() %}{{ key }}: {{ value }}
{% endfor %}</td></tr>{% endfor %}</table>
{% endfor %}{% endif %}
</body>
</html>
"""

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, trim_blocks=True)
_page = _environment.from_string(_TEMPLATE)


def render_html(data: Mapping[str, Any], wording: Wording) -> bytes:
    """The export as a page to read in any browser, with times in the patient's own time zone."""
    try:
        zone = ZoneInfo(str(data["profile"]["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def local(value: str | None) -> str:
        if not value:
            return "–"
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def value(code: object) -> str:
        return wording.values.get(str(code), str(code))

    def name(kind: str, code: object) -> str:
        return wording.names.get(kind, {}).get(str(code), str(code))

    def used(report: Mapping[str, Any] | None) -> str:
        """What was used and how (`use_report`: bot.risk.use.UseReport), in the patient's language."""
        if not report:
            return ""
        what = [name("substances", code) for code in report.get("substances") or []]
        return ", ".join([*what, *(name("use_how", how) for how in ("alone", "injected") if report.get(how))])

    html = _page.render(
        d=data, l=wording.labels, v=value, name=name, used=used, local=local, language=wording.language
    )
    return html.encode("utf-8")
