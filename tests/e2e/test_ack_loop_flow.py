"""Close the loop (issue 18, item 7): when a counselor acknowledges an alert, the patient hears who saw it and
that they will contact them, once, through the outbox after the tap's turn commits; "Acknowledge quietly"
acknowledges the same way and tells the patient nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.core.models import Escalation, EscalationStatus, OutboxMessage
from bot.risk.callbacks import ACK_TOLD, AckTold
from tests.e2e.test_crisis_first_flow import CRISIS, WAIT
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import BotHarness, BotMessage, alert_button


async def _alerted(harness: BotHarness, language: str) -> tuple[int, int, int, BotMessage]:
    """A counselor, Sam Reyes, paged about their patient's crisis message: (counselor's chat, patient's
    chat, patient id, the alert)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    await harness.standin.send_text(user, CRISIS[language])
    urgent = harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    alert = await harness.standin.wait_for(counselor_user, urgent, timeout=WAIT)
    return counselor_user, user, patient_id, alert


async def _told_rows(harness: BotHarness, escalation_id: int) -> list[OutboxMessage]:
    async with harness.runtime.sessions() as session:
        key = ACK_TOLD.pack(AckTold(escalation_id))
        return list(await session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)))


@pytest.mark.parametrize("language", ["en", "es"])
async def test_acknowledging_tells_the_patient_who_saw_it(harness: BotHarness, language: str) -> None:
    counselor_user, user, patient_id, alert = await _alerted(harness, language)
    labels = [label for label, _ in alert.buttons()]
    assert harness.runtime.text("escalation.acknowledge_quietly_button", "en") in labels

    told = harness.runtime.text("escalation.patient_told", language, counselor="Sam")
    mark = harness.standin.mark(user)
    ack = alert_button(alert, "ack")
    query = await harness.standin.tap(counselor_user, alert.message_id, ack)
    message = await harness.standin.wait_for(user, told, after=mark, timeout=WAIT)
    assert message.text == told  # the first name only, and nothing of what the patient wrote
    patient = await harness.patient(user)
    assert patient is not None
    answer = await harness.standin.wait_for_callback_answer(query)
    assert answer.get("text") == harness.runtime.text("escalation.ack_told", "en", alias=patient.alias)

    [escalation] = await _escalations(harness, patient_id)
    assert escalation.status is EscalationStatus.ACKNOWLEDGED
    [row] = await _told_rows(harness, escalation.id)
    assert row.subject_patient_id == patient_id and row.patient_id is None  # sent in aftercare too

    # A second tap (someone else's copy, an old button) tells the patient nothing more.
    again = await harness.standin.tap_raw(counselor_user, alert.message_id, ack)
    answer = await harness.standin.wait_for_callback_answer(again)
    assert answer.get("text") == harness.runtime.text("escalation.already", "en")
    assert len(await _told_rows(harness, escalation.id)) == 1
    assert [m.text for m in harness.standin.transcript(user)].count(told) == 1


async def test_acknowledge_quietly_tells_the_patient_nothing(harness: BotHarness) -> None:
    counselor_user, user, patient_id, alert = await _alerted(harness, "en")
    quietly = harness.runtime.text("escalation.acknowledge_quietly_button", "en")
    [data] = [data for label, data in alert.buttons() if label == quietly]
    query = await harness.standin.tap(counselor_user, alert.message_id, data)
    answer = await harness.standin.wait_for_callback_answer(query, timeout=WAIT)
    patient = await harness.patient(user)
    assert patient is not None
    assert answer.get("text") == harness.runtime.text("escalation.ack_quiet", "en", alias=patient.alias)

    async with harness.runtime.sessions() as session:
        [escalation] = await session.scalars(select(Escalation).where(Escalation.patient_id == patient_id))
    assert escalation.status is EscalationStatus.ACKNOWLEDGED
    # The acknowledgement and anything it would have told the patient are in one transaction: committed
    # (the tap is answered after the commit), and no message for the patient among it.
    assert await _told_rows(harness, escalation.id) == []
    told = harness.runtime.text("escalation.patient_told", "en", counselor="Sam")
    assert all(m.text != told for m in harness.standin.transcript(user))
