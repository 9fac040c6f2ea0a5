"""No erasure during a crisis (issue 18, item 4): /deleteme while an alert about the patient is open waits.
The patient is told why, the care team that a request is waiting (alias only); paging, the counselor's
buttons and /alerts go on; once the last alert is resolved the scheduler's job erases, and tells the patient.
What the retention policy keeps of the safety event stays, de-identified.

Real HTTP, the real Application, database and scheduler (its escalation jobs tick every 10 seconds; here
every second, so the erasure is waited for with a deadline of a few ticks).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot import scheduler
from bot.core import db
from bot.core.models import AuditEvent, EscalationStatus
from bot.handlers import privacy
from bot.intake import store as inbox
from bot.privacy import erasure
from tests.e2e.test_crisis_flow import _escalations, _time_passes
from tests.harness import PATIENCE, BotHarness

CRISIS = {"en": "im going to kill myself tonight", "es": "me voy a matar esta noche"}
ERASED_WITHIN = 30.0  # the deferred erasure runs on the scheduler's escalation tick


@pytest.fixture(autouse=True)
def _escalation_jobs_tick_every_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the bot starts (autouse fixtures come first): what is waited for is the job, not its tick."""
    monkeypatch.setattr(scheduler, "ESCALATION_TICK_SECONDS", 1)


@pytest.mark.parametrize("language", ["en", "es"])
async def test_deleteme_waits_for_the_open_alert_then_erases(harness: BotHarness, language: str) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None

    await harness.say(user, CRISIS[language], "988")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )

    prompt = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt", language))
    mark = harness.standin.mark(counselor_user)
    confirm = harness.text("deleteme.confirm_button", language)
    await harness.tap(user, prompt, confirm, harness.part("deleteme.deferred", language))
    waiting = harness.text("care.flag.deletion_waiting", "en", alias=patient.alias)
    notice = await harness.standin.wait_for(counselor_user, waiting, after=mark)
    assert notice.text == waiting  # the alias, and nothing else about them

    # Nothing was erased: the alert is open, re-paged, listed, and its buttons work.
    assert await harness.patient(user) is not None
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN
    await _time_passes(harness, escalation.id)
    await harness.standin.wait_for(counselor_user, harness.part("escalation.repage"))
    open_list = harness.text("escalation.open_list", "en", count=1, more=0)
    await harness.say(counselor_user, "/alerts", open_list)
    details = await harness.tap(counselor_user, alert, harness.text("escalation.details_button"), "What")
    assert CRISIS[language] in (details.text or "")

    # The counselor resolves it: the erasure runs on its own, and the patient is told.
    await harness.resolve_alert(counselor_user, alert, "Sam")
    done = harness.part("deleteme.done", language)
    await harness.standin.wait_for(user, done, timeout=ERASED_WITHIN)
    assert await harness.patient(user) is None
    assert await _escalations(harness, patient_id) == []

    # Kept of the safety event: what happened and how fast it was answered, with nothing leading back.
    async with harness.runtime.sessions() as session:
        kept = list(await session.scalars(select(AuditEvent).where(AuditEvent.action == "safety_event.kept")))
        naming = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.subject_type.in_(("patient", "escalation")),
                    AuditEvent.subject_id.in_((patient_id, escalation.id)),
                )
            )
        )
    [event] = kept
    assert (event.actor_id, event.subject_type, event.subject_id) == (None, None, None)
    assert event.detail is not None
    assert {k: event.detail[k] for k in ("level", "category", "source", "outcome")} == {
        "level": "imminent",
        "category": "suicide",
        "source": "message",
        "outcome": "safe",
    }
    assert isinstance(event.detail["minutes_to_resolve"], int) and event.detail["paging_stages"] >= 2
    assert not any(key.endswith("_id") for key in event.detail)
    assert patient.alias not in str(event.detail)
    assert naming == []


# Another connection of this database waits for a lock (on PostgreSQL).
_WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


class _AlertCopies:
    """The bot as `erase_deferred` uses it: taking the buttons off the care team's alert copies."""

    def __init__(self) -> None:
        self.taken_off: list[tuple[int, int]] = []

    async def edit_message_reply_markup(self, chat_id: int, message_id: int, **_: object) -> None:
        self.taken_off.append((chat_id, message_id))


async def _handled_or_held(harness: BotHarness, chat_id: int, patient_id: int) -> None:
    """Until the patient's message is in the inbox and then either handled (its alert in the database, the
    update marked done) or its turn waits for a lock."""
    deadline = time.monotonic() + PATIENCE
    stored = False
    while time.monotonic() < deadline:
        async with harness.runtime.sessions() as session:
            waiting = await inbox.waiting_in_chat(session, chat_id)
            stored = stored or waiting
            if stored and not waiting and await _escalations(harness, patient_id):
                return
            if stored and await session.scalar(text(_WAITING_FOR_A_LOCK)):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the crisis message was neither handled nor held")


async def test_a_crisis_message_while_the_deferred_erasure_runs_is_not_erased(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job locks the patient's row before it looks for open alerts: a crisis turn that comes while it
    looks either committed first (and is seen) or waits for the job (its message still in the inbox). Either
    way the patient is not erased, and the alert goes to the counselor."""
    if harness.runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the job's transaction holds the write lock; no turn commits meanwhile")
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    patient = await harness.patient(user)
    assert patient is not None
    async with db.transaction(harness.runtime.sessions) as session:
        await erasure.defer(session, patient_id)  # a confirmed /deleteme, its alert resolved since
    looks, crises = erasure.blocked, [CRISIS["en"]]

    async def a_crisis_meanwhile(session: AsyncSession, looked_up: int) -> bool:
        found = await looks(session, looked_up)
        if looked_up == patient_id and crises:  # the scheduler's own run of the job changes nothing
            await harness.standin.send_text(user, crises.pop())
            await _handled_or_held(harness, patient.chat_id, patient_id)
        return found

    monkeypatch.setattr(erasure, "blocked", a_crisis_meanwhile)
    copies = _AlertCopies()
    await privacy.erase_deferred(harness.runtime, copies)  # type: ignore[arg-type]
    assert not crises
    assert await harness.patient(user) is not None
    assert copies.taken_off == []
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.OPEN
