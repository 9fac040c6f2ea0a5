"""Tiered use alerts, fewer false pages (issue 18, item 10).

Opioids or fentanyl, using alone, injecting, or mixing with benzodiazepines or alcohol page the care team
now; any other use is a flag for the next business day; a use whose substance is not known counts as high.
Harmless words that used to page ("drank a lot of water", "scored a job interview") page nobody. The
check-in's use question says a "yes" reaches the counselor, asks what (and, when it could matter, alone or
injected) before anyone is told, and a "yes" left there unanswered is still told.

Real HTTP, the real Application and database (see test_crisis_flow).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.checkin import jobs as checkin_jobs
from bot.core.models import CareFlag, CheckIn, Escalation, OutboxMessage, utcnow
from bot.risk import paging
from devtools.simulator import BotMessage
from tests.e2e.test_crisis_first_flow import WAIT
from tests.e2e.test_crisis_flow import _escalations
from tests.harness import BotHarness

FLAGGED = {"en": "had a few beers last night", "es": "me tomé unas cervezas con mis amigos anoche"}
PAGED = {"en": "i used heroin last night", "es": "me inyecté anoche"}
HARMLESS = ("drank a lot of water", "I drank a lot of water today", "scored a job interview today!")


async def _flags(harness: BotHarness, patient_id: int) -> list[str]:
    async with harness.runtime.sessions() as session:
        return list(await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id)))


async def _pages(harness: BotHarness) -> int:
    """Alert pages queued for anyone so far."""
    async with harness.runtime.sessions() as session:
        found = await session.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == paging.PAGE_KIND)
        )
        return found or 0


async def _high_alert(harness: BotHarness, counselor_user: int, user: int) -> BotMessage:
    """The counselor's High alert about the patient `user`."""
    patient = await harness.patient(user)
    assert patient is not None
    high = harness.text("escalation.levels.high")
    return await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=high, alias=patient.alias)
    )


async def test_harmless_words_page_nobody(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    # (The semantic layer may ask "are you safe right now?" about "drank a lot": a question, never a page.)
    answers = (harness.text("input.not_understood"), harness.part("crisis.safety_check"))
    for text in HARMLESS:
        mark = harness.standin.mark(user)
        await harness.standin.send_text(user, text)
        await harness.standin.wait_for(user, lambda m: any(a in (m.text or "") for a in answers), after=mark)
    assert await _escalations(harness, patient_id) == []
    assert await _flags(harness, patient_id) == []
    assert await _pages(harness) == 0


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_typed_use_is_tiered_flag_or_page(harness: BotHarness, language: str) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None

    # Beer with friends: a flag for the next business day, no page; the patient is told so.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, FLAGGED[language])
    reply = await harness.standin.wait_for(user, harness.part("use.told_flag", language), after=mark)
    assert harness.text("use.told_flag", language).splitlines()[-1] in (reply.text or "")
    assert harness.text("use.advice.tolerance", language) in (reply.text or "")
    assert [label for label, _ in reply.buttons()] == [harness.text("crisis.try_exercise_button", language)]
    notice = harness.text("care.flag.use_reported", "en", alias=patient.alias)
    await harness.standin.wait_for(counselor_user, notice)
    assert await _flags(harness, patient_id) == ["use_reported"]
    assert await _escalations(harness, patient_id) == []
    assert await _pages(harness) == 0

    # Heroin, or injecting: a page now, and advice on naloxone and using alone.
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, PAGED[language])
    reply = await harness.standin.wait_for(
        user, harness.part("use.told_high", language), after=mark, timeout=WAIT
    )
    for advice in ("not_alone", "naloxone", "test_strips"):
        assert harness.text(f"use.advice.{advice}", language) in (reply.text or "")
    assert harness.promise(language) in (reply.text or "")  # only what the clinic can keep now (item 6)
    await _high_alert(harness, counselor_user, user)
    [escalation] = await _escalations(harness, patient_id)
    assert (escalation.level, escalation.category) == ("high", "relapse")


async def _to_use_question(harness: BotHarness, user: int, language: str) -> BotMessage:
    """A check-in up to "Have you had any alcohol or drugs...?" (craving 2, the rest skipped)."""

    def ask(question: str) -> str:
        return harness.part(f"checkin.ask.{question}", language)

    skip = harness.text("checkin.buttons.skip", language)
    message = await harness.say(user, "/checkin", ask("craving"))
    message = await harness.tap(user, message, "2", ask("triggers"))
    for following in ("mood", "sleep", "use"):
        message = await harness.tap(user, message, skip, ask(following))
    return message


