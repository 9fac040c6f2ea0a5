"""An overdose message gets the action first: "Call 911 now." opens the very next message, in the patient's
language, with the naloxone steps and Poison Help; the care team is paged as for any imminent signal."""

from __future__ import annotations

import pytest

from tests.harness import BotHarness

POISON_HELP = "1-800-222-1222"


async def _patient(harness: BotHarness, *, spanish: bool = False) -> tuple[int, int]:
    """A counselor's chat and an enrolled patient's chat (in Spanish if asked)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    if not spanish:
        await harness.enroll(user, counselor_id)
        return counselor_user, user
    await harness.enroll(user, counselor_id, finish_setup=False)
    time_question = await harness.say(user, "America/New_York", harness.part("onboarding.ask_checkin_time"))
    language_question = await harness.tap(
        user, time_question, "20:00", harness.part("onboarding.ask_language")
    )
    await harness.tap(
        user, language_question, harness.text("language_name", "es"), harness.part("onboarding.done", "es")
    )
    await harness.standin.wait_for(user, harness.part("naloxone.ask", "es"))  # set-up's last question
    return counselor_user, user


@pytest.mark.parametrize(
    ("spanish", "message"),
    [
        (False, "my friend overdosed and wont wake up"),
        (True, "mi amigo no despierta, creo que es una sobredosis"),
    ],
)
async def test_an_overdose_message_gets_call_911_first(
    harness: BotHarness, spanish: bool, message: str
) -> None:
    counselor_user, user = await _patient(harness, spanish=spanish)
    language = "es" if spanish else "en"
    action = harness.runtime.text("crisis.overdose_action", language)

    mark = harness.standin.mark(user)
    reply = await harness.say(user, message, action)
    # The first message after the patient's is the overdose reply, and it opens with the action.
    assert harness.standin.transcript(user)[mark].message_id == reply.message_id
    text = reply.text or ""
    assert text.startswith(action)
    assert text.startswith(harness.runtime.text("crisis.overdose", language))
    for contact in (POISON_HELP, "988", "741741", "838255", "711"):
        assert contact in text
    assert "1-800-662-4357" not in text  # SAMHSA's treatment-referral line is not in the crisis list
    category = harness.runtime.text("escalation.categories.overdose", "en")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert category in (alert.text or "")
