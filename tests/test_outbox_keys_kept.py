"""Outbox keys now packed by their feature's codec are byte for byte the keys written before (f-strings): a
care-team notice queued before the change is not queued again when the same event is planned after it, and
a digest sent before it still counts as today's. The real planners, the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.careteam import flags, notices
from bot.careteam.callbacks import (
    FLAG_KEY,
    NOTICE_TOLD,
    FlagKey,
    MomentEvent,
    NoticeEvent,
    NoticeTold,
    RowEvent,
    UseEvent,
)
from bot.careteam.flags import FlagKind
from bot.checkin.jobs import tell_unanswered_use
from bot.core import db
from bot.core.config import Settings
from bot.core.models import OutboxMessage, Patient
from bot.outbox import store as outbox
from bot.risk.use import Substance, UseReport
from bot.runtime import Runtime
from bot.workspace import rules as workspace
from bot.workspace.digests import DIGEST_KIND
from tests.records import add_counselor, add_patient

NOW = datetime(2025, 12, 1, 15, 0, 0, 123000, tzinfo=UTC)
MS, SECONDS = 1764601200123, 1764601200  # NOW since 1970


@pytest.fixture
async def runtime(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Runtime]:
    made = Runtime.create(settings)
    yield made
    await made.engine.dispose()


async def _queued_before(runtime: Runtime, chat_id: int, kind: FlagKind, key: str) -> None:
    """A notice keyed as `render_notice` wrote it before its event was typed (its f-string, verbatim)."""
    old = f"flag:{runtime.keyring.tag(f'{kind}:{key}:{chat_id}')}"
    notice = outbox.Planned(old, "notice", chat_id, "told before", NOW)
    async with db.transaction(runtime.sessions) as session:
        assert await outbox.enqueue(session, [notice]) == 1


async def _notice_rows(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return await session.scalar(select(func.count()).where(OutboxMessage.kind == "notice")) or 0


async def _linked(runtime: Runtime) -> tuple[Patient, int]:
    counselor = await add_counselor(runtime.sessions, linked=True)
    assert counselor.chat_id is not None
    return await add_patient(runtime.sessions, counselor=counselor), counselor.chat_id


@pytest.mark.parametrize(
    ("kind", "event", "old"),
    [
        (FlagKind.MISSED_CHECKINS, RowEvent(12), "12"),  # bot.checkin.jobs: the check-in's id
        (FlagKind.MISSED_SESSIONS, RowEvent(34), "34"),  # bot.handlers.schedule: the attendance's id
    ],
)
async def test_a_notice_about_a_row_keeps_its_key(
    runtime: Runtime, kind: FlagKind, event: RowEvent, old: str
) -> None:
    patient, chat_id = await _linked(runtime)
    await _queued_before(runtime, chat_id, kind, old)
    async with db.transaction(runtime.sessions) as session:
        raised = await flags.raise_flag(
            session, await session.get_one(Patient, patient.id), kind, NOW, count=3
        )
        assert await outbox.enqueue(session, [notices.render_notice(runtime, n, event) for n in raised]) == 0
    assert await _notice_rows(runtime) == 1


@pytest.mark.parametrize(
    ("source", "event"), [("checkin", UseEvent("use", 5)), ("aftercare", UseEvent("aftercare-use", 5))]
)
async def test_an_unanswered_use_keeps_its_key(runtime: Runtime, source: str, event: UseEvent) -> None:
    patient, chat_id = await _linked(runtime)
    await _queued_before(runtime, chat_id, FlagKind.USE_REPORTED, f"{event.source}:5")
    report = UseReport(frozenset({Substance.CANNABIS}))  # a flag, not a page
    async with db.transaction(runtime.sessions) as session:
        found = await session.get_one(Patient, patient.id)
        told = await tell_unanswered_use(runtime, session, found, report, source=source, event=event, now=NOW)
    assert told == 0 and await _notice_rows(runtime) == 1


@pytest.mark.parametrize(
    ("kind", "tell", "old"),
    [
        (
            FlagKind.TALK_REQUESTED,
            lambda runtime, session, patient: notices.tell_care_team(
                runtime, session, patient, FlagKind.TALK_REQUESTED
            ),
            lambda patient_id: f"{patient_id}:{MS}",
        ),
        (
            FlagKind.UNREACHABLE,
            lambda runtime, session, patient: notices.patient_unreachable(runtime, session, patient.id),
            lambda patient_id: f"{patient_id}:{SECONDS}",
        ),
    ],
)
async def test_a_notice_at_a_moment_keeps_its_key(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    kind: FlagKind,
    tell: Callable[..., Awaitable[object]],
    old: Callable[[int], str],
) -> None:
    monkeypatch.setattr(notices, "utcnow", lambda: NOW)
    patient, chat_id = await _linked(runtime)
    await _queued_before(runtime, chat_id, kind, old(patient.id))
    async with db.transaction(runtime.sessions) as session:
        await tell(runtime, session, await session.get_one(Patient, patient.id))
    assert await _notice_rows(runtime) == 1


async def test_a_digest_sent_before_is_still_todays(runtime: Runtime) -> None:
    counselor = await add_counselor(runtime.sessions, linked=True, timezone="UTC", digest_time=NOW.time())
    assert counselor.chat_id is not None
    async with db.transaction(runtime.sessions) as session:
        assert [(c.id, day) for c, day in await workspace.due_digests(session, NOW)] == [
            (counselor.id, NOW.date())
        ]
        key = f"digest:{counselor.id}:{NOW.date().isoformat()}"  # as `digest_key` wrote it (verbatim)
        sent = outbox.Planned(
            key, DIGEST_KIND, counselor.chat_id, "sent before", NOW, counselor_id=counselor.id
        )
        assert await outbox.enqueue(session, [sent]) == 1
        assert workspace.digest_key(counselor.id, NOW.date()) == key
        assert await workspace.due_digests(session, NOW) == []


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (RowEvent(12), "missed_checkins:12:555"),
        (UseEvent("use", 5), "missed_checkins:use:5:555"),
        (UseEvent("aftercare-use", 5), "missed_checkins:aftercare-use:5:555"),
        (MomentEvent(7, MS), f"missed_checkins:7:{MS}:555"),
        (MomentEvent(7, SECONDS), f"missed_checkins:7:{SECONDS}:555"),
    ],
)
def test_each_event_reads_back(event: NoticeEvent, text: str) -> None:
    for chat_id in (555, -1001234567890, 7_000_000_000):  # a group's chat id is negative
        told = NoticeTold(FlagKind.MISSED_CHECKINS, event, chat_id)
        written = text.removesuffix(":555") + f":{chat_id}"
        assert NOTICE_TOLD.pack(told) == written
        assert NOTICE_TOLD.parse(written) == told


def test_a_flag_key_is_a_tag_and_nothing_else() -> None:
    tag = "0123456789abcdef" * 2
    assert FLAG_KEY.pack(FlagKey(tag)) == f"flag:{tag}"
    assert FLAG_KEY.parse(f"flag:{tag}") == FlagKey(tag)
    for forged in ("flag:use_reported:1:2:3", f"flag:{tag}0", "flag:" + "G" * 32, f"flag:{tag[:-1]}"):
        assert FLAG_KEY.parse(forged) is None
    for forged in ("missed_checkins:0:5", "bogus:12:5", "missed_checkins:12", "missed_checkins:drink:5:5"):
        assert NOTICE_TOLD.parse(forged) is None