async def _to_use_what(harness: BotHarness, user: int, language: str) -> BotMessage:
    """A check-in up to "What did you use?" (a yes at the use question)."""
    use = await _to_use_question(harness, user, language)
    return await harness.tap(
        user,
        use,
        harness.text("checkin.buttons.yes", language),
        harness.part("checkin.ask.use_what", language),
    )


@pytest.mark.parametrize("language", ["en", "es"])
async def test_the_check_in_asks_what_before_telling_and_pages_for_opioids(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    use = await _to_use_question(harness, user, language)
    # The question says that a "yes" reaches the counselor.
    assert use.text == harness.text("checkin.ask.use", language)

    what = await harness.tap(
        user,
        use,
        harness.text("checkin.buttons.yes", language),
        harness.part("checkin.ask.use_what", language),
    )
    # Nobody is told at "yes" alone: what was used decides it.
    assert await _escalations(harness, patient_id) == [] and await _pages(harness) == 0
    assert [label for label, _ in what.buttons()][:2] == [
        harness.text("checkin.buttons.use_what.opioid", language),
        harness.text("checkin.buttons.use_what.alcohol", language),
    ]
    mark = harness.standin.mark(user)
    await harness.tap(
        user,
        what,
        harness.text("checkin.buttons.use_what.opioid", language),
        harness.part("use.told_high", language),
    )
    await harness.standin.wait_for(user, harness.part("checkin.ask.note", language), after=mark)
    await _high_alert(harness, counselor_user, user)
    [escalation] = await _escalations(harness, patient_id)
    assert (escalation.level, escalation.category, escalation.source) == ("high", "relapse", "checkin")


async def test_a_yes_left_without_what_is_told_as_high(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    use = await _to_use_question(harness, user, "en")
    await harness.tap(user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what"))

    await checkin_jobs.checkin_tick(harness.runtime)  # not yet: the patient may still answer
    assert await _escalations(harness, patient_id) == []
    long_ago = utcnow() - checkin_jobs.USE_ANSWER_WAIT - timedelta(seconds=1)
    async with harness.runtime.sessions() as session, session.begin():
        await session.execute(
            update(CheckIn).where(CheckIn.patient_id == patient_id).values(answered_at=long_ago)
        )
    await checkin_jobs.checkin_tick(harness.runtime)
    await checkin_jobs.checkin_tick(harness.runtime)  # told once
    await _high_alert(harness, counselor_user, user)
    [escalation] = await _escalations(harness, patient_id)
    assert escalation.source == "checkin"
    async with harness.runtime.sessions() as session:
        checkin = await session.scalar(select(CheckIn).where(CheckIn.patient_id == patient_id))
        assert checkin is not None
        assert (checkin.step, checkin.skipped) == ("note", ["triggers", "mood", "sleep", "use_what"])
        assert await session.scalar(select(Escalation.stage).where(Escalation.id == escalation.id)) == 0


async def test_what_was_typed_about_a_paged_use_is_behind_show_details(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)
    use = await _to_use_question(harness, user, "en")
    await harness.tap(user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what"))
    await harness.say(user, "some blues, by myself", harness.part("use.told_high"))
    alert = await _high_alert(harness, counselor_user, user)
    assert "blues" not in (alert.text or "")  # never in the alert itself
    details_data = next(
        d for label, d in alert.buttons() if label == harness.text("escalation.details_button")
    )
    mark = harness.standin.mark(counselor_user)
    await harness.standin.tap(counselor_user, alert.message_id, details_data)
    await harness.standin.wait_for(counselor_user, "some blues, by myself", after=mark)


@pytest.mark.parametrize(
    ("language", "typed"),
    [("en", "i used fentanyl too"), ("en", "no, i also did heroin"), ("es", "tambien use fentanilo")],
)
async def test_an_opioid_typed_at_alone_or_injected_pages(
    harness: BotHarness, language: str, typed: str
) -> None:
    """Alcohol tapped, then an opioid typed at "Were you alone, or did you inject?": paged now, not a flag."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language)
    what = await _to_use_what(harness, user, language)
    await harness.tap(
        user,
        what,
        harness.text("checkin.buttons.use_what.alcohol", language),
        harness.part("checkin.ask.use_how", language),
    )
    reply = await harness.say(user, typed, harness.part("use.told_high", language))
    assert harness.text("use.advice.naloxone", language) in (reply.text or "")
    await _high_alert(harness, counselor_user, user)
    [escalation] = await _escalations(harness, patient_id)
    assert (escalation.level, escalation.category, escalation.source) == ("high", "relapse", "checkin")
    assert await _flags(harness, patient_id) == []
