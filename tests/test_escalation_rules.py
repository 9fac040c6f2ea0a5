"""Escalation rules (bot/risk/escalation.py) and who a page reaches (bot/risk/paging.py with the on-call
roster and office hours), on the test database at fixed times.

Office hours are the default Mon-Fri 08:00-18:00 in America/New_York. OFFICE is Monday 2026-11-23 10:00 in
New York; EVENING is the same Monday at 18:00 there (the end is exclusive, so after hours). Re-page gaps are
the defaults: imminent 5, 10 minutes; high 30, 60 minutes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.content_check.loader import Content
from bot.core import db
from bot.core.config import Settings
from bot.core.models import (
    AssignmentRole,
    AuditEvent,
    Counselor,
    CounselorRole,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    OutboxMessage,
    Patient,
    RiskSignal,
)
from bot.risk import Category, RiskLevel, Screening, oncall, paging, promise
from bot.risk import escalation as rules
from bot.runtime import Runtime
from tests.harness import SHIPPED_CONTENT, load_content_once
from tests.records import add_counselor, add_patient, assign

Sessions = async_sessionmaker[AsyncSession]
OFFICE = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
EVENING = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # Monday 18:00 in New York: just closed
MINUTE = timedelta(minutes=1)


# ---- records ---------------------------------------------------------------------------------------------


async def _raise(
    sessions: Sessions,
    settings: Settings,
    patient: Patient,
    level: RiskLevel,
    now: datetime,
    *,
    category: Category = Category.SUICIDE,
    detail: str | None = "words",
) -> rules.Raised:
    async with db.transaction(sessions) as session:
        return await rules.raise_escalation(
            session, patient, level, category, "message", detail, now, settings
        )


async def _load(sessions: Sessions, escalation_id: int) -> Escalation:
    async with sessions() as session:
        escalation = await session.get(Escalation, escalation_id)
    assert escalation is not None
    return escalation


async def _set(sessions: Sessions, escalation_id: int, **fields: object) -> None:
    async with db.transaction(sessions) as session:
        escalation = await session.get(Escalation, escalation_id)
        assert escalation is not None
        for name, value in fields.items():
            setattr(escalation, name, value)


async def _audit(sessions: Sessions, action: str) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


async def _recipients(
    sessions: Sessions, escalation_id: int, stage: int, on_call: list[Counselor] | None = None
) -> list[int]:
    await _set(sessions, escalation_id, stage=stage)
    async with sessions() as session:
        escalation = await session.get(Escalation, escalation_id)
        assert escalation is not None
        return [c.id for c in await rules.recipients(session, escalation, on_call or [])]


# ---- record_signal and effective_level ----------------------------------------------------------------


def _screening(level: RiskLevel, *categories: Category) -> Screening:
    return Screening(level, categories or (Category.CRAVING,))


async def _signal(
    sessions: Sessions, settings: Settings, patient: Patient, level: RiskLevel, now: datetime
) -> RiskLevel:
    async with db.transaction(sessions) as session:
        return await rules.record_signal(session, patient, _screening(level), "message", now, settings)


async def test_a_signal_without_risk_is_not_recorded(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    assert await _signal(sessions, settings, patient, RiskLevel.NONE, OFFICE) is RiskLevel.NONE
    async with sessions() as session:
        assert list(await session.scalars(select(RiskSignal))) == []


async def test_a_signal_keeps_level_categories_and_source_only(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        screening = Screening(RiskLevel.HIGH, (Category.RELAPSE, Category.CRAVING))
        level = await rules.record_signal(session, patient, screening, "checkin", OFFICE, settings)
    assert level is RiskLevel.HIGH
    async with sessions() as session:
        [row] = await session.scalars(select(RiskSignal))
    assert (row.patient_id, row.at, row.level, row.categories, row.source) == (
        patient.id,
        OFFICE,
        "high",
        ["relapse", "craving"],
        "checkin",
    )


async def test_the_third_moderate_signal_in_48_hours_counts_as_high(
    sessions: Sessions, settings: Settings
) -> None:
    assert settings.moderate_signals_raise == 3
    patient = await add_patient(sessions)
    counted = [
        await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE + n * timedelta(hours=20))
        for n in range(3)
    ]
    assert counted == [RiskLevel.MODERATE, RiskLevel.MODERATE, RiskLevel.HIGH]
    async with sessions() as session:
        # What is stored is the signal's own level: the pattern is counted again each time.
        assert [r.level for r in await session.scalars(select(RiskSignal))] == ["moderate"] * 3


async def test_moderate_signals_48_hours_old_or_older_do_not_count(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE - timedelta(hours=48))
    await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE - timedelta(hours=47))
    assert await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE) is RiskLevel.MODERATE
    # One more inside the window completes the pattern.
    assert await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE + MINUTE) is RiskLevel.HIGH


async def test_only_this_patients_moderate_signals_count(sessions: Sessions, settings: Settings) -> None:
    patient, other = await add_patient(sessions), await add_patient(sessions)
    for n in range(2):
        await _signal(sessions, settings, other, RiskLevel.MODERATE, OFFICE - n * MINUTE)
    await _signal(sessions, settings, patient, RiskLevel.HIGH, OFFICE - MINUTE)  # high ones are not counted
    assert await _signal(sessions, settings, patient, RiskLevel.MODERATE, OFFICE) is RiskLevel.MODERATE


def test_effective_level_raises_only_moderate_signals(settings: Settings) -> None:
    two = settings.model_copy(update={"moderate_signals_raise": 2})
    moderate = _screening(RiskLevel.MODERATE)
    assert rules.effective_level(moderate, 0, two) is RiskLevel.MODERATE
    assert rules.effective_level(moderate, 1, two) is RiskLevel.HIGH
    assert rules.effective_level(moderate, 1, settings) is RiskLevel.MODERATE
    assert rules.effective_level(_screening(RiskLevel.HIGH), 5, two) is RiskLevel.HIGH
    assert rules.effective_level(_screening(RiskLevel.IMMINENT), 5, two) is RiskLevel.IMMINENT
    assert rules.effective_level(_screening(RiskLevel.NONE), 5, two) is RiskLevel.NONE


# ---- re-page timing -----------------------------------------------------------------------------------


def test_repage_gaps_by_level(settings: Settings) -> None:
    assert rules.repage_gaps(RiskLevel.IMMINENT, settings) == (5, 10)
    assert rules.repage_gaps(RiskLevel.HIGH, settings) == (30, 60)
    assert rules.repage_gaps(RiskLevel.MODERATE, settings) == (30, 60)


@pytest.mark.parametrize(
    ("level", "gaps", "after"),
    [
        # Each gap counts from the first alert; after the last one the last step repeats.
        (RiskLevel.IMMINENT, (5.0, 10.0), [5, 5, 5, 5]),
        (RiskLevel.HIGH, (30.0, 60.0), [30, 30, 30, 30]),
        (RiskLevel.IMMINENT, (5.0, 10.0, 30.0), [5, 5, 20, 20]),
        (RiskLevel.HIGH, (15.0,), [15, 15, 15, 15]),
    ],
)
def test_next_page_at_each_stage(
    settings: Settings, level: RiskLevel, gaps: tuple[float, ...], after: list[int]
) -> None:
    name = "repage_imminent_minutes" if level is RiskLevel.IMMINENT else "repage_high_minutes"
    configured = settings.model_copy(update={name: gaps})
    assert [rules.next_page_at(level, stage, OFFICE, configured) - OFFICE for stage in range(len(after))] == [
        timedelta(minutes=m) for m in after
    ]


def test_mark_paged_counts_stages_from_the_first_alert(settings: Settings) -> None:
    escalation = Escalation(level="imminent", stage=0, alerted_at=None)
    rules.mark_paged(escalation, OFFICE, settings)
    assert (escalation.stage, escalation.alerted_at, escalation.next_page_at) == (
        0,
        OFFICE,
        OFFICE + 5 * MINUTE,
    )
    moments = [OFFICE + 5 * MINUTE, OFFICE + 10 * MINUTE, OFFICE + 15 * MINUTE]
    for stage, moment in enumerate(moments, start=1):
        rules.mark_paged(escalation, moment, settings)
        assert (escalation.stage, escalation.next_page_at) == (stage, moment + 5 * MINUTE)
    assert escalation.alerted_at == OFFICE


# ---- raise_escalation: opening and grouping -----------------------------------------------------------


async def test_a_first_signal_opens_an_escalation_to_page_now(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    raised = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE, category=Category.OVERDOSE)
    assert raised.page_now
    stored = await _load(sessions, raised.escalation.id)
    assert (stored.patient_id, stored.level, stored.category, stored.source, stored.detail) == (
        patient.id,
        "high",
        "overdose",
        "message",
        "words",
    )
    assert (stored.status, stored.stage, stored.alerted_at) == (EscalationStatus.OPEN, 0, None)
    assert stored.created_at == stored.last_signal_at == stored.next_page_at == OFFICE
    [opened] = await _audit(sessions, "escalation.opened")
    assert (opened.actor_type, opened.subject_id) == ("system", patient.id)
    assert opened.detail == {"escalation_id": stored.id, "level": "high", "category": "overdose"}


async def test_the_same_level_again_joins_without_a_new_page(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE, detail="one")
    await _set(sessions, first.escalation.id, alerted_at=OFFICE, next_page_at=OFFICE + 30 * MINUTE)
    later = OFFICE + timedelta(hours=3)
    joined = await _raise(sessions, settings, patient, RiskLevel.HIGH, later, detail="two")
    assert joined.escalation.id == first.escalation.id and not joined.page_now
    stored = await _load(sessions, first.escalation.id)
    assert (stored.level, stored.last_signal_at, stored.next_page_at) == ("high", later, OFFICE + 30 * MINUTE)
    assert stored.detail == "one\n---\ntwo"
    [event] = await _audit(sessions, "escalation.joined")
    assert event.detail == {"escalation_id": stored.id, "level": "high", "paged": False}


async def test_what_the_buttons_saw_changes_with_a_message_that_pages_and_not_with_a_re_page(
    sessions: Sessions, settings: Settings
) -> None:
    """`seen` (carried by the alert's buttons) reads back from the database as it was written; a message that
    joins the escalation and pages again (stronger, or imminent) changes it, even a moment later; one that
    joins at the same level and pages nobody does not (the counselor has no newer buttons), nor does paging
    the same alert again (a counselor may act on any page of it)."""
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)
    seen = rules.seen(first.escalation)
    stored = await _load(sessions, first.escalation.id)
    assert rules.as_seen(stored, seen)
    rules.mark_paged(stored, OFFICE + MINUTE, settings)
    assert rules.as_seen(stored, seen)
    quiet = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE + timedelta(milliseconds=1))
    assert not quiet.page_now
    assert rules.as_seen(await _load(sessions, first.escalation.id), seen)
    louder = await _raise(sessions, settings, patient, RiskLevel.IMMINENT, OFFICE + timedelta(milliseconds=2))
    assert louder.page_now
    stored = await _load(sessions, first.escalation.id)
    assert not rules.as_seen(stored, seen) and rules.seen(stored) == seen + 2


async def test_a_weaker_signal_joins_and_never_lowers_the_level(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.IMMINENT, OFFICE)
    await _set(sessions, first.escalation.id, status=EscalationStatus.ACKNOWLEDGED, next_page_at=None)
    joined = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE + MINUTE, detail=None)
    assert joined.escalation.id == first.escalation.id and not joined.page_now
    stored = await _load(sessions, first.escalation.id)
    assert (stored.level, stored.status, stored.next_page_at, stored.detail) == (
        "imminent",
        EscalationStatus.ACKNOWLEDGED,
        None,
        "words",  # a signal without words keeps the words already there
    )


async def test_a_stronger_signal_reopens_an_acknowledged_escalation_and_pages(
    sessions: Sessions, settings: Settings
) -> None:
    patient, counselor = await add_patient(sessions), await add_counselor(sessions, "Ana", linked=True)
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)
    await _set(
        sessions,
        first.escalation.id,
        alerted_at=OFFICE,
        status=EscalationStatus.ACKNOWLEDGED,
        acknowledged_at=OFFICE + MINUTE,
        acknowledged_by=counselor.id,
        next_page_at=None,
    )
    later = OFFICE + timedelta(hours=2)
    joined = await _raise(sessions, settings, patient, RiskLevel.IMMINENT, later)
    assert joined.escalation.id == first.escalation.id and joined.page_now
    stored = await _load(sessions, first.escalation.id)
    assert (stored.level, stored.status, stored.acknowledged_at, stored.acknowledged_by) == (
        "imminent",
        EscalationStatus.OPEN,
        None,
        None,
    )
    assert stored.next_page_at == later and stored.alerted_at == OFFICE  # the next page is a re-page


async def test_an_imminent_signal_always_pages_again(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.IMMINENT, OFFICE)
    await _set(sessions, first.escalation.id, alerted_at=OFFICE, next_page_at=OFFICE + 5 * MINUTE)
    again = await _raise(sessions, settings, patient, RiskLevel.IMMINENT, OFFICE + MINUTE)
    assert again.escalation.id == first.escalation.id and again.page_now
    assert (await _load(sessions, first.escalation.id)).next_page_at == OFFICE + MINUTE
    [event] = await _audit(sessions, "escalation.joined")
    assert event.detail is not None and event.detail["paged"] is True


@pytest.mark.parametrize(
    "apart",
    [
        pytest.param({"category": Category.OVERDOSE}, id="another category"),
        pytest.param({"hours": 24}, id="grouping window over"),
        pytest.param({"resolved": True}, id="the open one was resolved"),
        pytest.param({"other_patient": True}, id="another patient"),
    ],
)
async def test_a_signal_opens_a_new_escalation_when_it_does_not_belong(
    sessions: Sessions, settings: Settings, apart: dict[str, object]
) -> None:
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)
    if apart.get("resolved"):
        await _set(sessions, first.escalation.id, status=EscalationStatus.RESOLVED, next_page_at=None)
    who = await add_patient(sessions) if apart.get("other_patient") else patient
    hours = apart.get("hours", 1)
    assert isinstance(hours, int)
    category = apart.get("category", Category.SUICIDE)
    assert isinstance(category, Category)
    second = await _raise(
        sessions, settings, who, RiskLevel.HIGH, OFFICE + timedelta(hours=hours), category=category
    )
    assert second.page_now and second.escalation.id != first.escalation.id
    assert (await _load(sessions, first.escalation.id)).last_signal_at == OFFICE


async def test_the_grouping_window_counts_from_the_last_signal(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)
    for hours in (20, 40, 60):  # each within 24 hours of the one before
        joined = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE + timedelta(hours=hours))
        assert joined.escalation.id == first.escalation.id


async def test_detail_keeps_the_newest_words_within_the_limit(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    long = "a" * (rules.DETAIL_LIMIT + 10) + "END"
    first = await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE, detail=long)
    stored = await _load(sessions, first.escalation.id)
    assert stored.detail is not None and len(stored.detail) == rules.DETAIL_LIMIT
    assert stored.detail.endswith("END")
    await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE + MINUTE, detail="latest")
    stored = await _load(sessions, first.escalation.id)
    assert stored.detail is not None and len(stored.detail) == rules.DETAIL_LIMIT
    assert stored.detail.endswith("END\n---\nlatest")


# ---- recipients: who each stage pages -----------------------------------------------------------------


class Team:
    def __init__(self, patient: Patient, escalation_id: int, **people: Counselor) -> None:
        self.patient, self.escalation_id, self.people = patient, escalation_id, people

    def ids(self, *names: str) -> list[int]:
        return sorted(self.people[name].id for name in names)


async def _team(sessions: Sessions, settings: Settings, *, level: RiskLevel = RiskLevel.HIGH) -> Team:
    """A patient with a primary, a backup, and (off the team) a supervisor, an admin, a colleague."""
    patient = await add_patient(sessions)
    primary, backup = (
        await add_counselor(sessions, "Primary", linked=True),
        await add_counselor(sessions, "Backup", linked=True),
    )
    supervisor = await add_counselor(sessions, "Supervisor", role=CounselorRole.SUPERVISOR, linked=True)
    admin = await add_counselor(sessions, "Admin", role=CounselorRole.ADMIN, linked=True)
    colleague = await add_counselor(sessions, "Colleague", linked=True)
    await assign(sessions, patient, primary, AssignmentRole.PRIMARY)
    await assign(sessions, patient, backup, AssignmentRole.BACKUP)
    raised = await _raise(sessions, settings, patient, level, OFFICE)
    return Team(
        patient,
        raised.escalation.id,
        primary=primary,
        backup=backup,
        supervisor=supervisor,
        admin=admin,
        colleague=colleague,
    )


async def test_each_stage_widens_the_circle(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    assert await _recipients(sessions, team.escalation_id, 0) == team.ids("primary")
    assert await _recipients(sessions, team.escalation_id, 1) == team.ids("primary", "backup")
    widest = team.ids("primary", "backup", "supervisor")  # never an admin or a colleague off the team
    assert await _recipients(sessions, team.escalation_id, 2) == widest
    assert await _recipients(sessions, team.escalation_id, 7) == widest


async def test_a_supervisor_on_the_team_is_paged_once(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    await assign(sessions, team.patient, team.people["supervisor"], AssignmentRole.BACKUP)
    assert await _recipients(sessions, team.escalation_id, 1) == team.ids("primary", "backup", "supervisor")
    assert await _recipients(sessions, team.escalation_id, 2) == team.ids("primary", "backup", "supervisor")


async def test_an_unreachable_primary_pages_the_backups_at_once(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    unlinked = await add_counselor(sessions, "Unlinked", linked=False)
    gone = await add_counselor(sessions, "Gone", active=False, linked=True)
    backup = await add_counselor(sessions, "Backup", linked=True)
    supervisor = await add_counselor(sessions, "Supervisor", role=CounselorRole.SUPERVISOR, linked=True)
    for counselor, role in ((unlinked, AssignmentRole.PRIMARY), (gone, AssignmentRole.PRIMARY)):
        await assign(sessions, patient, counselor, role)
    await assign(sessions, patient, backup, AssignmentRole.BACKUP)
    escalation_id = (await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)).escalation.id
    assert await _recipients(sessions, escalation_id, 0) == [backup.id]
    assert await _recipients(sessions, escalation_id, 2) == [backup.id, supervisor.id]


async def test_a_patient_without_a_reachable_team_pages_the_supervisors(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    await assign(
        sessions, patient, await add_counselor(sessions, "Unlinked", linked=False), AssignmentRole.PRIMARY
    )
    supervisor = await add_counselor(sessions, "Supervisor", role=CounselorRole.SUPERVISOR, linked=True)
    await add_counselor(sessions, "Retired", role=CounselorRole.SUPERVISOR, active=False, linked=True)
    await add_counselor(sessions, "Unlinked supervisor", role=CounselorRole.SUPERVISOR, linked=False)
    escalation_id = (await _raise(sessions, settings, patient, RiskLevel.HIGH, OFFICE)).escalation.id
    assert await _recipients(sessions, escalation_id, 0) == [supervisor.id]


async def test_nobody_reachable_pages_nobody(sessions: Sessions, settings: Settings) -> None:
    patient = await add_patient(sessions)
    escalation_id = (await _raise(sessions, settings, patient, RiskLevel.IMMINENT, OFFICE)).escalation.id
    assert await _recipients(sessions, escalation_id, 0) == []


async def test_whoever_is_on_call_is_added_at_every_stage_once(
    sessions: Sessions, settings: Settings
) -> None:
    team = await _team(sessions, settings, level=RiskLevel.IMMINENT)
    night = await add_counselor(sessions, "Night", linked=True)
    unlinked = Counselor(id=10**6, name="Not linked", chat_id=None, timezone="UTC")
    on_call = [team.people["primary"], night, unlinked]
    assert await _recipients(sessions, team.escalation_id, 0, on_call) == sorted(
        [team.people["primary"].id, night.id]
    )
    assert sorted(await _recipients(sessions, team.escalation_id, 2, on_call)) == sorted(
        [*team.ids("primary", "backup", "supervisor"), night.id]
    )


# ---- which escalations are due --------------------------------------------------------------------------


async def test_due_are_open_escalations_whose_page_time_has_come(
    sessions: Sessions, settings: Settings
) -> None:
    patient = await add_patient(sessions)
    made: dict[str, int] = {}
    for name, level, category in [
        ("high", RiskLevel.HIGH, Category.RELAPSE),
        ("imminent", RiskLevel.IMMINENT, Category.SUICIDE),
        ("later", RiskLevel.IMMINENT, Category.OVERDOSE),
        ("acknowledged", RiskLevel.IMMINENT, Category.SELF_HARM),
        ("resolved", RiskLevel.HIGH, Category.HARM_OTHERS),
        ("never", RiskLevel.HIGH, Category.DANGER),
    ]:
        made[name] = (
            await _raise(sessions, settings, patient, level, OFFICE, category=category)
        ).escalation.id
    await _set(sessions, made["later"], next_page_at=OFFICE + MINUTE)
    await _set(sessions, made["acknowledged"], status=EscalationStatus.ACKNOWLEDGED)
    await _set(sessions, made["resolved"], status=EscalationStatus.RESOLVED)
    await _set(sessions, made["never"], next_page_at=None)
    async with db.transaction(sessions) as session:
        assert [e.id for e in await rules.due(session, OFFICE)] == [made["imminent"], made["high"]]
    async with db.transaction(sessions) as session:
        due = [e.id for e in await rules.due(session, OFFICE + MINUTE)]
    assert due == [made["imminent"], made["later"], made["high"]]  # the most urgent first, then the oldest


# ---- who may act, acknowledge and resolve ------------------------------------------------------------------


async def _alerted(sessions: Sessions, escalation_id: int, counselor: Counselor) -> None:
    async with db.transaction(sessions) as session:
        assert counselor.chat_id is not None
        session.add(
            EscalationAlert(
                escalation_id=escalation_id,
                counselor_id=counselor.id,
                chat_id=counselor.chat_id,
                sent_at=OFFICE,
            )
        )


async def _may_act(sessions: Sessions, escalation_id: int, counselor: Counselor) -> bool:
    async with sessions() as session:
        return await rules.may_act(session, await _load(sessions, escalation_id), counselor)


async def test_the_care_team_may_always_act(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    for status in (EscalationStatus.OPEN, EscalationStatus.RESOLVED):
        await _set(sessions, team.escalation_id, status=status)
        assert await _may_act(sessions, team.escalation_id, team.people["primary"])
        assert await _may_act(sessions, team.escalation_id, team.people["backup"])


async def test_someone_paged_may_act_until_it_is_resolved(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    supervisor, colleague = team.people["supervisor"], team.people["colleague"]
    assert not await _may_act(sessions, team.escalation_id, supervisor)  # a supervisor not (yet) paged
    await _alerted(sessions, team.escalation_id, supervisor)
    for status in (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED):
        await _set(sessions, team.escalation_id, status=status)
        assert await _may_act(sessions, team.escalation_id, supervisor)
        assert not await _may_act(sessions, team.escalation_id, colleague)
    await _set(sessions, team.escalation_id, status=EscalationStatus.RESOLVED)
    assert not await _may_act(sessions, team.escalation_id, supervisor)


async def test_find_for_refuses_and_audits_who_may_not_act(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    colleague, primary = team.people["colleague"], team.people["primary"]
    async with db.transaction(sessions) as session:
        assert (
            await rules.find_for(session, team.escalation_id + 1000, colleague, "ack")
            is rules.Refusal.NOT_FOUND
        )
        assert (
            await rules.find_for(session, team.escalation_id, colleague, "res") is rules.Refusal.NOT_ALLOWED
        )
        found = await rules.find_for(session, team.escalation_id, primary, "ack")
        assert isinstance(found, Escalation) and found.id == team.escalation_id
    refused = await _audit(sessions, "escalation.refused")
    assert [(e.actor_id, e.subject_id, e.detail) for e in refused] == [
        (colleague.id, team.escalation_id + 1000, {"attempted": "ack"}),
        (colleague.id, team.escalation_id, {"attempted": "res"}),
    ]


async def test_the_first_acknowledgement_wins_and_stops_the_pages(
    sessions: Sessions, settings: Settings
) -> None:
    team = await _team(sessions, settings)
    primary, backup = team.people["primary"], team.people["backup"]
    async with db.transaction(sessions) as session:
        escalation = await session.get(Escalation, team.escalation_id)
        assert escalation is not None
        assert rules.acknowledge(session, escalation, primary, OFFICE + MINUTE)
        assert not rules.acknowledge(session, escalation, backup, OFFICE + 2 * MINUTE)
    stored = await _load(sessions, team.escalation_id)
    assert (stored.status, stored.acknowledged_by, stored.acknowledged_at, stored.next_page_at) == (
        EscalationStatus.ACKNOWLEDGED,
        primary.id,
        OFFICE + MINUTE,
        None,
    )
    async with db.transaction(sessions) as session:
        assert [e.id for e in await rules.due(session, OFFICE + timedelta(hours=5))] == []
    assert [e.actor_id for e in await _audit(sessions, "escalation.acknowledged")] == [primary.id]


async def test_resolving_counts_as_acknowledging_and_happens_once(
    sessions: Sessions, settings: Settings
) -> None:
    team = await _team(sessions, settings)
    primary, backup = team.people["primary"], team.people["backup"]
    async with db.transaction(sessions) as session:
        escalation = await session.get(Escalation, team.escalation_id)
        assert escalation is not None
        assert rules.resolve(session, escalation, backup, rules.Outcome.SAFE, OFFICE + MINUTE)
        assert not rules.resolve(session, escalation, primary, rules.Outcome.EMERGENCY, OFFICE + 2 * MINUTE)
        assert not rules.acknowledge(session, escalation, primary, OFFICE + 2 * MINUTE)
    stored = await _load(sessions, team.escalation_id)
    assert (stored.status, stored.outcome, stored.resolved_by, stored.resolved_at) == (
        EscalationStatus.RESOLVED,
        "safe",
        backup.id,
        OFFICE + MINUTE,
    )
    assert (stored.acknowledged_by, stored.acknowledged_at, stored.next_page_at) == (
        backup.id,
        OFFICE + MINUTE,
        None,
    )
    [event] = await _audit(sessions, "escalation.resolved")
    assert (event.actor_id, event.subject_id, event.detail) == (backup.id, stored.id, {"outcome": "safe"})


@pytest.mark.parametrize(
    ("outcome", "said", "kept"),
    [
        (rules.Outcome.SAFE, rules.Verdict.REAL_CONCERN, "real_concern"),
        (rules.Outcome.OTHER, rules.Verdict.REAL_CONCERN, "real_concern"),
        (rules.Outcome.FALSE_ALARM, rules.Verdict.FALSE_ALARM, "false_alarm"),
        (rules.Outcome.FALSE_ALARM, rules.Verdict.REAL_CONCERN, "false_alarm"),  # a false alarm is never real
        # the outcome buttons from before the verdict was asked: what the outcome says by itself
        (rules.Outcome.EMERGENCY, None, "real_concern"),
        (rules.Outcome.FALSE_ALARM, None, "false_alarm"),
        (rules.Outcome.SAFE, None, None),
        (rules.Outcome.OTHER, None, None),
    ],
)
async def test_the_verdict_is_kept_with_the_alert_and_audited(
    sessions: Sessions,
    settings: Settings,
    outcome: rules.Outcome,
    said: rules.Verdict | None,
    kept: str | None,
) -> None:
    team = await _team(sessions, settings)
    async with db.transaction(sessions) as session:
        escalation = await session.get_one(Escalation, team.escalation_id)
        assert rules.resolve(session, escalation, team.people["primary"], outcome, OFFICE + MINUTE, said)
    stored = await _load(sessions, team.escalation_id)
    assert (stored.outcome, stored.verdict) == (outcome.value, kept)
    [event] = await _audit(sessions, "escalation.resolved")
    assert event.detail == {"outcome": outcome.value} | ({"verdict": kept} if kept else {})


async def test_resolving_keeps_an_earlier_acknowledgement(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    primary, backup = team.people["primary"], team.people["backup"]
    async with db.transaction(sessions) as session:
        escalation = await session.get(Escalation, team.escalation_id)
        assert escalation is not None
        rules.acknowledge(session, escalation, primary, OFFICE + MINUTE)
        assert rules.resolve(session, escalation, backup, rules.Outcome.FALSE_ALARM, OFFICE + 9 * MINUTE)
    stored = await _load(sessions, team.escalation_id)
    assert (stored.acknowledged_by, stored.acknowledged_at, stored.resolved_by) == (
        primary.id,
        OFFICE + MINUTE,
        backup.id,
    )


async def test_viewing_details_and_the_plan_is_audited(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    primary = team.people["primary"]
    async with db.transaction(sessions) as session:
        escalation = await session.get(Escalation, team.escalation_id)
        assert escalation is not None
        rules.details_viewed(session, escalation, primary)
        rules.plan_viewed(session, escalation, primary)
    for action in ("escalation.details_viewed", "escalation.safety_plan_viewed"):
        [event] = await _audit(sessions, action)
        assert (event.actor_type, event.actor_id, event.subject_type, event.subject_id) == (
            "counselor",
            primary.id,
            "escalation",
            team.escalation_id,
        )


async def test_open_for_lists_unacknowledged_then_urgent_then_oldest(
    sessions: Sessions, settings: Settings
) -> None:
    team = await _team(sessions, settings)
    primary, supervisor = team.people["primary"], team.people["supervisor"]
    patient = team.patient
    ids: dict[str, int] = {"high_old": team.escalation_id}
    for name, level, category, minutes in [
        ("imminent", RiskLevel.IMMINENT, Category.OVERDOSE, 5),
        ("high_new", RiskLevel.HIGH, Category.RELAPSE, 10),
        ("acknowledged", RiskLevel.IMMINENT, Category.SELF_HARM, 1),
        ("resolved", RiskLevel.IMMINENT, Category.DANGER, 2),
    ]:
        raised = await _raise(
            sessions, settings, patient, level, OFFICE + minutes * MINUTE, category=category
        )
        ids[name] = raised.escalation.id
    await _set(sessions, ids["acknowledged"], status=EscalationStatus.ACKNOWLEDGED)
    await _set(sessions, ids["resolved"], status=EscalationStatus.RESOLVED)
    # Another patient's escalation: the supervisor was paged about it, the primary is not on that team.
    stranger = await add_patient(sessions)
    elsewhere = (await _raise(sessions, settings, stranger, RiskLevel.HIGH, OFFICE)).escalation.id
    await _alerted(sessions, elsewhere, supervisor)
    async with sessions() as session:
        mine = [e.id for e in await rules.open_for(session, primary)]
        paged = [e.id for e in await rules.open_for(session, supervisor)]
    assert mine == [ids["imminent"], ids["high_old"], ids["high_new"], ids["acknowledged"]]
    assert paged == [elsewhere]


async def test_alerts_of_lists_the_copies_sent(sessions: Sessions, settings: Settings) -> None:
    team = await _team(sessions, settings)
    await _alerted(sessions, team.escalation_id, team.people["primary"])
    await _alerted(sessions, team.escalation_id, team.people["backup"])
    async with sessions() as session:
        alerts = await rules.alerts_of(session, team.escalation_id)
        assert sorted(a.counselor_id for a in alerts) == team.ids("primary", "backup")
        assert await rules.alerts_of(session, team.escalation_id + 1) == []


# ---- paging: after hours, the on-call roster joins imminent alerts ---------------------------------------


@pytest.fixture(scope="module")
def content() -> Content:
    """Loaded once for this file: loading it takes seconds, and paging only reads it."""
    return load_content_once(SHIPPED_CONTENT)


@pytest.fixture
def runtime(settings: Settings, engine: AsyncEngine, sessions: Sessions, content: Content) -> Runtime:
    return Runtime(settings, engine, sessions, content)


async def _on_call(sessions: Sessions, name: str, starts: datetime, ends: datetime) -> Counselor:
    counselor = await add_counselor(sessions, name, linked=True)
    async with db.transaction(sessions) as session:
        await oncall.add_shift(session, counselor.id, starts, ends)
    return counselor


async def _page(runtime: Runtime, escalation_id: int, now: datetime) -> list[int]:
    """Page this escalation's next stage at `now`; the counselors it reached, by id."""
    async with db.transaction(runtime.sessions) as session:
        escalation = await session.get(Escalation, escalation_id)
        assert escalation is not None
        stage = escalation.stage if escalation.alerted_at is None else escalation.stage + 1
        await paging.page(runtime, session, escalation, now)
    async with runtime.sessions() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == paging.PAGE_KIND))
        return sorted(
            r.counselor_id
            for r in rows
            if r.ref == {"escalation_id": escalation_id, "stage": stage} and r.counselor_id is not None
        )


