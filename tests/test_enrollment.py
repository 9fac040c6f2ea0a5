from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import AuditEvent, Counselor, Invite, InviteKind, PatientStatus, utcnow
from bot.core.people import Stranger, care_team, identify
from bot.enrollment import consent
from bot.enrollment import invites as enrollment
from tests.records import add_counselor

Sessions = async_sessionmaker[AsyncSession]


async def _redeem(sessions: Sessions, code: str, user: int, **extra: object) -> enrollment.Redemption:
    async with db.transaction(sessions) as session:
        return await enrollment.redeem(
            session,
            code,
            telegram_user_id=user,
            chat_id=user,
            language_code=extra.pop("language_code", "en"),  # type: ignore[arg-type]
            default_timezone="America/Chicago",
            supported_languages=["en", "es"],
            **extra,  # type: ignore[arg-type]
        )


async def _code(session: AsyncSession, kind: InviteKind, counselor_id: int) -> str:
    issued = await enrollment.issue_invite(
        session, kind=kind, counselor_id=counselor_id, ttl=timedelta(hours=1)
    )
    return issued.code


async def test_only_a_hash_of_the_code_is_stored(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        issued = await enrollment.issue_invite(
            session, kind=InviteKind.PATIENT, counselor_id=counselor_id, ttl=timedelta(hours=1)
        )
    async with sessions() as session:
        stored = await session.get_one(Invite, issued.invite.id)
    assert issued.code not in stored.code_hash
    assert stored.code_hash == enrollment.hash_code(issued.code)
    assert enrollment.CODE_PATTERN.match(issued.code)


async def test_patient_enrollment_assigns_the_counselor_and_language(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        code = await _code(session, InviteKind.PATIENT, counselor_id)
    result = await _redeem(sessions, code, 77, language_code="es-MX")
    assert isinstance(result, enrollment.PatientEnrolled)
    patient = result.patient
    assert (patient.language, patient.timezone, patient.status) == (
        "es",
        "America/Chicago",
        PatientStatus.CONSENT_PENDING,
    )
    assert patient.alias.startswith("P-")
    async with sessions() as session:
        assert [c.id for c in await care_team(session, patient.id)] == [counselor_id]
        assert isinstance(await identify(session, 77), type(patient))
        assert isinstance(await identify(session, 78), Stranger)


async def test_each_code_works_once_and_not_after_expiry(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        code = await _code(session, InviteKind.PATIENT, counselor_id)
        old = (
            await enrollment.issue_invite(
                session,
                kind=InviteKind.PATIENT,
                counselor_id=counselor_id,
                ttl=timedelta(hours=1),
                now=utcnow() - timedelta(hours=2),
            )
        ).code
    assert isinstance(await _redeem(sessions, code, 1), enrollment.PatientEnrolled)
    assert await _redeem(sessions, code, 2) == enrollment.Rejected("used")
    assert await _redeem(sessions, old, 3) == enrollment.Rejected("expired")
    assert await _redeem(sessions, "A" * 20, 4) == enrollment.Rejected("invalid")
    assert await _redeem(sessions, "short", 5) == enrollment.Rejected("invalid")
    assert await _redeem(sessions, old, 1) == enrollment.Rejected("already_enrolled")


async def test_counselor_invite_links_and_cannot_be_reissued(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        code = await _code(session, InviteKind.COUNSELOR, counselor_id)
    result = await _redeem(sessions, code, 900)
    assert isinstance(result, enrollment.CounselorLinked) and result.counselor.telegram_user_id == 900
    async with db.transaction(sessions) as session:
        with pytest.raises(enrollment.EnrollmentError, match="already linked"):
            await enrollment.issue_invite(
                session, kind=InviteKind.COUNSELOR, counselor_id=counselor_id, ttl=timedelta(hours=1)
            )


async def test_a_counselor_invite_never_moves_a_linked_account(sessions: Sessions) -> None:
    """Linking spends the counselor's other invites; an invite that still reaches a linked counselor (linked
    some other way meanwhile) is refused, spent and audited, and the account stays where it was."""
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        first, second, third = [await _code(session, InviteKind.COUNSELOR, counselor_id) for _ in range(3)]
    assert isinstance(await _redeem(sessions, first, 900), enrollment.CounselorLinked)
    assert await _redeem(sessions, second, 901) == enrollment.Rejected("used")
    async with db.transaction(sessions) as session:
        # As if linked while this invite was still open (two redeemed at once, or a row older than the rule).
        third_row = await session.scalar(
            select(Invite).where(Invite.code_hash == enrollment.hash_code(third))
        )
        assert third_row is not None
        third_row.used_at = None
    assert await _redeem(sessions, third, 902) == enrollment.Rejected("counselor_linked")
    assert await _redeem(sessions, third, 902) == enrollment.Rejected("used")
    async with sessions() as session:
        assert isinstance(await identify(session, 900), Counselor)
        assert isinstance(await identify(session, 901), Stranger)
        assert isinstance(await identify(session, 902), Stranger)
        refused = await session.scalar(select(AuditEvent).where(AuditEvent.action == "invite.refused"))
    assert refused is not None and refused.detail == {"reason": "counselor_linked"}


async def test_a_revoked_invite_no_longer_works(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        code = await _code(session, InviteKind.COUNSELOR, counselor_id)
        assert await enrollment.revoke(session, code=code) == 1
    assert await _redeem(sessions, code, 900) == enrollment.Rejected("used")
    async with sessions() as session:
        revoked = await session.scalar(select(AuditEvent).where(AuditEvent.action == "invite.revoked"))
        assert revoked is not None and revoked.actor_type == "cli"
        assert await enrollment.revoke(session, counselor_id=counselor_id) == 0


async def test_invite_rules(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        with pytest.raises(enrollment.EnrollmentError, match="no active counselor"):
            await enrollment.issue_invite(
                session, kind=InviteKind.PATIENT, counselor_id=999, ttl=timedelta(hours=1)
            )
        await enrollment.issue_invite(
            session, kind=InviteKind.PATIENT, counselor_id=counselor_id, ttl=timedelta(hours=1), alias="River"
        )
        with pytest.raises(enrollment.EnrollmentError, match="already in use"):
            await enrollment.issue_invite(
                session,
                kind=InviteKind.PATIENT,
                counselor_id=counselor_id,
                ttl=timedelta(hours=1),
                alias="river",
            )
        with pytest.raises(enrollment.EnrollmentError, match="alias"):
            await enrollment.issue_invite(
                session,
                kind=InviteKind.PATIENT,
                counselor_id=counselor_id,
                ttl=timedelta(hours=1),
                alias="<b>",
            )


async def test_consent_accept_revoke_and_audit(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    async with db.transaction(sessions) as session:
        code = await _code(session, InviteKind.PATIENT, counselor_id)
    result = await _redeem(sessions, code, 5)
    assert isinstance(result, enrollment.PatientEnrolled)
    async with db.transaction(sessions) as session:
        patient = await session.merge(result.patient)
        first = await consent.accept(session, patient)
        assert await consent.accept(session, patient) is first
        assert patient.status is PatientStatus.ONBOARDING
        assert await consent.revoke(session, patient)
        assert not await consent.revoke(session, patient)
        assert patient.status is PatientStatus.CONSENT_REVOKED
        assert await consent.active_consent(session, patient.id) is None
    async with sessions() as session:
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        details = list(await session.scalars(select(AuditEvent.detail)))
    assert actions == ["invite.created", "patient.enrolled", "consent.accepted", "consent.revoked"]
    assert all("Dana" not in str(detail) for detail in details)


async def test_purge_keeps_recent_and_used_invites(sessions: Sessions) -> None:
    counselor_id = (await add_counselor(sessions)).id
    long_ago = utcnow() - timedelta(days=60)
    async with db.transaction(sessions) as session:
        await enrollment.issue_invite(
            session, kind=InviteKind.PATIENT, counselor_id=counselor_id, ttl=timedelta(hours=1), now=long_ago
        )
        await enrollment.issue_invite(
            session, kind=InviteKind.PATIENT, counselor_id=counselor_id, ttl=timedelta(hours=1)
        )
    async with db.transaction(sessions) as session:
        assert await enrollment.purge_expired_invites(session, older_than=timedelta(days=30)) == 1
    async with sessions() as session:
        assert len(list(await session.scalars(select(Invite)))) == 1
