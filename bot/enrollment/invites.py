"""Invites and enrollment: only invited people get in, each code once, before it expires."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.core import audit
from bot.core.models import (
    AssignmentRole,
    CareAssignment,
    Counselor,
    Invite,
    InviteKind,
    Patient,
    PatientStatus,
    utcnow,
)
from bot.core.people import Stranger, identify

# Telegram's deep-link payload allows [A-Za-z0-9_-], 1-64 characters.
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def new_code() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedInvite:
    invite: Invite
    code: str


class EnrollmentError(ValueError):
    """A CLI-level mistake (unknown counselor, alias taken); the message is safe to print."""


async def _unused_alias(session: AsyncSession) -> str:
    while True:
        alias = f"P-{secrets.randbelow(90000) + 10000}"
        if not await _alias_taken(session, alias):
            return alias


async def _alias_taken(session: AsyncSession, alias: str) -> bool:
    in_patients = await session.scalar(select(func.count()).where(func.lower(Patient.alias) == alias.lower()))
    in_invites = await session.scalar(
        select(func.count()).where(
            func.lower(Invite.patient_alias) == alias.lower(),
            Invite.used_at.is_(None),
            Invite.expires_at > utcnow(),
        )
    )
    return bool(in_patients or in_invites)


async def _aliases_in_use(
    session: AsyncSession, condition: Callable[[ColumnElement[str]], ColumnElement[bool]]
) -> list[str]:
    """Aliases of patients and of open invites whose lower-cased alias meets `condition`."""
    patients = await session.scalars(select(Patient.alias).where(condition(func.lower(Patient.alias))))
    invites = await session.scalars(
        select(Invite.patient_alias).where(
            condition(func.lower(Invite.patient_alias)),
            Invite.used_at.is_(None),
            Invite.expires_at > utcnow(),
        )
    )
    return [a for a in [*patients, *invites] if a is not None]


async def _ambiguous_with(session: AsyncSession, alias: str) -> str | None:
    """An alias in use that is a whole-word start of `alias` or that `alias` is a whole-word start of: with
    both, `/note Sam Lee called` could mean either "Sam" or "Sam Lee", so the second one is refused."""
    words = alias.lower().split()
    shorter = [" ".join(words[:k]) for k in range(1, len(words))]
    lowered = alias.lower()
    found = await _aliases_in_use(
        session, lambda column: column.in_(shorter) | column.startswith(lowered + " ", autoescape=True)
    )
    return min(found, default=None)


async def issue_invite(
    session: AsyncSession,
    *,
    kind: InviteKind,
    counselor_id: int,
    ttl: timedelta,
    alias: str | None = None,
    language: str | None = None,
    now: datetime | None = None,
) -> IssuedInvite:
    counselor = await session.get(Counselor, counselor_id)
    if counselor is None or not counselor.active:
        raise EnrollmentError(f"no active counselor with id {counselor_id}")
    if kind is InviteKind.COUNSELOR and counselor.telegram_user_id is not None:
        raise EnrollmentError(f"counselor {counselor_id} is already linked to a Telegram account")
    if kind is InviteKind.PATIENT:
        if alias is not None:
            alias = " ".join(alias.split())  # counselors type it after /patient, where spaces are spaces
        if alias is None:
            alias = await _unused_alias(session)
        elif not ALIAS_PATTERN.match(alias):
            raise EnrollmentError("an alias is 1-64 letters, digits, spaces, dots, dashes or underscores")
        elif await _alias_taken(session, alias):
            raise EnrollmentError(f"the alias {alias!r} is already in use")
        elif (clash := await _ambiguous_with(session, alias)) is not None:
            raise EnrollmentError(
                f"the alias {alias!r} is too close to {clash!r}: /note {alias} ... could mean either; "
                "choose one that does not start with the other"
            )
    now = now or utcnow()
    code = new_code()
    invite = Invite(
        code_hash=hash_code(code),
        kind=kind,
        counselor_id=counselor_id,
        patient_alias=alias if kind is InviteKind.PATIENT else None,
        language=language,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invite)
    await session.flush()
    audit.record(
        session,
        "invite.created",
        actor_type="cli",
        subject_type="invite",
        subject_id=invite.id,
        kind=kind.value,
    )
    return IssuedInvite(invite, code)


async def revoke(
    session: AsyncSession,
    *,
    code: str | None = None,
    counselor_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Spend open invites so that they no longer work: the one with `code`, or every open invite to link
    counselor `counselor_id` (a code that was lost or sent to the wrong person). Each is audited
    (`invite.revoked`); returns how many."""
    if (code is None) == (counselor_id is None):
        raise EnrollmentError("give an invite code or a counselor id")
    now = now or utcnow()
    open_invites = select(Invite).where(Invite.used_at.is_(None), Invite.expires_at > now)
    if code is not None:
        query = open_invites.where(Invite.code_hash == hash_code(code))
    else:
        query = open_invites.where(Invite.counselor_id == counselor_id, Invite.kind == InviteKind.COUNSELOR)
    invites = list(await session.scalars(query.order_by(Invite.id)))
    for invite in invites:
        invite.used_at = now
        audit.record(
            session,
            "invite.revoked",
            actor_type="cli",
            subject_type="invite",
            subject_id=invite.id,
            kind=invite.kind.value,
        )
    return len(invites)