# Imminent alerts page whoever is on call whenever a shift covers now, in office hours too (this test once
# expected nobody on call paged in office hours: on a holiday the office hours did not know of, the
# counselor on call was skipped and the patient was told "today"). A shift in office hours is the clinic
# saying the team may not answer; paging one more person about an imminent alert costs little.
@pytest.mark.parametrize(
    ("level", "now", "night_paged"),
    [
        pytest.param(RiskLevel.IMMINENT, OFFICE, True, id="imminent in office hours"),
        pytest.param(RiskLevel.IMMINENT, EVENING, True, id="imminent at closing time"),
        pytest.param(RiskLevel.IMMINENT, EVENING - MINUTE, True, id="imminent a minute before closing"),
        pytest.param(
            RiskLevel.IMMINENT, datetime(2026, 11, 28, 17, 0, tzinfo=UTC), True, id="imminent Saturday"
        ),
        pytest.param(RiskLevel.HIGH, EVENING, False, id="high after hours"),
        pytest.param(RiskLevel.HIGH, OFFICE, False, id="high in office hours"),
    ],
)
async def test_on_call_is_paged_for_imminent_alerts_whenever_a_shift_covers_now(
    runtime: Runtime, settings: Settings, level: RiskLevel, now: datetime, night_paged: bool
) -> None:
    sessions = runtime.sessions
    team = await _team(sessions, settings, level=level)
    night = await _on_call(sessions, "Night", now - timedelta(hours=1), now + timedelta(hours=8))
    await _on_call(sessions, "Tomorrow", now + timedelta(hours=8), now + timedelta(hours=16))
    paged = await _page(runtime, team.escalation_id, now)
    assert paged == sorted([team.people["primary"].id, *([night.id] if night_paged else [])])


