"""Crisis words with an invisible character or a look-alike letter inside still get the crisis reply, and the
care team is paged, as for the plain words (issue 17)."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.models import RiskSignal
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import BotHarness


async def _crisis_reply_and_page(harness: BotHarness, counselor: tuple[int, int], text: str) -> None:
    """A new patient of `counselor` (user, id) sends `text`: the crisis reply comes back whole, the counselor
    gets the urgent alert, and the signal is recorded as suicide risk."""
    counselor_user, counselor_id = counselor
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)
    expected = harness.runtime.text(
        "crisis.imminent", "en", overdose=False, plan_contacts=None, promise=harness.promise()
    )
    reply = await harness.say(patient_user, text, expected.splitlines()[0])
    assert reply.text == expected
    patient = await harness.patient(patient_user)
    assert patient is not None
    urgent = harness.runtime.text("escalation.levels.imminent", "en")
    alert = await harness.standin.wait_for(counselor_user, lambda m: patient.alias in (m.text or ""))
    assert (alert.text or "").startswith(f"{urgent} alert: {patient.alias}")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.level == "imminent"
    async with harness.runtime.sessions() as session:
        signal = await session.scalar(select(RiskSignal).where(RiskSignal.patient_id == patient_id))
    assert signal is not None and signal.categories == ["suicide"]


async def test_a_zero_width_space_inside_kill_gets_the_crisis_reply_and_pages(harness: BotHarness) -> None:
    counselor = await harness.link_counselor("Sam")
    await _crisis_reply_and_page(harness, counselor, "im going to k\u200bill myself tonight")
    await _crisis_reply_and_page(harness, counselor, "I want to k\u0456ll myself")  # Cyrillic "і"
