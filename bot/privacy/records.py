"""Where a patient's records are: every table that points at them, found from the models' foreign keys.

The export (`bot.privacy.export`) and the erasure (`bot.privacy.erasure`) both start here, so a table added
later with a
foreign key to `patients` (or to a table that does) is exported and erased without anyone remembering to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AuditEvent, AuditPatient, Base, Consent, Escalation, Invite, Patient

PATIENTS: Table = Patient.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Link:
    """`table.column` points at rows of `parent`: the patients table (`via` None), or the table of `via`."""

    table: Table
    column: str
    parent: Table
    via: Link | None = None


def primary_key(table: Table) -> Any:
    (key,) = table.primary_key.columns
    return key


def links(via: Link | None = None, seen: frozenset[str] = frozenset()) -> Iterator[Link]:
    """Every path of foreign keys that leads to the patients table, each link after the one it goes
    through (so deleting in reverse order never breaks a foreign key)."""
    parent = PATIENTS if via is None else via.table
    seen = seen | {parent.name}
    for table in Base.metadata.sorted_tables:
        for key in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            if key.column.table is parent and table.name not in seen:
                link = Link(table, key.parent.name, parent, via)
                yield link
                yield from links(link, seen)


def owned_ids(link: Link, patient_id: int) -> Select[Any]:
    """The ids of `link.table`'s rows that belong to the patient through `link`."""
    parents: Any = [patient_id] if link.via is None else owned_ids(link.via, patient_id)
    return select(primary_key(link.table)).where(link.table.c[link.column].in_(parents))


async def ids_of(session: AsyncSession, table: Table, patient_id: int) -> set[int]:
    """Ids of the rows of `table` that belong to the patient (through any of its foreign keys)."""
    found: set[int] = set()
    for link in links():
        if link.table is table:
            found.update(await session.scalars(owned_ids(link, patient_id)))
    return found


async def linked_audit_events(session: AsyncSession, patient_id: int) -> list[AuditEvent]:
    """Audit events that name the patient: done by them, done to them, done to their consents, invites or
    escalations, or naming them beside the subject (`AuditPatient`: a caseload page that showed them). An
    event's detail never holds a patient's id (`bot.core.audit.record` refuses one)."""
    subjects: dict[str, set[int]] = {
        "consent": await ids_of(session, Consent.__table__, patient_id),  # type: ignore[arg-type]
        "invite": await ids_of(session, Invite.__table__, patient_id),  # type: ignore[arg-type]
        "escalation": await ids_of(session, Escalation.__table__, patient_id),  # type: ignore[arg-type]
    }
    conditions: list[ColumnElement[bool]] = [
        (AuditEvent.actor_type == "patient") & (AuditEvent.actor_id == patient_id),
        (AuditEvent.subject_type == "patient") & (AuditEvent.subject_id == patient_id),
        AuditEvent.id.in_(select(AuditPatient.audit_event_id).where(AuditPatient.patient_id == patient_id)),
    ]
    for kind, ids in subjects.items():
        if ids:
            conditions.append((AuditEvent.subject_type == kind) & AuditEvent.subject_id.in_(ids))
    rows = await session.scalars(select(AuditEvent).where(or_(false(), *conditions)).order_by(AuditEvent.id))
    return list(rows)
