"""The semantic layer through the stand-in: what only it worries about is asked about; after "I'm safe" its
questions pause for SEMANTIC_COOLDOWN_HOURS while the rules and its own imminent pages still act; after the
window it asks again. The layer's pages (here: danger from someone at the door, which no rule lists) get the
danger reply and an imminent alert."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.core import db
from bot.core.models import AuditEvent, Escalation, utcnow
from bot.risk import cssrs
from tests.harness import BotHarness

# Words no rule lists, that the shipped layer asks about (bench: `python -m bot risk check`).
ONLY_THE_LAYER = "i keep thinking everyone would move on fine if i just vanished"
ONLY_THE_LAYER_AGAIN = "i feel like everyone would be fine if i just disappeared for good"
# ...and one it pages as imminent danger.
AT_THE_DOOR = "my husband is at the door with a bat screaming hes gonna break in"
RULES_HIGH = "i relapsed last night"


async def _levels(harness: BotHarness, patient_id: int) -> list[tuple[str, str]]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(
            select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id)
        )
        return [(e.level, e.category) for e in rows]


def _questions(harness: BotHarness, user: int, after: int) -> int:
    asked = harness.part("crisis.safety_check")
    return sum(asked in (m.text or "") for m in harness.standin.transcript(user)[after:])


async def test_after_im_safe_the_layer_waits_but_the_rules_and_its_pages_do_not(harness: BotHarness) -> None:
    assert harness.settings.semantic_cooldown_hours == 4
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, counselor_id)

    question = await harness.say(patient_user, ONLY_THE_LAYER, harness.part("crisis.safety_check"))
    await harness.tap(
        patient_user, question, harness.text("crisis.safe_button"), harness.part("crisis.safe_reply")
    )

    # Within the window: no question about what only the layer worries about...
    mark = harness.standin.mark(patient_user)
    await harness.standin.send_text(patient_user, ONLY_THE_LAYER_AGAIN)
    # ...but the rules still act (a use reported, paged); its reply also shows the turn before it is over.
    await harness.say(patient_user, RULES_HIGH, harness.part("use.told_high"))
    assert _questions(harness, patient_user, mark) == 0
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.high"))
    )

    # ...and so does the layer's own page: danger right now, which no rule lists, gets the danger reply.
    mark = harness.standin.mark(counselor_user)
    await harness.say(patient_user, AT_THE_DOOR, harness.part("crisis.danger"))
    await harness.standin.wait_for(counselor_user, harness.text("escalation.categories.danger"), after=mark)
    assert await _levels(harness, patient_id) == [("high", "relapse"), ("imminent", "danger")]

    # Once the window has passed (the answer moved back in time), the layer asks again.
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == cssrs.SAFETY_ANSWERED, AuditEvent.subject_id == patient_id)
            .values(at=utcnow() - timedelta(hours=4, minutes=1))
        )
    await harness.say(patient_user, ONLY_THE_LAYER, harness.part("crisis.safety_check"))
