"""The crisis replies as content renders them (issue 18, items 5 and 17): the overdose reply starts with the
one action that matters, every crisis line's number or keyword is there in both languages and carries its
source, SAMHSA's treatment-referral line stays out of the "reach out now" list, and the new texts read at
about a 6th grade level."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.content import Catalog, load_catalog
from tests.harness import TEST_CLINIC_VALUES as CLINIC
from tests.readability import fernandez_huerta, flesch_kincaid_grade

CONTENT = Path(__file__).resolve().parent.parent / "content"
LANGUAGES = ("en", "es")
LINES = ("lifeline", "veterans", "text_line", "deaf", "emergency")
# What a person must be able to dial or type, per language (numbers and keywords, not wording).
CRISIS_CONTACTS = {
    "en": ("988", "988lifeline.org", "838255", "VeteransCrisisLine.net/Chat", "HOME", "741741", "711", "911"),
    "es": (
        "988",
        "AYUDA",
        "988lifeline.org/es",
        "838255",
        "VeteransCrisisLine.net/Chat",
        "741741",
        "442-AYUDAME",
        "711",
        "911",
    ),
}
SAMHSA = ("1-800-662-4357", "1-800-487-4889")  # the helpline and its TTY
POISON_HELP = "1-800-222-1222"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONTENT)


def _imminent(catalog: Catalog, language: str, *, overdose: bool) -> str:
    return catalog.render("crisis.imminent", language, overdose=overdose, plan_contacts=None, promise="")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_overdose_reply_starts_with_the_call_to_911(catalog: Catalog, language: str) -> None:
    reply = _imminent(catalog, language, overdose=True)
    action = catalog.render("crisis.overdose_action", language)
    assert "911" in action
    assert reply.startswith(action + "\n")
    # Then the steps, before the kind words and the list of lines.
    steps = catalog.render("crisis.overdose", language)
    assert reply.startswith(steps)
    for contact in (POISON_HELP, *CRISIS_CONTACTS[language]):
        assert contact in reply, contact


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_overdose_steps_in_order(catalog: Catalog, language: str) -> None:
    """911, naloxone (one spray; a second in the other nostril after 2 to 3 minutes), rescue breaths,
    recovery position, stay, Poison Help, Good Samaritan: each on its own line, in that order."""
    steps = catalog.render("crisis.overdose", language).splitlines()
    markers = {
        "en": [
            "911",
            "naloxone",
            "rescue breaths",
            "on their side",
            "Stay with them",
            POISON_HELP,
            "Samaritan",
        ],
        "es": ["911", "naloxona", "respiración de rescate", "de lado", "Quédate", POISON_HELP, "Samaritano"],
    }[language]
    positions = [next(i for i, line in enumerate(steps) if marker in line) for marker in markers]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    naloxone = steps[positions[1]]
    assert "2" in naloxone and "3" in naloxone  # minutes before the second dose


@pytest.mark.parametrize("language", LANGUAGES)
def test_other_imminent_replies_list_every_crisis_line_but_not_the_treatment_line(
    catalog: Catalog, language: str
) -> None:
    reply = _imminent(catalog, language, overdose=False)
    assert not reply.startswith(catalog.render("crisis.overdose_action", language))
    assert POISON_HELP not in reply
    for key in LINES:
        assert catalog.render(f"crisis.lines.{key}", language) in reply
    for contact in CRISIS_CONTACTS[language]:
        assert contact in reply, contact
    for number in SAMHSA:
        assert number not in reply
    # The screener's urgent result and the safety plan list the same crisis lines, also without SAMHSA.
    assert catalog.render("crisis.resources", language) in catalog.render(
        "cssrs.result_urgent", language, plan_contacts=None, promise=""
    )
    for key in ("crisis.resources", "cssrs.result_urgent"):
        rendered = catalog.render(key, language, plan_contacts=None, promise="")
        assert not [n for n in SAMHSA if n in rendered]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_treatment_line_with_its_tty_stays_where_treatment_is_the_point(
    catalog: Catalog, language: str
) -> None:
    treatment = catalog.render("crisis.lines.treatment", language)
    assert all(number in treatment for number in SAMHSA)
    assert treatment in catalog.render("deleteme.done", language)
    assert treatment in catalog.render_with(CLINIC, "discharge.goodbye", language)


def test_crisis_text_line_in_spanish_is_ayuda_not_hola(catalog: Catalog) -> None:
    line = catalog.render("crisis.lines.text_line", "es")
    assert "AYUDA" in line and "741741" in line and "442-AYUDAME" in line
    assert "HOLA" not in line.upper().replace("AYUDAME", "")


def _comment_above(lines: list[str], line_number: int) -> str:
    """The comment lines directly above a key (1-based line of the key)."""
    found: list[str] = []
    index = line_number - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        found.insert(0, lines[index].strip())
        index -= 1
    return " ".join(found)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_number_and_keyword_in_the_crisis_file_carries_its_source_and_date(language: str) -> None:
    path = CONTENT / language / "crisis.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    crisis = next(v for k, v in yaml.compose(path.read_text(encoding="utf-8")).value if k.value == "crisis")
    assert isinstance(crisis, yaml.MappingNode)
    contact = re.compile(r"\b\d{3}\b|\d{3}-\d{4}|\b[A-Z]{4,}\b|\.org|\.net")  # numbers, keywords, addresses
    checked = re.compile(r"(Checked|Verificado el) 20\d\d-\d\d-\d\d")
    texts: list[tuple[str, yaml.Node]] = []
    for key, value in crisis.value:
        if isinstance(value, yaml.MappingNode):
            texts.extend((f"{key.value}.{k.value}", v) for k, v in value.value)
        else:
            texts.append((key.value, value))
    with_contacts = [(key, node) for key, node in texts if contact.search(str(node.value).replace("{{", ""))]
    assert {"lines.lifeline", "lines.text_line", "lines.treatment", "overdose", "high"} <= {
        k for k, _ in with_contacts
    }
    for key, node in with_contacts:
        key_line = node.start_mark.line + 1  # a value starts on its key's line (a block at its | or >)
        comment = _comment_above(lines, key_line)
        assert checked.search(comment), f"{path}: {key}: no 'checked' date in the comment above it"
        assert re.search(r"source|fuente", comment, re.IGNORECASE), f"{path}: {key}: no source above it"


NEW_TEXTS = ("crisis.overdose", "crisis.resources", "crisis.lines.treatment")


@pytest.mark.parametrize("key", NEW_TEXTS)
def test_the_new_texts_read_at_about_a_6th_grade_level(catalog: Catalog, key: str) -> None:
    assert flesch_kincaid_grade(catalog.render(key, "en")) <= 6.0
    assert fernandez_huerta(catalog.render(key, "es")) >= 70.0  # "fairly easy" or easier


def test_the_readability_measure_tells_hard_from_easy() -> None:
    easy = "Call 911 now. Stay with them. Help is on the way."
    hard = (
        "Administration of intranasal naloxone hydrochloride necessitates subsequent continuous observation "
        "because pharmacological antagonism frequently terminates prior to opioid elimination."
    )
    assert flesch_kincaid_grade(easy) < 3 < 12 < flesch_kincaid_grade(hard)
    assert fernandez_huerta("Llama al 911 ahora. Quédate con la persona.") > 80
    assert (
        fernandez_huerta(
            "La administración intranasal de naloxona requiere observación continuada posterior, dado que "
            "el antagonismo farmacológico frecuentemente finaliza anteriormente a la eliminación opioide."
        )
        < 50
    )
