"""The lexicon's phrase syntax, its loading from content/<lang>/risk/lexicon.yaml, and the errors an editor
sees."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content_check.check import Report, check_content
from bot.risk.detector import Detector
from bot.risk.levels import Category, RiskLevel
from bot.risk.lexicon import Lexicon, load_lexicon

CONTENT = Path(__file__).resolve().parent.parent / "content"


def _write(root: Path, text: str, language: str = "en") -> Path:
    path = root / language / "risk" / "lexicon.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _load(root: Path) -> tuple[Lexicon | None, list[str]]:
    problems: list[str] = []
    lexicon = load_lexicon(root, problems)
    return lexicon, problems


def _lexicon(
    root: Path,
    patterns: list[str],
    *,
    classes: dict[str, list[str]] | None = None,
    normalize: dict[str, Any] | None = None,
) -> Lexicon:
    data: dict[str, Any] = {
        "reviewed": "test",
        "classes": classes or {},
        "entries": [{"category": "suicide", "level": "high", "patterns": patterns}],
    }
    if normalize:
        data["normalize"] = normalize
    _write(root, yaml.safe_dump(data, allow_unicode=True))
    lexicon, problems = _load(root)
    assert problems == []
    assert lexicon is not None
    return lexicon


def _found(lexicon: Lexicon, text: str) -> list[str]:
    """The lexicon phrases a message matches."""
    return [m.pattern for m in Detector(lexicon).screen(text).matches]


# ---- the phrase syntax -------------------------------------------------------------------------------------


SYNTAX = [
    # (phrase, messages it finds, messages it does not)
    ("kill myself", ["kill myself", "I want to KILL MYSELF"], ["kill", "kill yourself", "skill myself"]),
    ("kill|hurt myself", ["kill myself", "hurt myself"], ["love myself", "kill hurt"]),
    ("kill|hurt|harm myself", ["harm myself"], ["help myself"]),
    ("(end it|finish) now", ["end it now", "finish now"], ["end now", "it now", "finish it now"]),
    ("(end (it|this)|quit) now", ["end this now", "end it now", "quit now"], ["end that now"]),
    ("take my (own)? life", ["take my life", "take my own life"], ["take my whole life", "take own life"]),
    ("feel really? sad", ["feel sad", "feel really sad", "feel reallly sad"], ["feel very sad"]),
    ("suicid*", ["suicide", "suicidal", "suicidio", "SUICIDAL thoughts"], ["suit", "suici"]),
    ("over dos*", ["over dose", "over dosed"], ["overdose", "over do"]),
    ("took # pills", ["took 3 pills", "took 20mg pills", "took 100 pills"], ["took some pills"]),
    (
        "took #many pills",
        ["took 5 pills", "took 12 pills", "took 100 pills"],
        ["took 4 pills", "took 05 pills"],
    ),
    ("in #year", ["in 1995", "in 2019", "back in 2020"], ["in 1949", "in 2030", "in 19", "in 12345"]),
    ("took ~ pills", ["took the pills", "took 30 pills"], ["took pills", "took all the pills"]),
    (
        "want ... die",
        ["want die", "want to die", "want to just die", "want to just go die"],
        ["want to just go and die", "die want"],
    ),
    (
        "want ...8 die",
        ["want die", "want to go somewhere far away and just lie die"],  # 8 words between
        ["want to go somewhere far away and just lie down die"],  # 9
    ),
    ("^ goodbye $", ["goodbye", "goodbye.", "ok. goodbye", "Goodbye!!", "fine, goodbye"], ["say goodbye"]),
    ("^ i am done", ["i am done with it", "ok. i am done"], ["now i am done"]),
    ("end it $", ["i want to end it", "end it. bye"], ["end it all"]),
]


@pytest.mark.parametrize(("phrase", "finds", "misses"), SYNTAX, ids=[s[0] for s in SYNTAX])
def test_phrase_syntax(tmp_path: Path, phrase: str, finds: list[str], misses: list[str]) -> None:
    lexicon = _lexicon(tmp_path, [phrase])
    for text in finds:
        assert _found(lexicon, text) == [phrase], text
    for text in misses:
        assert _found(lexicon, text) == [], text


def test_goodbye_inside_a_sentence_is_not_a_whole_sentence(tmp_path: Path) -> None:
    lexicon = _lexicon(tmp_path, ["^ goodbye $"])
    assert _found(lexicon, "goodbye everyone") == []
    assert _found(lexicon, "i said goodbye, then left") == []  # the end of a clause, not its start


def test_word_classes(tmp_path: Path) -> None:
    lexicon = _lexicon(
        tmp_path,
        ["took <drug>"],
        classes={"drug": ["heroin", "crystal meth", "<opioid>"], "opioid": ["fentanyl", "oxy|oxys"]},
    )
    for text in ("took heroin", "took crystal meth", "took fentanyl", "took oxys"):
        assert _found(lexicon, text) == ["took <drug>"], text
    for text in ("took aspirin", "took crystal", "took meth"):
        assert _found(lexicon, text) == [], text


def test_a_class_with_a_number_member(tmp_path: Path) -> None:
    classes = {"count": ["#many", "a handful of", "all my"]}
    lexicon = _lexicon(tmp_path, ["took <count> pills"], classes=classes)
    for text in ("took 30 pills", "took a handful of pills", "took all my pills"):
        assert _found(lexicon, text) == ["took <count> pills"], text
    assert _found(lexicon, "took 2 pills") == []


def test_phrases_are_normalised_like_messages(tmp_path: Path) -> None:
    lexicon = _lexicon(tmp_path, ["i don't want to live"], normalize={"rewrites": {"dont": "do not"}})
    spellings = [
        "i don't want to live",
        "i dont want to live",
        "I DO NOT WANT TO LIVE",
        "i DON’T want to live",
    ]
    for text in spellings:
        assert _found(lexicon, text) == ["i don't want to live"], text


def test_phrases_match_emoji_and_leetspeak(tmp_path: Path) -> None:
    lexicon = _lexicon(tmp_path, ["gun in my lap"], normalize={"emoji": {"🔫": "gun"}})
    assert _found(lexicon, "🔫 in my lap") == ["gun in my lap"]
    assert _found(lexicon, "GUNNN in my l@p") == ["gun in my lap"]


def test_a_phrase_does_not_match_across_sentences_without_a_gap(tmp_path: Path) -> None:
    lexicon = _lexicon(tmp_path, ["kill myself"])
    assert _found(lexicon, "kill. myself") == []
    assert _found(lexicon, "kill, myself") == []


def test_a_gap_does_not_reach_into_the_next_sentence(tmp_path: Path) -> None:
    lexicon = _lexicon(tmp_path, ["want ... die", "took ~ pills"])
    assert _found(lexicon, "i want pizza. die hard is on tv") == []
    assert _found(lexicon, "what i took. pills are in the kitchen") == []


def test_languages_are_merged(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "reviewed: t\nclasses:\n  drug: [heroin]\nentries:\n  - category: relapse\n"
        "    level: high\n    patterns: [used <drug>]\n",
    )
    _write(
        tmp_path,
        "reviewed: t\nclasses:\n  drug: [perico]\nentries:\n  - category: relapse\n"
        "    level: high\n    patterns: [recai]\n",
        language="es",
    )
    lexicon, problems = _load(tmp_path)
    assert problems == [] and lexicon is not None
    assert _found(lexicon, "used heroin") == ["used <drug>"]
    assert _found(lexicon, "used perico") == ["used <drug>"]  # a class gathers members from every language
    assert _found(lexicon, "recaí") == ["recai"]
    assert [e.entry.category for e in lexicon.entries] == [Category.RELAPSE, Category.RELAPSE]


def test_entry_fields_are_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "reviewed: t\n"
        "safe_examples: [all good]\n"
        "entries:\n"
        "  - category: hopeless\n"
        "    level: Moderate\n"
        "    follow_up: cssrs\n"
        "    patterns: [no way out]\n"
        "    examples: [there is no way out]\n",
    )
    lexicon, problems = _load(tmp_path)
    assert problems == [] and lexicon is not None
    entry = lexicon.entries[0].entry
    assert entry.level is RiskLevel.MODERATE and entry.follow_up == "cssrs"
    assert [(text, where.rsplit(":", 1)[1]) for text, where, _ in lexicon.examples] == [
        ("there is no way out", "8")
    ]
    assert [(text, where.rsplit(":", 1)[1]) for text, where in lexicon.safe_examples] == [("all good", "2")]


# ---- errors, as path:line: message -------------------------------------------------------------------------


ENTRY = "reviewed: t\nentries:\n  - category: {category}\n    level: {level}\n    patterns:\n{patterns}"


def _entry(patterns: list[str], category: str = "suicide", level: str = "high") -> str:
    return ENTRY.format(category=category, level=level, patterns="".join(f"      - {p}\n" for p in patterns))


def _problems(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = _write(tmp_path, text)
    lexicon, problems = _load(tmp_path)
    assert lexicon is None
    return path, problems


def test_unknown_class(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself", "took <drug>"]))
    assert problems == [f"{path}:7: 'took <drug>': unknown word class <drug>"]


def test_a_class_that_refers_to_itself(tmp_path: Path) -> None:
    text = "reviewed: t\nclasses:\n  a: [x, '<a>']\n" + _entry(["took <a>"]).removeprefix("reviewed: t\n")
    path, problems = _problems(tmp_path, text)
    assert problems == [f"{path}:8: 'took <a>': word class <a> refers to itself"]


def test_bad_level(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself"], level="severe"))
    assert problems[0] == (
        f"{path}:4: entries.0.level: Value error, level must be one of imminent, high, moderate"
    )


def test_level_none_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself"], level="none"))
    assert problems and problems[0].startswith(f"{path}:4: entries.0.level:")


def test_unknown_category(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["bet it all"], category="gambling"))
    assert problems[0].startswith(f"{path}:3: entries.0.category: Input should be 'suicide', ")


def test_unknown_field(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself"]) + "    colour: red\n")
    assert problems[0] == f"{path}:7: entries.0.colour: Extra inputs are not permitted"


def test_missing_reviewed(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself"]).removeprefix("reviewed: t\n"))
    assert problems[0] == f"{path}:1: reviewed: Field required"


def test_an_entry_needs_a_pattern(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry([]).rstrip("\n") + " []\n")
    assert problems[0].startswith(f"{path}:5: entries.0.patterns: ")


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("... die", "a phrase cannot start or end with '...'"),
        ("...8 die", "a phrase cannot start or end with '...'"),
        ("die ...", "a phrase cannot start or end with '...'"),
        ("really? die", "start with an optional word"),
        ("(end it|finish now", "'(' without its ')'"),
        ("end it ) now", "')' without its '('"),
        ("end it) now", "put a space between a word and a group"),
        ("end(it|this)", "put a space between a word and a group"),
        ("(end it|) now", "empty alternative"),
        ("ab*", "a prefix needs at least 3 letters before '*'"),
        ("kill.myself", "stray syntax character"),
        ("kill, myself", "punctuation is not part of a phrase"),
        ("'!!!'", "punctuation is not part of a phrase"),
        ("'^ $'", "empty phrase"),
    ],
)
def test_bad_phrase(tmp_path: Path, phrase: str, message: str) -> None:
    path, problems = _problems(tmp_path, _entry(["kill myself", phrase]))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:7: "), problems
    assert message in problems[0]


def test_duplicate_phrase(tmp_path: Path) -> None:
    text = _entry(["kill myself"]) + "  - category: self_harm\n    level: high\n    patterns:\n"
    text += "      - cut myself\n      - KILL   myself\n"
    path, problems = _problems(tmp_path, text)
    assert problems == [f"{path}:11: 'KILL   myself' repeats {path}:6"]


def test_duplicate_phrase_across_languages(tmp_path: Path) -> None:
    english = _write(tmp_path, _entry(["kill myself"]))
    spanish = _write(tmp_path, _entry(["matarme", "KILL MYSELF"]), language="es")
    lexicon, problems = _load(tmp_path)
    assert lexicon is None
    assert problems == [f"{spanish}:7: 'KILL MYSELF' repeats {english}:6"]


def test_invalid_yaml(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, "reviewed: t\nentries:\n  - category: suicide\n    level: [high\n")
    assert problems[0].startswith(f"{path}:5: not valid YAML: ")


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, _entry(["took <drug>", "... die", "kill myself", "kill myself"]))
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:6", f"{path}:7", f"{path}:9"]


def test_no_lexicon_at_all(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    lexicon, problems = _load(tmp_path)
    assert lexicon is None
    assert problems == [f"{tmp_path}: no risk lexicon (expected risk/lexicon.yaml in a language folder)"]


# ---- content check -----------------------------------------------------------------------------------------


def test_the_shipped_content_passes(shipped_report: Report) -> None:
    assert shipped_report.errors == []
    assert shipped_report.risk is not None


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def _edit_lexicon(root: Path, change: Any, language: str = "en") -> Path:
    """Change a lexicon of a content copy as data (robust to edits of the shipped file)."""
    path = root / language / "risk" / "lexicon.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_an_example_that_is_not_found_fails_the_check(content: Path) -> None:
    def add(data: dict[str, Any]) -> None:
        data["entries"].append(
            {
                "category": "craving",
                "level": "moderate",
                "patterns": ["purple elephants"],
                "examples": ["purple elephants everywhere", "green giraffes everywhere"],
            }
        )

    path = _edit_lexicon(content, add)
    report = check_content(content)
    assert report.risk is None
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:")
    assert "example 'green giraffes everywhere' is not found as craving/moderate" in report.errors[0]


def test_a_safe_example_flagged_high_fails_the_check(content: Path) -> None:
    path = _edit_lexicon(content, lambda data: data["safe_examples"].append("i relapsed last night"))
    report = check_content(content)
    assert report.risk is None
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:")
    assert "safe example 'i relapsed last night' is flagged high" in report.errors[0]


def _break_spanish(data: dict[str, Any]) -> None:
    data["entries"].append({"category": "craving", "level": "urgent", "patterns": ["ganas"]})


def test_a_broken_lexicon_fails_the_check(content: Path) -> None:
    path = _edit_lexicon(content, _break_spanish, language="es")
    report = check_content(content)
    assert any(e.startswith(f"{path}:") and ".level: " in e for e in report.errors), report.errors


def test_a_broken_lexicon_gives_no_detector(content: Path) -> None:
    _edit_lexicon(content, _break_spanish, language="es")
    lexicon, problems = _load(content)
    assert problems
    assert lexicon is None
    assert check_content(content).risk is None
