"""Consent to share with the care team, modelled on the elements of a 42 CFR Part 2 consent.

The wording lives in `content/<lang>/consent.yaml`; CONSENT_VERSION names the version of that wording a
patient agreed to. Bump it whenever the consent texts change in meaning.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.core import audit
from bot.core.models import Consent, OutboxMessage, Patient, PatientStatus, utcnow
from bot.enrollment.onboarding import Step
from bot.outbox import store as outbox

# Version 2 (issue 18 item 13): automatic reading and alerts, welfare checks, Part 2's exceptions, and more.
# Version 3 (issue 22): questionnaires, medicine reminders and doses, naloxone, replies to the care team,
# aftercare check-ins after discharge (and the consent lasting until they end), the redacted label export.
CONSENT_VERSION = "2026-12.3"
SCOPE = "care_team_sharing"


async def active_consent(session: AsyncSession, patient_id: int) -> Consent | None:
    return await session.scalar(
        select(Consent)
        .where(Consent.patient_id == patient_id, Consent.scope == SCOPE, Consent.revoked_at.is_(None))
        .order_by(Consent.accepted_at.desc(), Consent.id.desc())
        .limit(1)
    )


def version_in_force_query(patient_id: ColumnElement[int]) -> Select[str]:
    """The version of the patient's consent in force (read with the patient on every message: see
    bot.waiting)."""
    return (
        select(Consent.version)
        .where(Consent.patient_id == patient_id, Consent.scope == SCOPE, Consent.revoked_at.is_(None))
        .order_by(Consent.accepted_at.desc(), Consent.id.desc())
        .limit(1)
    )


def outdated_version(patient: Patient, version_in_force: str | None) -> bool:
    """An active patient who agreed to an earlier version: asked to agree to this one (set-up is kept)."""
    return (
        patient.status is PatientStatus.ACTIVE
        and version_in_force is not None
        and version_in_force != CONSENT_VERSION
    )


async def outdated(session: AsyncSession, patient: Patient) -> bool:
    if patient.status is not PatientStatus.ACTIVE:
        return False
    agreed = await active_consent(session, patient.id)
    return outdated_version(patient, None if agreed is None else agreed.version)


async def accept(session: AsyncSession, patient: Patient, *, now: datetime | None = None) -> Consent:
    """Record the agreement and move the patient on to set-up. Accepting twice records nothing new; agreeing
    to a new version adds a consent of that version (the earlier one stays: the record of what was agreed)."""
    existing = await active_consent(session, patient.id)
    if existing is not None and existing.version == CONSENT_VERSION:
        return existing
    consent = Consent(
        patient_id=patient.id,
        scope=SCOPE,
        version=CONSENT_VERSION,
        language=patient.language,
        accepted_at=now or utcnow(),
    )
    session.add(consent)
    await session.flush()
    if patient.status in (PatientStatus.CONSENT_PENDING, PatientStatus.CONSENT_REVOKED):
        first_time = patient.checkin_time is None
        patient.status = PatientStatus.ONBOARDING if first_time else PatientStatus.ACTIVE
        patient.onboarding_step = Step.TIMEZONE if first_time else None
    audit.record(
        session,
        "consent.accepted",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="consent",
        subject_id=consent.id,
        version=CONSENT_VERSION,
    )
    return consent


async def revoke(session: AsyncSession, patient: Patient, *, now: datetime | None = None) -> bool:
    """Withdraw consent (every version still in force). Returns False when there was nothing to withdraw."""
    consent = await active_consent(session, patient.id)
    if consent is None:
        return False
    moment = now or utcnow()
    for agreed in await session.scalars(
        select(Consent).where(
            Consent.patient_id == patient.id, Consent.scope == SCOPE, Consent.revoked_at.is_(None)
        )
    ):
        agreed.revoked_at = moment
    patient.status = PatientStatus.CONSENT_REVOKED
    patient.onboarding_step = None
    # Nothing more goes to them on our initiative: reminders and prompts waiting in the outbox are cancelled.
    await outbox.cancel(session, OutboxMessage.patient_id == patient.id, reason="consent_revoked")
    audit.record(
        session,
        "consent.revoked",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="consent",
        subject_id=consent.id,
    )
    return True
