"""Scoring the questionnaires as their manuals do, on the shipped definitions (content/<lang>/measures/).

PHQ-9 and GAD-7 (the PHQ instruction manual's method, printed on the forms' "for office coding" line): count
the answers in each column, multiply by the column's value (0, 1, 2, 3) and add the columns; the total's band
by Kroenke 2001 (PHQ-9: 5, 10, 15, 20) and Spitzer 2006 (GAD-7: 5, 10, 15). BAM (its manual's scoring): each
answer 0-4, Use = items 4 + 5 + 6, Risk = 1 + 2 + 3 + 8 + 11 + 15, Protective = 9 + 10 + 12 + 13 + 14 + 16;
items 7A-7G and 17 are in no score.

The rules are the manuals'; the answer sets are made up for these tests. No worked example (one patient's
answers with the scores they give) was found to reproduce: the reachable text of the Pfizer "Instruction
Manual: Instructions for Patient Health Questionnaire (PHQ) and GAD-7 Measures" shows its contents page
and the forms' "for office coding" line only, and neither Cacciola et al. 2013 (J Subst Abuse Treat
44(3):256-263) nor the VA's BAM manual for SUD group treatment (DePhilippis et al., draft 2014-05-07)
gives one in what could be read. Add one here, with its page, if a clinician finds it.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.content.instruments import Instrument, InstrumentLibrary, load_instruments
from bot.core.config import ConfigError, load_settings, parse_measures
from bot.measures import scoring
from tests.harness import SHIPPED_CONTENT, load_content_once

PHQ9_ITEMS = [str(n) for n in range(1, 10)]
GAD7_ITEMS = [str(n) for n in range(1, 8)]


def _library() -> InstrumentLibrary:
    return load_content_once(SHIPPED_CONTENT).measures


def _definition(instrument_id: str, language: str = "en") -> Instrument:
    found = _library().instruments[language][instrument_id]
    return found


def _columns(items: list[str], counts: dict[int, int]) -> dict[str, int]:
    """Answers with `counts[value]` items in each column, in item order (as a patient might tick them)."""
    values = [value for value, count in sorted(counts.items()) for _ in range(count)]
    assert len(values) == len(items)
    return dict(zip(items, values, strict=True))


def _total(instrument: Instrument, answers: dict[str, int]) -> tuple[int, str]:
    score = instrument.scores[0]
    value = scoring.value_of(score, answers)
    assert value is not None
    found = scoring.band(score, value)
    assert found is not None
    return value, found.label


# ---- PHQ-9 -------------------------------------------------------------------------------------------------


def test_phq9_by_the_manuals_column_method() -> None:
    phq9 = _definition("phq9")
    # Several days x2, more than half the days x4, nearly every day x3: 0 + 2 + 8 + 9 = 19.
    answers = _columns(PHQ9_ITEMS, {0: 0, 1: 2, 2: 4, 3: 3})
    assert _total(phq9, answers) == (19, "moderately severe")
    # One more point on any item crosses into severe.
    assert _total(phq9, {**answers, "1": 2}) == (20, "severe")
    assert scoring.scores(phq9, answers) == {"total": 19}


@pytest.mark.parametrize(
    ("counts", "total", "band"),
    [
        ({0: 9}, 0, "none-minimal"),
        ({0: 5, 1: 4}, 4, "none-minimal"),
        ({0: 4, 1: 5}, 5, "mild"),
        ({0: 0, 1: 9}, 9, "mild"),
        ({1: 8, 2: 1}, 10, "moderate"),
        ({1: 4, 2: 5}, 14, "moderate"),
        ({1: 3, 2: 6}, 15, "moderately severe"),
        ({1: 8, 3: 1}, 11, "moderate"),
        ({3: 9}, 27, "severe"),
    ],
)
def test_phq9_bands_at_their_cut_points(counts: dict[int, int], total: int, band: str) -> None:
    assert _total(_definition("phq9"), _columns(PHQ9_ITEMS, counts)) == (total, band)


def test_phq9_difficulty_question_is_asked_only_after_a_problem_and_is_not_scored() -> None:
    phq9 = _definition("phq9")
    nothing = dict.fromkeys(PHQ9_ITEMS, 0)
    assert scoring.next_item(phq9, nothing) is None  # "if you checked off any problems"
    some = {**nothing, "4": 1}
    following = scoring.next_item(phq9, some)
    assert following is not None and following.id == "difficulty"
    assert scoring.scores(phq9, {**some, "difficulty": 3}) == {"total": 1}
    assert scoring.progress(phq9, {}, phq9.item("1")) == (1, 9)
    assert scoring.progress(phq9, some, following) == (10, 10)


def test_item_9_above_not_at_all_is_the_safety_answer() -> None:
    phq9 = _definition("phq9")
    nine = phq9.item("9")
    assert not scoring.safety_positive(phq9, nine, 0)
    assert all(scoring.safety_positive(phq9, nine, value) for value in (1, 2, 3))
    assert not any(scoring.safety_positive(phq9, phq9.item(i), 3) for i in PHQ9_ITEMS[:8])
    assert [i.id for i in phq9.items if i.safety] == ["9"]


def test_an_unfinished_questionnaire_has_no_score() -> None:
    phq9 = _definition("phq9")
    answers = dict.fromkeys(PHQ9_ITEMS[:8], 3)
    assert scoring.scores(phq9, answers) == {}
    assert scoring.value_of(phq9.scores[0], answers) is None


# ---- GAD-7 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "total", "band"),
    [
        ({0: 7}, 0, "minimal"),
        ({0: 3, 1: 4}, 4, "minimal"),
        ({0: 2, 1: 5}, 5, "mild"),
        ({1: 5, 2: 2}, 9, "mild"),
        ({1: 4, 2: 3}, 10, "moderate"),
        ({2: 7}, 14, "moderate"),
        ({2: 6, 3: 1}, 15, "severe"),
        ({3: 7}, 21, "severe"),
    ],
)
def test_gad7_by_the_column_method_and_its_bands(counts: dict[int, int], total: int, band: str) -> None:
    assert _total(_definition("gad7"), _columns(GAD7_ITEMS, counts)) == (total, band)


# ---- BAM ---------------------------------------------------------------------------------------------------


BAM_EXAMPLE = {
    # risk items
    "1": 2,  # physical health "Good"
    "2": 3,  # 9-15 nights of poor sleep
    "3": 1,  # 1-3 days upset
    "8": 2,  # cravings "Moderately"
    "11": 1,  # 1-3 days in risky situations
    "15": 0,  # arguments "Not at all"
    # use items
    "4": 2,  # 4-8 days with any alcohol
    "5": 1,  # 1-3 heavy drinking days
    "6": 1,  # 1-3 days of drug use: item 7 follows
    # item 7 (elaboration of 6: no score)
    "7a": 1,
    "7b": 0,
    "7c": 0,
    "7d": 0,
    "7e": 1,
    "7f": 0,
    "7g": 0,
    # protective items
    "9": 3,  # confidence "Considerably"
    "10": 2,  # 4-8 days of meetings
    "12": 1,  # spirituality "Slightly"
    "13": 4,  # 16-30 days at work
    "14": 4,  # enough income: "Yes" is worth 4
    "16": 3,  # 9-15 days with supportive people
    # item 17 (no score)
    "17": 4,
}


def test_bam_use_risk_and_protective_by_its_manual() -> None:
    bam = _definition("bam")
    use, risk, protective = 2 + 1 + 1, 2 + 3 + 1 + 2 + 1 + 0, 3 + 2 + 1 + 4 + 4 + 3
    assert scoring.scores(bam, BAM_EXAMPLE) == {"use": use, "risk": risk, "protective": protective}
    assert scoring.next_item(bam, BAM_EXAMPLE) is None
    # Item 7 and item 17 change no score.
    quiet = {**BAM_EXAMPLE, "7a": 4, "7e": 4, "17": 0}
    assert scoring.scores(bam, quiet) == scoring.scores(bam, BAM_EXAMPLE)
    # The ranges: each answer 0-4, so use 0-12 and risk and protective 0-24; "No" income is worth 0.
    assert [bam.range_of(score) for score in bam.scores] == [(0, 12), (0, 24), (0, 24)]
    assert [o.value for o in bam.options_of(bam.item("14"))] == [0, 4]
    assert [score.higher_is for score in bam.scores] == ["worse", "worse", "better"]


def test_bam_item_7_is_asked_only_after_drug_use() -> None:
    bam = _definition("bam")
    before_six = {key: value for key, value in BAM_EXAMPLE.items() if key in {"1", "2", "3", "4", "5"}}
    no_drugs = {**before_six, "6": 0}
    following = scoring.next_item(bam, no_drugs)
    assert following is not None and following.id == "8"
    with_drugs = {**before_six, "6": 2}
    following = scoring.next_item(bam, with_drugs)
    assert following is not None and following.id == "7a"
    assert scoring.progress(bam, no_drugs, bam.item("8")) == (7, 16)
    assert scoring.progress(bam, with_drugs, bam.item("7a")) == (7, 23)


# ---- flags, schedules, definitions -------------------------------------------------------------------------


def test_flags_for_a_high_score_or_a_rise_of_five() -> None:
    phq9, gad7, bam = _definition("phq9"), _definition("gad7"), _definition("bam")
    assert [f.kind for f in scoring.flags(phq9, {"total": 20}, None)] == ["high"]
    assert scoring.flags(phq9, {"total": 19}, None) == []
    assert scoring.flags(phq9, {"total": 19}, {"total": 14}) == [scoring.Flag("total", 19, "rise", 5)]
    assert scoring.flags(phq9, {"total": 18}, {"total": 14}) == []
    assert scoring.flags(phq9, {"total": 3}, {"total": 14}) == []  # better is not flagged
    assert [f.kind for f in scoring.flags(gad7, {"total": 15}, {"total": 14})] == ["high"]
    assert scoring.flags(gad7, {"total": 14}, {"total": 9}) == [scoring.Flag("total", 14, "rise", 5)]
    assert scoring.flags(bam, {"use": 12, "risk": 24, "protective": 0}, {"use": 0, "risk": 0}) == []


def test_what_is_due_today() -> None:
    every = {"phq9": 14, "gad7": 14, "bam": 30}
    order = ["phq9", "gad7", "bam"]
    today = date(2026, 12, 8)
    assert scoring.due(every, {}, today, order) == order  # at intake: all of them
    last = {"phq9": date(2026, 11, 24), "gad7": date(2026, 11, 25), "bam": date(2026, 11, 8)}
    assert scoring.due(every, last, today, order) == ["phq9", "bam"]
    assert scoring.due({"gad7": 7}, last, today, order) == ["gad7"]


def test_the_measures_setting() -> None:
    assert parse_measures("phq9:14, gad7:14,bam:30") == (("phq9", 14), ("gad7", 14), ("bam", 30))
    assert parse_measures("off") == ()
    for bad in ("phq9", "phq9:0", "phq9:400", "PHQ-9:14", "phq9:14,phq9:7"):
        with pytest.raises(ValueError):
            parse_measures(bad)
    with pytest.raises(ConfigError, match="MEASURES"):
        load_settings(_env_file=None, MEASURES="phq9:forever")


def test_the_spanish_phq9_and_gad7_are_official_and_the_bam_is_not() -> None:
    library = _library()
    for instrument_id in ("phq9", "gad7", "bam"):
        english, spanish = library.instruments["en"][instrument_id], library.instruments["es"][instrument_id]
        assert spanish.structure() == english.structure()
    assert library.instruments["es"]["phq9"].official and library.instruments["es"]["gad7"].official
    assert not library.instruments["es"]["bam"].official
    assert library.by_name()["phq9"] == "phq9" and library.by_name()["gad7"] == "gad7"


def test_a_translation_that_would_score_differently_is_refused(tmp_path: Path) -> None:
    for language in ("en", "es"):
        (tmp_path / language / "measures").mkdir(parents=True)
        shutil.copy(SHIPPED_CONTENT / language / "measures" / "phq9.yaml", tmp_path / language / "measures")
    spanish = tmp_path / "es" / "measures" / "phq9.yaml"
    changed = spanish.read_text(encoding="utf-8").replace("{min: 20,", "{min: 21,")
    spanish.write_text(changed, encoding="utf-8")
    problems: list[str] = []
    library = load_instruments(tmp_path, problems, [])
    assert len(problems) == 1 and "es/measures/phq9.yaml" in problems[0] and "differ" in problems[0]
    assert "phq9" not in library.instruments["es"]
    assert library.get("phq9", "es") is library.reference("phq9")  # asked in English instead


def test_a_definition_with_an_impossible_score_is_refused(tmp_path: Path) -> None:
    (tmp_path / "en" / "measures").mkdir(parents=True)
    broken = (SHIPPED_CONTENT / "en" / "measures" / "gad7.yaml").read_text(encoding="utf-8")
    broken = broken.replace('items: ["1", "2", "3", "4", "5", "6", "7"]', 'items: ["1", "2", "3", "8"]')
    (tmp_path / "en" / "measures" / "gad7.yaml").write_text(broken, encoding="utf-8")
    problems: list[str] = []
    load_instruments(tmp_path, problems, [])
    assert len(problems) == 1 and "no item 8" in problems[0] and "gad7.yaml:" in problems[0]
