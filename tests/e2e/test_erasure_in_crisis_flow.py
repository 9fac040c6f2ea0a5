"""No erasure during a crisis (issue 18, item 4): /deleteme while an alert about the patient is open waits.
The patient is told why, the care team that a request is waiting (alias only); paging, the counselor's
buttons and /alerts go on; once the last alert is resolved the scheduler's job erases, and tells the patient.
What the retention policy keeps of the safety event stays, de-identified.

Real HTTP, the real Application, database and scheduler (its escalation jobs tick every 10 seconds; here
every second, so the erasure is waited for with a deadline of a few ticks).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import scheduler
from bot.core.models import AuditEvent, EscalationStatus
from tests.e2e.test_crisis_flow import _escalations, _time_passes
from tests.harness import BotHarness

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
