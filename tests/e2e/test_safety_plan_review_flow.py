"""The safety plan after the clinical review (issue 18 item 12), in English and Spanish: step 5 starts with
the clinic's numbers and the nearest emergency room; a sponsor is asked about in step 4; step 6 names guns
kept away from home, a lockbox for medicines and methadone take-home doses, alcohol and drugs out of the
home, and naloxone at home; the crisis reply shows the patient's reason for living; the counselor is told,
by alias only and once per sitting, that a plan was made or changed.

Real HTTP, the real Application and database, against the stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import db
from bot.core.config import Settings
from bot.core.models import CareFlag, utcnow
from bot.risk.safety_plan import TOLD_WINDOW
from tests.harness import TEST_CLINIC_VALUES, BotHarness

CLINIC_PHONE = TEST_CLINIC_VALUES["clinic_phone"]  # the harness's clinic settings
AFTER_HOURS_PHONE = TEST_CLINIC_VALUES["after_hours_phone"]
PROGRAM = TEST_CLINIC_VALUES["program_name"]
CRISIS = {"en": "im going to kill myself tonight", "es": "me voy a matar esta noche"}
# What step 4 and step 6 must name (the clinical review's list), as each language says it.
SPONSOR = {"en": "sponsor", "es": "padrino"}
MEANS = {
    "en": ("guns", "lockbox", "methadone take-home doses", "alcohol and drugs", "naloxone"),
    "es": (
        "arma de fuego",
        "caja con llave",
        "dosis de metadona para llevar a casa",
        "el alcohol y las drogas",
        "naloxona",
    ),
}


def _first(harness: BotHarness, key: str, language: str, **variables: object) -> str:
    return harness.runtime.text(key, language, **variables).splitlines()[0]


def _title(harness: BotHarness, step: str, language: str) -> str:
    return harness.runtime.text(f"plan.steps.{step}.title", language)


async def _flags(harness: BotHarness, patient_id: int) -> list[str]:
    async with harness.runtime.sessions() as session:
        rows = await session.scalars(select(CareFlag.kind).where(CareFlag.patient_id == patient_id))
        return list(rows)


@pytest.mark.parametrize("language", ["en", "es"])
async def test_plan_steps_prefill_means_reason_and_the_counselor_told(
    settings: Settings, engine: object, language: str
) -> None:
    async with BotHarness.running(settings) as harness:
        counselor_user, counselor_id = await harness.link_counselor("Sam")
        user = harness.new_user_id()
        patient_id = await harness.enroll(user, counselor_id, language=language)
        patient = await harness.patient(user)
        assert patient is not None
        text = harness.runtime.text

        intro = await harness.say(user, "/safetyplan", _first(harness, "plan.intro", language))
        await harness.tap(
            user, intro, text("plan.start_button", language), _title(harness, "warning_signs", language)
        )
        await harness.say(user, "Isolating", _title(harness, "coping", language))
        await harness.say(user, "A walk", _title(harness, "distraction", language))
        step4 = await harness.say(user, "The gym", _title(harness, "help_people", language))
        assert SPONSOR[language] in (step4.text or "")
        step5 = await harness.say(user, "Ana 555-0134", _title(harness, "professionals", language))
        shown5 = step5.text or ""
        for line in (f"{PROGRAM}: {CLINIC_PHONE}", AFTER_HOURS_PHONE, "911"):
            assert line in shown5
        assert SPONSOR[language] not in shown5  # a sponsor is a person to ask for help (step 4)
        skip = text("plan.skip_button", language)
        step6 = await harness.tap(user, step5, skip, _title(harness, "safe_environment", language))
        for means in MEANS[language]:
            assert means in (step6.text or "")
        await harness.say(user, "Pills to my sister", _title(harness, "reason_for_living", language))
        view = await harness.say(user, "My kids", _first(harness, "plan.view", language, sections=""))
        # Step 5 holds the clinic's numbers although the patient skipped it; they are not stored as theirs.
        assert CLINIC_PHONE in (view.text or "")
        # One notice for the whole sitting, the alias only.
        made = text("care.flag.safety_plan_made", "en", alias=patient.alias)
        notice = await harness.standin.wait_for(counselor_user, made)
        assert notice.text == made
        assert await _flags(harness, patient_id) == ["safety_plan_made"]

        # The crisis reply shows their reason for living, in their words.
        reply = await harness.say(user, CRISIS[language], "988")
        assert '"My kids"' in (reply.text or "")

        # A change in a later sitting tells the counselor again, as a change.
        async with db.transaction(harness.runtime.sessions) as session:
            await session.execute(
                update(CareFlag)
                .where(CareFlag.patient_id == patient_id)
                .values(created_at=utcnow() - TOLD_WINDOW - timedelta(minutes=1))
            )
        shown = await harness.say(user, "/safetyplan", _first(harness, "plan.view", language, sections=""))
        which = await harness.tap(
            user, shown, text("plan.edit_button", language), text("plan.edit_which", language)
        )
        await harness.tap(
            user, which, _title(harness, "help_people", language), _title(harness, "help_people", language)
        )
        mark = harness.standin.mark(counselor_user)
        await harness.say(
            user, "Ana 555-0134, my sponsor Joe 555-0188", _first(harness, "plan.view", language, sections="")
        )
        changed = text("care.flag.safety_plan_changed", "en", alias=patient.alias)
        notice = await harness.standin.wait_for(counselor_user, changed, after=mark)
        assert "Joe" not in (notice.text or "")
        assert sorted(await _flags(harness, patient_id)) == ["safety_plan_changed", "safety_plan_made"]


async def test_without_clinic_numbers_step_5_still_names_the_emergency_room(harness: BotHarness) -> None:
    _, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)
    lines = harness.runtime.text("plan.clinic_lines", "en", program="", clinic_phone="", after_hours_phone="")
    assert "911" in lines
    step = await harness.say(user, "/safetyplan", _first(harness, "plan.intro", "en"))
    step = await harness.tap(user, step, harness.runtime.text("plan.start_button", "en"), "1.")
    skip = harness.runtime.text("plan.skip_button", "en")
    for following in ("coping", "distraction", "help_people", "professionals"):
        step = await harness.tap(user, step, skip, _title(harness, following, "en"))
    assert lines in (step.text or "")
