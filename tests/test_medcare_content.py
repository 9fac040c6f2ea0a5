"""The patient texts of medication support, naloxone, care-team messages and aftercare (issue 22) as content
renders them: about a 6th to 8th grade reading level in both languages, no stigma words, lock-screen-safe
reminders unless the patient chose to show the medicine's name, and naloxone's "where to get it" without a
prescription."""

from __future__ import annotations

import re

import pytest

from bot.content import Catalog
from bot.core.models import DoseStatus, MedicationKind
from tests.harness import TEST_CLINIC_VALUES as CLINIC
from tests.harness import shipped_catalog
from tests.readability import fernandez_huerta, flesch_kincaid_grade

LANGUAGES = ("en", "es")
STIGMA = re.compile(
    r"\b(addict\w*|abuser?s?|clean|dirty|junkie|drogadict\w*|adict[oa]s?|limpi[oa]|suci[oa])\b", re.I
)
VALUES = {
    "time": "09:00",
    "medicine": "",
    "day": "Thu Dec 03",
    "daily": True,
    "private": True,
    "told": True,
    "agonist": True,
    "naltrexone": False,
    "shot": False,
    "today": False,
    "days": 14,
    "counselor": "Dana",
    "text": "How are you?",
    "week": 4,
    "last": False,
    "when": "",  # "Ran out" in office hours (see test_ran_out_after_hours_says_when_and_who_answers)
}
PATIENT_KEYS = (
    "meds.intro",
    "meds.ask_show",
    "meds.done",
    "meds.dose.ask",
    "meds.dose.again",
    "meds.dose.closed",
    *(f"meds.dose.answers.{a}" for a in ("taken", "not_yet", "missed", "ran_out")),
    "meds.supply.reminder",
    "meds.set_by_counselor",
    "naloxone.ask",
    "naloxone.where",
    "naloxone.answers.yes",
    "naloxone.replace",
    "messages.type_reply",
    "messages.reply_sent",
    "aftercare.offer",
    "aftercare.accepted",
    "aftercare.declined",
    "aftercare.intro",
    *(f"aftercare.ask.{q}" for q in ("craving", "mood", "use", "connected")),
    "aftercare.stop_ask",
    "aftercare.stopped",
    "aftercare.thanks",
    "aftercare.help_told",
    "aftercare.note",
    "aftercare.ended",
    "help.patient_aftercare",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


def _render(catalog: Catalog, key: str, language: str, **extra: object) -> str:
    return catalog.render_with(CLINIC, key, language, **{**VALUES, **extra})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", PATIENT_KEYS)
def test_patient_texts_are_plain_and_kind(catalog: Catalog, key: str, language: str) -> None:
    text = _render(catalog, key, language)
    assert not STIGMA.search(text), key
    if language == "en":
        assert flesch_kincaid_grade(text) <= 8.0, key
    else:
        assert fernandez_huerta(text) >= 60.0, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_private_reminders_never_name_the_medicine(catalog: Catalog, language: str) -> None:
    names = [catalog.render(f"meds.kinds.{kind.value}", language) for kind in MedicationKind]
    for key in ("meds.dose.ask", "meds.dose.again", "meds.supply.reminder"):
        for shot in (False, True):
            text = _render(catalog, key, language, medicine="", shot=shot).lower()
            assert not [n for n in names if n.lower() in text], key
            assert "naltrexone" not in text and "naltrexona" not in text
    # Shown when the patient chose so.
    shown = _render(catalog, "meds.dose.ask", language, medicine=names[0])
    assert names[0] in shown


@pytest.mark.parametrize("language", LANGUAGES)
def test_ran_out_and_missed_point_to_the_clinic_today(catalog: Catalog, language: str) -> None:
    for status in (DoseStatus.MISSED, DoseStatus.RAN_OUT):
        text = _render(catalog, f"meds.dose.answers.{status.value}", language, naltrexone=True)
        assert CLINIC["clinic_phone"] in text
        assert "Narcan" in text  # after naltrexone wears off, a smaller amount can cause an overdose


@pytest.mark.parametrize("language", LANGUAGES)
def test_ran_out_after_hours_says_when_and_who_answers(catalog: Catalog, language: str) -> None:
    monday = catalog.render("promise.weekdays.0", language)
    when = catalog.render("promise.when.weekday", language, weekday=monday, time="8:00")
    text = _render(catalog, "meds.dose.answers.ran_out", language, when=when)
    assert when in text and CLINIC["clinic_phone"] in text and CLINIC["after_hours_phone"] in text
    assert text != _render(catalog, "meds.dose.answers.ran_out", language)  # not the office-hours words
    assert not STIGMA.search(text)
    if language == "en":
        assert flesch_kincaid_grade(text) <= 8.0
    else:
        assert fernandez_huerta(text) >= 60.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_dose_replies_do_not_say_tomorrow(catalog: Catalog, language: str) -> None:
    """ "Taken" at 00:30 for a 21:00 dose, or a closed question tapped then: the next one is today."""
    tomorrow = catalog.render_with(CLINIC, "promise.when.tomorrow", language, time="").split()[0]
    for key in ("meds.dose.answers.taken", "meds.dose.closed"):
        assert tomorrow.lower() not in _render(catalog, key, language).lower(), key


@pytest.mark.parametrize(("language", "words"), [("en", "without a prescription"), ("es", "sin receta")])
def test_naloxone_where_to_get_it(catalog: Catalog, language: str, words: str) -> None:
    for answer in ("no", "unsure"):
        text = _render(catalog, f"naloxone.answers.{answer}", language)
        assert words in text and CLINIC["clinic_phone"] in text