async def test_imminent_after_hours_with_nobody_on_call_still_pages_the_team(
    runtime: Runtime, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    team = await _team(runtime.sessions, settings, level=RiskLevel.IMMINENT)
    with caplog.at_level("WARNING", logger="bot.risk.paging"):
        assert await _page(runtime, team.escalation_id, EVENING) == team.ids("primary")
    assert f"event=escalation.nobody_on_call escalation_id={team.escalation_id}" in caplog.text


async def test_unanswered_pages_widen_with_each_stage(runtime: Runtime, settings: Settings) -> None:
    team = await _team(runtime.sessions, settings, level=RiskLevel.IMMINENT)
    night = await _on_call(runtime.sessions, "Night", EVENING, EVENING + timedelta(hours=10))
    moments = [EVENING + n * 5 * MINUTE for n in range(4)]
    pages = [await _page(runtime, team.escalation_id, moment) for moment in moments]
    assert pages == [
        sorted([*team.ids("primary"), night.id]),
        sorted([*team.ids("primary", "backup"), night.id]),
        sorted([*team.ids("primary", "backup", "supervisor"), night.id]),
        sorted([*team.ids("primary", "backup", "supervisor"), night.id]),
    ]
    stored = await _load(runtime.sessions, team.escalation_id)
    assert (stored.stage, stored.alerted_at, stored.next_page_at) == (3, EVENING, moments[-1] + 5 * MINUTE)
    async with runtime.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        patient = await session.get(Patient, team.patient.id)
        assert patient is not None
    primary = team.people["primary"]
    escalation = await _load(runtime.sessions, team.escalation_id)
    texts = [r.payload["text"] for r in rows if r.counselor_id == primary.id]
    assert texts[0] == paging.alert_text(runtime, "escalation.alert", escalation, patient, primary)
    assert texts[1:] == [paging.alert_text(runtime, "escalation.repage", escalation, patient, primary)] * 3


# ---- after hours, a high alert is re-paged only to whoever is on call ----------------------------------


async def test_high_alerts_are_re_paged_after_hours_only_to_the_on_call_counselor(
    runtime: Runtime, settings: Settings
) -> None:
    team = await _team(runtime.sessions, settings)
    night = await _on_call(runtime.sessions, "Night", EVENING, EVENING + timedelta(hours=10))
    moments = [EVENING + n * 30 * MINUTE for n in range(4)]
    pages = [await _page(runtime, team.escalation_id, moment) for moment in moments]
    # The first page as always (the primary counselor); the re-pages neither widen nor wake anyone else.
    assert pages == [team.ids("primary"), [night.id], [night.id], [night.id]]


async def test_a_high_alert_with_nobody_on_call_waits_for_the_office_to_open(
    runtime: Runtime, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    team = await _team(runtime.sessions, settings)
    assert await _page(runtime, team.escalation_id, EVENING) == team.ids("primary")
    with caplog.at_level("INFO", logger="bot.risk.paging"):
        assert await _page(runtime, team.escalation_id, EVENING + 30 * MINUTE) == []
    assert f"event=escalation.repage_held escalation_id={team.escalation_id}" in caplog.text
    opening = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # Tuesday 08:00 in New York
    held = await _load(runtime.sessions, team.escalation_id)
    assert (held.stage, held.next_page_at) == (0, opening)
    # In office hours the re-pages carry on where they stopped.
    assert await _page(runtime, team.escalation_id, opening) == team.ids("primary", "backup")


# ---- a day the office is closed (OFFICE_CLOSED_DAYS) -----------------------------------------------------

CHRISTMAS_MORNING = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)  # Friday 10:00 in New York, a holiday
NEXT_OPENING = datetime(2026, 12, 28, 13, 0, tzinfo=UTC)  # Monday 08:00 in New York


@pytest.fixture
def holiday(runtime: Runtime, settings: Settings) -> Runtime:
    """The runtime with Christmas Day (a Friday) among the days the office is closed."""
    closed = settings.model_copy(update={"office_closed_days": frozenset({date(2026, 12, 25)})})
    return Runtime(closed, runtime.engine, runtime.sessions, runtime.content)


async def test_on_a_closed_day_an_imminent_alert_pages_the_on_call_counselor_and_says_so(
    holiday: Runtime,
) -> None:
    settings, now = holiday.settings, CHRISTMAS_MORNING
    team = await _team(holiday.sessions, settings, level=RiskLevel.IMMINENT)
    on_call = await _on_call(holiday.sessions, "Holiday", now - timedelta(hours=2), now + timedelta(hours=22))
    assert await _page(holiday, team.escalation_id, now) == sorted([team.people["primary"].id, on_call.id])
    async with holiday.sessions() as session:
        kept = await promise.promise_for(session, settings, now, team.escalation_id)
    assert kept == promise.Kept(promise.Promise.ON_CALL)  # not "they will contact you today"


async def test_on_a_closed_day_a_high_alert_waits_for_the_next_opening(holiday: Runtime) -> None:
    settings, now = holiday.settings, CHRISTMAS_MORNING
    team = await _team(holiday.sessions, settings)
    assert await _page(holiday, team.escalation_id, now) == team.ids("primary")
    # Backups and supervisors are off for the holiday too: the re-page is held, not widened to them.
    assert await _page(holiday, team.escalation_id, now + 30 * MINUTE) == []
    assert (await _load(holiday.sessions, team.escalation_id)).next_page_at == NEXT_OPENING
    async with holiday.sessions() as session:
        kept = await promise.promise_for(session, settings, now, team.escalation_id)
    assert kept == promise.Kept(promise.Promise.LATER, NEXT_OPENING)


@pytest.mark.parametrize("language", ["en", "es"])
async def test_an_opening_a_week_or_more_away_is_promised_with_its_date(
    runtime: Runtime, settings: Settings, language: str
) -> None:
    break_days = frozenset(
        date(2026, 12, 24) + timedelta(days=n) for n in range(9)
    )  # Thu Dec 24 to Fri Jan 1
    closed = settings.model_copy(update={"office_closed_days": break_days})
    now = datetime(2026, 12, 24, 0, 0, tzinfo=UTC)  # Wednesday Dec 23, 19:00 in New York
    kept = promise.by_the_hour(closed, now)
    assert kept == promise.Kept(promise.Promise.LATER, datetime(2027, 1, 4, 13, 0, tzinfo=UTC))
    said = promise.render(runtime, kept, "America/New_York", language, now)
    clock = datetime(2027, 1, 4, 8, 0).strftime(runtime.text("promise.time_format", language)).lstrip("0")
    monday = runtime.text("promise.weekdays.0", language)
    when = runtime.text("promise.when.date", language, weekday=monday, month=1, day=4, time=clock)
    assert said == runtime.text("promise.later", language, when=when)  # not "on Monday", which is Dec 28


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        pytest.param(EVENING, datetime(2026, 11, 24, 13, 0, tzinfo=UTC), id="Monday evening: Tuesday 08:00"),
        pytest.param(OFFICE, datetime(2026, 11, 24, 13, 0, tzinfo=UTC), id="in office hours: the next day's"),
        pytest.param(
            datetime(2026, 11, 27, 23, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 13, 0, tzinfo=UTC),
            id="Friday evening: Monday 08:00",
        ),
        pytest.param(
            datetime(2026, 11, 24, 12, 59, tzinfo=UTC),
            datetime(2026, 11, 24, 13, 0, tzinfo=UTC),
            id="a minute before opening",
        ),
    ],
)
def test_next_opening_of_the_office(settings: Settings, moment: datetime, opening: datetime) -> None:
    assert settings.office.next_opening(moment, settings.timezone) == opening
