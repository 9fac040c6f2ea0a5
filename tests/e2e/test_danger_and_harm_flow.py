"""Danger at home and harm to others get replies of their own (issue 18, item 11): danger at home, the
National Domestic Violence Hotline and "is it safe for us to call you?" (the answer reaches the care team);
intent to harm someone else, a reply written for that, not the suicide crisis text.

Real HTTP, the real Application and database; the replies of a crisis turn are read from the outbox's urgent
lane (see test_crisis_first_flow).
"""

from __future__ import annotations

import pytest

from bot.risk import RiskLevel
from tests.e2e.test_crisis_first_flow import WAIT, _crisis_replies, _outbox_mark
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import BotHarness

DANGER = {"en": "my boyfriend has a gun and he is hitting me", "es": "mi novio tiene una pistola y me pega"}
HARM = {"en": "im going to stab him when he gets home", "es": "voy a apuñalarlo cuando llegue"}


@pytest.mark.parametrize("language", ["en", "es"])
async def test_danger_at_home_gets_the_hotline_and_asks_if_a_call_is_safe(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None

    mark, outbox_mark = harness.standin.mark(user), await _outbox_mark(harness)
    await harness.standin.send_text(user, DANGER[language])
    first = harness.part("crisis.danger", language, promise="", ask_call=True)
    reply = await harness.standin.wait_for(user, first, after=mark)
    assert await _crisis_replies(harness, user, outbox_mark) == [
        harness.text("crisis.danger", language, promise=harness.promise(language), ask_call=True)
    ]
    for contact in ("911", "1-800-799-7233", "START", "88788"):
        assert contact in (reply.text or "")
    assert [label for label, _ in reply.buttons()] == [
        harness.text("crisis.call_ok_button", language),
        harness.text("crisis.call_not_ok_button", language),
    ]
    # High by the rules; the semantic layer may page it as imminent (a weapon and an attack now: the guide's
    # imminent danger). The alert carries the level the detector gives, and is never below high.
    screened = harness.runtime.content.risk.screen(DANGER[language])
    assert screened.rules_only().level is RiskLevel.HIGH and screened.level >= RiskLevel.HIGH
    level = harness.text(f"escalation.levels.{screened.level.label}")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=level, alias=patient.alias)
    )
    assert harness.text("escalation.categories.danger") in (alert.text or "")
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.category == "danger"

    # "Don't call": the counselors hear it at once, by alias only.
    mark = harness.standin.mark(counselor_user)
    await harness.tap(
        user,
        reply,
        harness.text("crisis.call_not_ok_button", language),
        harness.part("crisis.call_not_ok_reply", language),
    )
    not_safe = harness.text("care.flag.not_safe_to_call", "en", alias=patient.alias)
    notice = await harness.standin.wait_for(counselor_user, not_safe, after=mark)
    assert notice.text == not_safe


@pytest.mark.parametrize("language", ["en", "es"])
async def test_intent_to_harm_someone_gets_its_own_reply_not_the_suicide_text(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)

    mark, outbox_mark = harness.standin.mark(user), await _outbox_mark(harness)
    await harness.standin.send_text(user, HARM[language])
    reply = await harness.standin.wait_for(
        user, harness.part("crisis.harm_others", language, promise=""), after=mark, timeout=WAIT
    )
    assert await _crisis_replies(harness, user, outbox_mark) == [
        harness.text("crisis.harm_others", language, promise=harness.promise(language))
    ]
    assert "911" in (reply.text or "") and "988" in (reply.text or "")
    suicide_text = harness.part("crisis.imminent", language, overdose=False, plan_contacts=None, promise="")
    assert not any(suicide_text in (m.text or "") for m in harness.standin.transcript(user)[mark:])
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert harness.text("escalation.categories.harm_others") in (alert.text or "")
    [escalation] = await _escalations(harness, patient_id)
    assert (escalation.level, escalation.category) == ("imminent", "harm_others")
