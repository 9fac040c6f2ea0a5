"""Harm reduction after use (issue 18, item 9).

A reported use gets advice by what was used (loss of tolerance, "don't use alone" with Never Use Alone,
naloxone over the counter, fentanyl test strips, alcohol or benzodiazepine withdrawal). Typed signs of
dangerous withdrawal point to medical care and 911; "dope sick" to the clinic and medication; a missed or
run-out buprenorphine or methadone dose also tells the counselor (a flag).

Real HTTP, the real Application and database (see test_crisis_flow).
"""

from __future__ import annotations

import pytest

from bot.risk.use import Advice
from tests.e2e.test_use_alert_flow import _flags, _to_use_what
from tests.harness import BotHarness

MISSED = {"en": "ran out of my subs yesterday", "es": "se me acabó la metadona"}
DOPE_SICK = {"en": "im so dope sick", "es": "estoy enfermo por la malilla"}
DANGEROUS = {
    "en": "shaking and sweating, havent had a drink in 2 days",
    "es": "estoy temblando y sudando, dejé de tomar hace dos días",
}
# What was tapped at "What did you use?" (then "Neither" where asked) -> the advice given.
BY_SUBSTANCE = {
    "opioid": [Advice.TOLERANCE, Advice.NOT_ALONE, Advice.NALOXONE, Advice.TEST_STRIPS],
    "alcohol": [Advice.TOLERANCE, Advice.WITHDRAWAL],
    "cannabis": [],
}


@pytest.mark.parametrize("language", ["en", "es"])
async def test_withdrawal_and_a_missed_dose_get_their_own_advice(harness: BotHarness, language: str) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None

    dangerous = await harness.say(
        user, DANGEROUS[language], harness.part("use.withdrawal.dangerous", language)
    )
    assert dangerous.text == harness.text("use.withdrawal.dangerous", language)
    assert "911" in (dangerous.text or "")

    mark = harness.standin.mark(user)
    sick = await harness.say(user, DOPE_SICK[language], harness.part("use.withdrawal.dope_sick", language))
    assert sick.text == harness.text("use.withdrawal.dope_sick", language)
    # Its own advice, instead of the general offer of an exercise or "I didn't understand".
    others = [m.text for m in harness.standin.transcript(user)[mark:] if m.text != sick.text]
    assert others == []

    missed = await harness.say(user, MISSED[language], harness.part("use.withdrawal.missed_dose", language))
    assert missed.text == harness.text("use.withdrawal.missed_dose", language)
    await harness.standin.wait_for(
        counselor_user, harness.text("care.flag.dose_missed", "en", alias=patient.alias)
    )
    assert await _flags(harness, patient_id) == ["dose_missed"]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("substance", list(BY_SUBSTANCE))
async def test_advice_after_a_check_in_use_fits_what_was_used(
    harness: BotHarness, language: str, substance: str
) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id, language=language)
    what = await _to_use_what(harness, user, language)
    tier = "high" if substance == "opioid" else "flag"
    told = harness.part(f"use.told_{tier}", language)
    label = harness.text(f"checkin.buttons.use_what.{substance}", language)
    if tier == "high":
        reply = await harness.tap(user, what, label, told)
    else:
        how = await harness.tap(user, what, label, harness.part("checkin.ask.use_how", language))
        reply = await harness.tap(user, how, harness.text("checkin.buttons.use_how.neither", language), told)
    expected = [harness.text(f"use.told_{tier}", language, promise=harness.promise(language))]
    expected += [harness.text(f"use.advice.{advice}", language) for advice in BY_SUBSTANCE[substance]]
    assert reply.text == "\n\n".join(expected)
    if substance == "opioid":
        assert "1-800-484-3731" in (reply.text or "")
