"""The screener's and the new crisis replies' wording as content renders it (issue 18, items 2, 3 and 11):
Columbia's self-report wording with question 6's full examples, the Spanish question 5 in the present tense,
the "since last contact" version, a permission question that is not a Yes/No question, the domestic
violence hotline, and a 6th grade reading level for the new texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import Catalog, load_catalog
from bot.risk.cssrs import WORDING, Item, Period, Question
from tests.harness import TEST_CLINIC_VALUES as CLINIC
from tests.readability import fernandez_huerta, flesch_kincaid_grade

CONTENT = Path(__file__).resolve().parent.parent / "content"
LANGUAGES = ("en", "es")
# Question 6's examples as Columbia words them, the ones the old text left out included.
EXAMPLES = {
    "en": (
        "collected pills",
        "obtained a gun",
        "gave away valuables",
        "wrote a will or suicide note",
        "took out pills but didn't swallow any",
        "held a gun but changed your mind or it was grabbed from your hand",
        "went to the roof but didn't jump",
        "actually took pills",
        "tried to shoot yourself",
        "cut yourself",
        "tried to hang yourself",
    ),
    "es": (
        "juntó pastillas",
        "consiguió un arma",
        "regaló cosas de valor",
        "testamento o una carta de suicidio",
        "sacó pastillas pero no se las tragó",
        "cambió de opinión o alguien se la quitó de las manos",
        "subió al techo pero no saltó",
        "tomó pastillas",
        "trató de dispararse",
        "se cortó",
        "trató de ahorcarse",
    ),
}
NEW_TEXTS = (
    "cssrs.intro_alerted",
    "cssrs.intro_ambiguous",
    "cssrs.declined",
    "cssrs.result_referral",
    "crisis.danger",
    "crisis.call_ok_reply",
    "crisis.call_not_ok_reply",
    "crisis.harm_others",
    "deleteme.deferred",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONTENT)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("question", [Question.BEHAVIOR, Question.BEHAVIOR_SINCE])
def test_question_6_carries_every_example(catalog: Catalog, language: str, question: Question) -> None:
    text = catalog.render(f"cssrs.questions.{question}", language)
    for example in EXAMPLES[language]:
        assert example in text, example


def test_the_english_questions_are_columbias_self_report_wording(catalog: Catalog) -> None:
    def q(question: Question) -> str:
        return catalog.render(f"cssrs.questions.{question}", "en")

    assert q(Question.WISH_DEAD).endswith(
        "wished you were dead or wished you could go to sleep and not wake up?"
    )
    assert q(Question.THOUGHTS).endswith("have you actually had any thoughts of killing yourself?")
    assert q(Question.METHOD) == "Have you thought about how you might do this?"
    assert "as opposed to you have the thoughts but you definitely would not act on them" in q(
        Question.INTENT
    )
    assert q(Question.PLAN).endswith("Do you intend to carry out this plan?")
    assert q(Question.BEHAVIOR_RECENT) == "Was this within the past 3 months?"


def test_the_spanish_question_5_is_in_the_present_tense_like_the_english(catalog: Catalog) -> None:
    plan = catalog.render("cssrs.questions.plan", "es")
    assert plan.endswith("¿Tiene intenciones de llevar a cabo este plan?")
    assert "Tenía" not in plan


@pytest.mark.parametrize("language", LANGUAGES)
def test_since_last_contact_asks_about_the_time_since_the_last_screen(
    catalog: Catalog, language: str
) -> None:
    since = {"en": "Since you last answered these questions", "es": "Desde la última vez que respondió"}[
        language
    ]
    past = {"en": "In the past month", "es": "En el último mes"}[language]
    for item in (Item.WISH_DEAD, Item.THOUGHTS):
        assert catalog.render(f"cssrs.questions.{WORDING[Period.SINCE_LAST][item]}", language).startswith(
            since
        )
        assert catalog.render(f"cssrs.questions.{WORDING[Period.PAST_MONTH][item]}", language).startswith(
            past
        )
    behaviour = catalog.render("cssrs.questions.behavior_since", language)
    assert behaviour.startswith(since)
    assert {"en": "ever", "es": "Alguna vez"}[language] not in behaviour.split("?")[0]
    for item in (Item.METHOD, Item.INTENT, Item.PLAN):  # they follow question 2's time frame
        same = catalog.render(f"cssrs.questions.{WORDING[Period.PAST_MONTH][item]}", language)
        assert catalog.render(f"cssrs.questions.{WORDING[Period.SINCE_LAST][item]}", language) == same


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("trigger", ["alerted", "ambiguous"])
def test_the_permission_question_is_not_a_yes_or_no_question(
    catalog: Catalog, language: str, trigger: str
) -> None:
    text = catalog.render(f"cssrs.intro_{trigger}", language)
    assert catalog.render("cssrs.yes_button", language) not in text
    assert catalog.render("cssrs.questions.wish_dead", language) not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_danger_at_home_names_the_domestic_violence_hotline(catalog: Catalog, language: str) -> None:
    text = catalog.render("crisis.danger", language, promise="", ask_call=True)
    for contact in ("911", "1-800-799-7233", "1-800-787-3224", "START", "88788", "thehotline.org"):
        assert contact in text
    assert "988" not in text and "741741" not in text  # not the suicide crisis list


@pytest.mark.parametrize("key", NEW_TEXTS)
def test_the_new_texts_read_at_about_a_6th_grade_level(catalog: Catalog, key: str) -> None:
    for language, enough in (("en", lambda text: flesch_kincaid_grade(text) <= 6.0), ("es", _easy_spanish)):
        # with the promise in office hours (the promises alone: tests/test_promise_content.py)
        promise = catalog.render_with(CLINIC, "promise.today", language)
        assert enough(catalog.render(key, language, promise=promise, ask_call=True))


def _easy_spanish(text: str) -> bool:
    return fernandez_huerta(text) >= 70.0
