"""Messages from the care team (`/message ALIAS TEXT`, `/message group NAME TEXT`) and the patient's replies.

A message is stored (encrypted) and sent through the outbox, shown as coming from the counselor by name; each
one is audited (ids only). A counselor may message the patients they may see (`bot.workspace.rules`); a group
message goes to the group's active members among those, and says how many were left out. A reply reaches the
counselor who wrote (or, if they are gone, the patient's care team) as a notice naming only the alias; the
words are behind "Show details", which is audited like an alert's details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import (
    CareMessage,
    CareMessageReply,
    Counselor,
    GroupMember,
    Patient,
    PatientGroup,
    PatientStatus,
)
from bot.core.people import care_team
from bot.workspace import rules as workspace

MAX_TEXT = 2000  # characters of a message or a reply (Telegram allows 4096 with the heading)
GROUP_WORD = "group"  # `/message group NAME TEXT` (and "grupo")
GROUP_WORDS = ("group", "grupo")


async def send(
    session: AsyncSession,
    counselor: Counselor,
    patient: Patient,
    text: str,
    *,
    group: PatientGroup | None = None,
) -> CareMessage:
    message = CareMessage(
        patient_id=patient.id,
        counselor_id=counselor.id,
        group_id=group.id if group is not None else None,
        text=text.strip()[:MAX_TEXT],
    )
    group_id = {"group_id": group.id} if group is not None else {}
    await _stored(session, message, "care_message.sent", "counselor", counselor.id, patient, **group_id)
    return message


async def add_reply(
    session: AsyncSession, message: CareMessage, patient: Patient, text: str
) -> CareMessageReply:
    reply = CareMessageReply(message_id=message.id, patient_id=patient.id, text=text.strip()[:MAX_TEXT])
    await _stored(session, reply, "care_message.replied", "patient", patient.id, patient)
    return reply


async def _stored(
    session: AsyncSession,
    row: CareMessage | CareMessageReply,
    action: str,
    actor_type: Literal["counselor", "patient"],
    actor_id: int,
    patient: Patient,
    **detail: str | int | bool | None,
) -> None:
    """Keep a message or a reply (for its id) and audit it about the patient: ids only, never the words."""
    session.add(row)
    await session.flush()
    ids = (
        {"message_id": row.message_id, "reply_id": row.id}
        if isinstance(row, CareMessageReply)
        else {"message_id": row.id}
    )
    audit.record(
        session,
        action,
        actor_type=actor_type,
        actor_id=actor_id,
        subject_type="patient",
        subject_id=patient.id,
        patients=(),  # (named, so that `ids` and `detail` cannot stand for it)
        **ids,
        **detail,
    )


async def reply_recipients(session: AsyncSession, message: CareMessage, patient: Patient) -> list[Counselor]:
    """Who hears of a reply: the counselor who wrote, if still active, linked and allowed to see the patient;
    otherwise the patient's care team (linked counselors)."""
    writer = await session.get(Counselor, message.counselor_id) if message.counselor_id else None
    if (
        writer is not None
        and writer.active
        and writer.chat_id is not None
        and await workspace.visible_patient(session, writer, patient.alias) is not None
    ):
        return [writer]
    return [c for c in await care_team(session, patient.id) if c.chat_id is not None]


async def may_see_reply(
    session: AsyncSession, counselor: Counselor, reply: CareMessageReply
) -> Patient | None:
    """The patient, if the counselor may read this reply: anyone who may see the patient now (access follows
    the care team: the counselor who wrote the message, once off the team, may not). None alike for "no such
    reply" and "not yours"."""
    patient = await session.get(Patient, reply.patient_id)
    if patient is None or not counselor.active:
        return None
    if await workspace.visible_patient(session, counselor, patient.alias) is not None:
        return patient
    return None


def reply_viewed(session: AsyncSession, counselor: Counselor, reply: CareMessageReply) -> None:
    audit.record(
        session,
        "care_message.reply_viewed",
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="patient",
        subject_id=reply.patient_id,
        reply_id=reply.id,
    )


@dataclass(frozen=True)
class NamedGroup:
    group: PatientGroup | None  # None: no group of that name
    name: str  # the words read as the name (for "not found")
    rest: str


async def group_and_rest(session: AsyncSession, words: Sequence[str]) -> NamedGroup:
    """Read `NAME TEXT` after `/message group`: a quoted name, or the longest run of leading words that is a
    group's name (case-insensitive)."""
    text = " ".join(words)
    quoted = workspace.unquoted(text)
    if quoted is not None:
        name, rest = quoted
        found = await session.scalar(
            select(PatientGroup).where(func.lower(PatientGroup.name) == name.lower())
        )
        return NamedGroup(found, name, rest)
    candidates = [" ".join(words[:k]) for k in range(len(words), 0, -1)]
    for candidate in candidates:
        found = await session.scalar(
            select(PatientGroup).where(func.lower(PatientGroup.name) == candidate.lower())
        )
        if found is not None:
            return NamedGroup(found, candidate, " ".join(words[len(candidate.split()) :]))
    return NamedGroup(None, words[0] if words else "", " ".join(words[1:]))


@dataclass(frozen=True)
class GroupRecipients:
    patients: list[Patient]  # active members the counselor may see
    left_out: int  # active members they may not


async def group_recipients(
    session: AsyncSession, counselor: Counselor, group: PatientGroup
) -> GroupRecipients:
    members = list(
        await session.scalars(
            select(Patient)
            .join(GroupMember, GroupMember.patient_id == Patient.id)
            .where(GroupMember.group_id == group.id, Patient.status == PatientStatus.ACTIVE)
            .order_by(Patient.id)
        )
    )
    allowed = [p for p in members if await workspace.visible_patient(session, counselor, p.alias) is not None]
    return GroupRecipients(allowed, len(members) - len(allowed))
