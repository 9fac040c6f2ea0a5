"""The audit log: who did what to which record. Ids and codes only, never free text or names."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AuditEvent

ActorType = Literal["patient", "counselor", "system", "cli"]
SubjectType = Literal["patient", "counselor", "invite", "consent", "escalation"]


def record(
    session: AsyncSession,
    action: str,
    *,
    actor_type: ActorType,
    actor_id: int | None = None,
    subject_type: SubjectType | None = None,
    subject_id: int | None = None,
    **detail: str | int | bool | None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor_type=actor_type,
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail or None,
    )
    session.add(event)
    return event