# ---- redeeming -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    reason: str  # "invalid" | "expired" | "used" | "already_enrolled" | "counselor_linked"


@dataclass(frozen=True)
class PatientEnrolled:
    patient: Patient


@dataclass(frozen=True)
class CounselorLinked:
    counselor: Counselor


Redemption = Rejected | PatientEnrolled | CounselorLinked


async def redeem(
    session: AsyncSession,
    code: str,
    *,
    telegram_user_id: int,
    chat_id: int,
    language_code: str | None,
    default_timezone: str,
    supported_languages: list[str],
    now: datetime | None = None,
) -> Redemption:
    """Enroll the sender with an invite code. The code is consumed atomically: two racing uses, one wins."""
    now = now or utcnow()
    if not isinstance(await identify(session, telegram_user_id), Stranger):
        return Rejected("already_enrolled")
    if not CODE_PATTERN.match(code):
        return Rejected("invalid")
    invite = await session.scalar(select(Invite).where(Invite.code_hash == hash_code(code)))
    if invite is None:
        return Rejected("invalid")
    if invite.used_at is not None:
        return Rejected("used")
    if invite.expires_at <= now:
        return Rejected("expired")
    claimed = await session.execute(
        update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None)).values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Rejected("used")

    if invite.kind is InviteKind.COUNSELOR:
        counselor = await session.get_one(Counselor, invite.counselor_id)
        if counselor.telegram_user_id is not None:
            # A second invite issued before the first was used ("the link got lost") must not move a linked
            # account to whoever holds it: refused, and spent (it stays used).
            audit.record(
                session,
                "invite.refused",
                actor_type="system",
                subject_type="invite",
                subject_id=invite.id,
                reason="counselor_linked",
            )
            return Rejected("counselor_linked")
        counselor.telegram_user_id = telegram_user_id
        counselor.chat_id = chat_id
        audit.record(
            session,
            "counselor.linked",
            actor_type="counselor",
            actor_id=counselor.id,
            subject_type="invite",
            subject_id=invite.id,
        )
        await session.execute(  # the counselor's other invites are spent with this one
            update(Invite)
            .where(
                Invite.counselor_id == counselor.id,
                Invite.kind == InviteKind.COUNSELOR,
                Invite.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return CounselorLinked(counselor)

    language = invite.language or _language_from(language_code, supported_languages)
    patient = Patient(
        telegram_user_id=telegram_user_id,
        chat_id=chat_id,
        alias=invite.patient_alias or await _unused_alias(session),
        timezone=default_timezone,
        language=language,
        status=PatientStatus.CONSENT_PENDING,
        created_at=now,
    )
    session.add(patient)
    await session.flush()
    invite.patient_id = patient.id
    session.add(
        CareAssignment(patient_id=patient.id, counselor_id=invite.counselor_id, role=AssignmentRole.PRIMARY)
    )
    audit.record(
        session,
        "patient.enrolled",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="invite",
        subject_id=invite.id,
    )
    return PatientEnrolled(patient)


def _language_from(language_code: str | None, supported: list[str]) -> str:
    base = (language_code or "").split("-")[0].lower()
    return base if base in supported else "en"


async def purge_expired_invites(
    session: AsyncSession, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Drop invites that expired unused long ago; a code that old is answered as unknown."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(Invite).where(Invite.used_at.is_(None), Invite.expires_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
