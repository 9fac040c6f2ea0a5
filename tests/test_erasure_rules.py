"""Erasure finds what is about a patient by id, never by text (issue 17, item 8): the rules with the real
planners (paging, care-team notices, digests) and the real database.

Another patient whose alias contains the erased one's keeps every page and notice; the day's digests are
neither deleted once sent (that made the digest job send a second one) nor left naming the erased patient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.careteam import flags
from bot.careteam.callbacks import RowEvent
from bot.careteam.notices import render_notice
from bot.core import db
from bot.core.config import Settings
from bot.core.models import (
    Escalation,
    OutboxMessage,
    OutboxStatus,
    Patient,
    utcnow,
)
from bot.outbox import store as outbox
from bot.privacy.erasure import erase_patient
from bot.risk import paging
from bot.runtime import Runtime
from bot.workspace import digests
from bot.workspace.digests import DIGEST_KIND, DIGEST_PATIENTS
from tests.records import add_counselor, add_patient

ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo")  # one of them is not near midnight now


@pytest.fixture
async def runtime(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Runtime]:
    made = Runtime.create(settings)
    yield made
    await made.engine.dispose()


async def _counselor(runtime: Runtime, name: str, chat_id: int) -> int:
    """A counselor whose digest time was a minute ago, in a zone where that is still today."""
    now = utcnow() - timedelta(minutes=1)
    zone = next(z for z in ZONES if now.astimezone(ZoneInfo(z)).hour not in (0, 23))
    digest_time = now.astimezone(ZoneInfo(zone)).time().replace(microsecond=0)
    counselor = await add_counselor(
        runtime.sessions, name, timezone=zone, chat_id=chat_id, digest_time=digest_time
    )
    return counselor.id


async def _patient(runtime: Runtime, alias: str, counselor_id: int) -> Patient:
    """On the counselor's caseload, enrolled days ago and never checked in (so every digest names them)."""
    return await add_patient(
        runtime.sessions, counselor=counselor_id, alias=alias, created_at=utcnow() - timedelta(days=5)
    )


async def _rows(runtime: Runtime) -> dict[str, OutboxMessage]:
    async with runtime.sessions() as session:
        return {row.key: row for row in await session.scalars(select(OutboxMessage))}


async def test_erasure_deletes_what_is_about_the_patient_by_id_and_keeps_the_days_digests(
    runtime: Runtime,
) -> None:
    sam, bo = await _counselor(runtime, "Sam", 9001), await _counselor(runtime, "Bo", 9002)
    zeb, quill = await _patient(runtime, "Zebediah", sam), await _patient(runtime, "Quill", sam)
    zeb_r = await _patient(runtime, "Zebediah R", bo)  # on another counselor's team
    now = utcnow()
    async with db.transaction(runtime.sessions) as session:
        # Zebediah R's urgent page (to Bo), and a care-team notice about each Zebediah: the real planners.
        escalation = Escalation(
            patient_id=zeb_r.id, level="imminent", category="overdose", source="message", detail="words"
        )
        session.add(escalation)
        await session.flush()
        assert await paging.page(runtime, session, escalation, now) == 1
        for patient in (zeb, zeb_r):
            raised = await flags.raise_flag(session, patient, flags.FlagKind.MISSED_CHECKINS, now, count=3)
            await outbox.enqueue(session, [render_notice(runtime, n, RowEvent(patient.id)) for n in raised])
    # Today's digests: Sam's names Zebediah and Quill, Bo's names Zebediah R; both wait in the outbox.
    assert await digests.send_digests(runtime) == 2
    async with db.transaction(runtime.sessions) as session:
        # Older digests that named Zebediah: one sent, one being sent right now; and one that names only a
        # patient whose id merely contains his digits.
        await outbox.enqueue(
            session,
            [
                outbox.Planned(k, DIGEST_KIND, 9001, f"{k}: Zebediah", now, counselor_id=sam, ref=ref)
                for k, ref in (
                    ("digest-sent", {DIGEST_PATIENTS: [quill.id, zeb.id]}),
                    ("digest-in-flight", {DIGEST_PATIENTS: [zeb.id]}),
                    ("digest-other", {DIGEST_PATIENTS: [int(f"{zeb.id}{zeb.id}")]}),
                )
            ],
        )
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.key == "digest-sent").values(status=OutboxStatus.SENT)
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == "digest-in-flight")
            .values(claimed_by="w", claimed_until=now + timedelta(minutes=1))
        )
    before = await _rows(runtime)
    [today_sam] = [
        k for k, r in before.items() if r.kind == DIGEST_KIND and r.counselor_id == sam and ":" in k
    ]
    [today_bo] = [k for k, r in before.items() if r.kind == DIGEST_KIND and r.counselor_id == bo]
    [page] = [k for k, r in before.items() if r.kind == paging.PAGE_KIND]
    [notice_r] = [k for k, r in before.items() if r.kind == "notice" and r.subject_patient_id == zeb_r.id]
    assert before[page].subject_patient_id == zeb_r.id and "Zebediah R" in before[page].payload["text"]
    assert before[today_sam].ref == {DIGEST_PATIENTS: sorted([zeb.id, quill.id])}

    async with db.transaction(runtime.sessions) as session:
        erased = await erase_patient(session, zeb.id, reason="request")
    assert erased.rows["outbox"] == 2  # the notice about him, and Sam's waiting digest
    after = await _rows(runtime)
    assert [k for k in before if k not in after] == sorted(
        [k for k, r in before.items() if r.subject_patient_id == zeb.id] + [today_sam], key=list(before).index
    )
    for key in (page, today_bo, notice_r, "digest-in-flight", "digest-other"):
        assert (after[key].status, after[key].payload) == (before[key].status, before[key].payload), key
    assert after["digest-sent"].status is OutboxStatus.SENT and after["digest-sent"].payload["text"] == ""
    assert after["digest-sent"].ref == {DIGEST_PATIENTS: [quill.id]}  # his id is gone from it too

    # The digest job plans Sam's digest again, from what is left: once, without Zebediah.
    assert await digests.send_digests(runtime) == 1
    assert await digests.send_digests(runtime) == 0
    replanned = (await _rows(runtime))[today_sam]
    assert replanned.ref == {DIGEST_PATIENTS: [quill.id]}
    assert "Quill" in replanned.payload["text"] and "Zebediah" not in replanned.payload["text"]
