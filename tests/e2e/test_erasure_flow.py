"""/deleteme erases by id, never by text: one patient's erasure leaves another's pages and the day's digests
alone, even when the other's alias contains theirs (issue 17, item 8)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import Counselor, OutboxMessage, OutboxStatus, Patient, utcnow
from bot.risk.paging import PAGE_KIND
from bot.workspace import digests
from bot.workspace.rules import digest_key
from devtools.simulator import BotMessage, Fault
from tests.e2e.test_data_rights_flow import CRISIS
from tests.harness import BotHarness

ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo")  # one of them is not near midnight now


async def _digest_due(harness: BotHarness, *counselor_ids: int) -> dict[int, date]:
    """Each counselor's digest time set to a minute ago in a zone where that is still today (a controlled
    clock); their local day, for the digest's key."""
    now = utcnow()
    zone = next(z for z in ZONES if (now - timedelta(minutes=1)).astimezone(ZoneInfo(z)).hour not in (0, 23))
    local = (now - timedelta(minutes=1)).astimezone(ZoneInfo(zone))
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(Counselor)
            .where(Counselor.id.in_(counselor_ids))
            .values(timezone=zone, digest_time=local.time().replace(microsecond=0))
        )
    return dict.fromkeys(counselor_ids, local.date())


async def _name(harness: BotHarness, patient_id: int, alias: str, created_at: datetime | None = None) -> None:
    values: dict[str, object] = {"alias": alias}
    if created_at is not None:
        values["created_at"] = created_at
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(update(Patient).where(Patient.id == patient_id).values(**values))


def _digests(harness: BotHarness, chat_id: int) -> list[BotMessage]:
    heading = harness.runtime.text(
        "caseload.digest",
        "en",
        escalations="",
        used="",
        high_cravings="",
        silent="",
        declined="",
        checked_in="",
    ).splitlines()[0]
    return [m for m in harness.standin.transcript(chat_id) if (m.text or "").startswith(heading)]


async def _recorded_sent(harness: BotHarness, key: str, deadline: float = 10.0) -> None:
    """Wait until the sender has recorded the row as sent (its own transaction, just after sending)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        row = await _outbox_row(harness, OutboxMessage.key == key)
        if row is not None and row.status is OutboxStatus.SENT:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} was never recorded as sent")


async def _outbox_row(harness: BotHarness, *conditions: object) -> OutboxMessage | None:
    async with harness.runtime.sessions() as session:
        return await session.scalar(select(OutboxMessage).where(*conditions))  # type: ignore[arg-type]


async def test_erasing_zebediah_keeps_the_page_about_zebediah_r_and_each_digest_goes_once(
    harness: BotHarness,
) -> None:
    sam_user, sam_id = await harness.link_counselor("Sam")
    bo_user, bo_id = await harness.link_counselor("Bo")
    zeb_user, zeb_r_user, other_user = harness.new_user_id(), harness.new_user_id(), harness.new_user_id()
    zeb_id = await harness.enroll(zeb_user, sam_id)
    other_id = await harness.enroll(other_user, sam_id)
    zeb_r_id = await harness.enroll(zeb_r_user, bo_id)  # on another counselor's team
    long_ago = utcnow() - timedelta(days=5)  # enrolled days ago, never checked in: in Sam's digest
    await _name(harness, zeb_id, "Zebediah", long_ago)
    await _name(harness, other_id, "Quill", long_ago)
    await _name(harness, zeb_r_id, "Zebediah R")
    days = await _digest_due(harness, sam_id, bo_id)

    # Zebediah R writes crisis words; Bo's page cannot go out yet (Telegram fails for Bo's chat).
    harness.standin.inject("sendMessage", Fault.server_error(502), times=1000, chat_id=bo_user)
    await harness.say(zeb_r_user, CRISIS, "988")
    to_bo = OutboxMessage.chat_ref.in_(harness.runtime.keyring.pseudonyms(bo_user))
    page = await _outbox_row(harness, OutboxMessage.kind == PAGE_KIND, to_bo)
    assert page is not None and page.status is OutboxStatus.PENDING
    assert "Zebediah R" in page.payload["text"]
    # The day's digests: Sam's (Zebediah, Quill) is sent; Bo's (Zebediah R's alert) waits with the page.
    assert await digests.send_digests(harness.runtime) == 2
    await harness.standin.wait_for(sam_user, lambda m: m in _digests(harness, sam_user), timeout=10)
    assert "Zebediah" in (_digests(harness, sam_user)[0].text or "")
    await _recorded_sent(harness, digest_key(sam_id, days[sam_id]))

    # Zebediah erases himself.
    prompt = await harness.say(zeb_user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    await harness.tap(
        zeb_user, prompt, harness.text("deleteme.confirm_button"), harness.part("deleteme.done")
    )
    assert await harness.patient(zeb_user) is None

    # Zebediah R's page and Bo's digest are still queued; Sam's sent digest keeps its row (so it is not sent
    # again) without the erased patient's alias.
    page = await _outbox_row(harness, OutboxMessage.id == page.id)
    assert page is not None and page.status is OutboxStatus.PENDING
    bo_digest = await _outbox_row(harness, OutboxMessage.key == digest_key(bo_id, days[bo_id]))
    assert bo_digest is not None and bo_digest.status is OutboxStatus.PENDING
    sam_digest = await _outbox_row(harness, OutboxMessage.key == digest_key(sam_id, days[sam_id]))
    assert sam_digest is not None and sam_digest.status is OutboxStatus.SENT
    assert "Zebediah" not in sam_digest.payload["text"]

    # Telegram is back: the page and the digest reach Bo, once each.
    harness.standin.clear_faults()
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .values(next_attempt_at=utcnow())
        )
    harness.runtime.wake_outbox()
    alert = await harness.standin.wait_for(
        bo_user, lambda m: bool(m.buttons()) and "Zebediah R" in (m.text or "")
    )
    assert alert.text == page.payload["text"]
    await harness.standin.wait_for(bo_user, lambda m: m in _digests(harness, bo_user), timeout=10)
    assert "Zebediah R" in (_digests(harness, bo_user)[0].text or "")
    assert await digests.send_digests(harness.runtime) == 0  # once a day, for both
    assert len(_digests(harness, sam_user)) == 1 and len(_digests(harness, bo_user)) == 1
