"""The audit log: who did what to which record. Ids and codes only, never free text or names.

A patient is named only where erasure can find them: as the actor or the subject (`actor_id`,
`subject_id`), or among `patients` (rows of their own, `AuditPatient`, deleted with the patient). Never in
the detail, which is encrypted and cannot be searched: an erased patient's id would stay there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AuditEvent, AuditPatient

ActorType = Literal["patient", "counselor", "system", "cli"]
SubjectType = Literal["patient", "counselor", "invite", "consent", "escalation"]
PATIENT_KEYS = frozenset({"patient", "patient_id", "patients", "patient_ids"})


def record(
    session: AsyncSession,
    action: str,
    *,
    actor_type: ActorType,
    actor_id: int | None = None,
    subject_type: SubjectType | None = None,
    subject_id: int | None = None,
    patients: Iterable[int] = (),
    **detail: str | int | bool | None,
) -> AuditEvent:
    """Write an event; `patients` are the patients it names beside its subject (a caseload page's)."""
    named = PATIENT_KEYS.intersection(detail)
    if named:
        raise ValueError(f"audit detail {sorted(named)}: name patients as the subject or in `patients`")
    event = AuditEvent(
        action=action,
        actor_type=actor_type,
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail or None,
        patients=[AuditPatient(patient_id=patient_id) for patient_id in dict.fromkeys(patients)],
    )
    session.add(event)
    return event
