"""The model beside the rules: its scoring matches scikit-learn's, it only ever adds a question, and content
check and `risk train` keep it in step with the labelled examples it was trained on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.content_check.check import Report, check_content
from bot.risk import Category, Detector, FollowUp, RiskLevel
from bot.risk.classifier import MODEL_FILE, Classifier, features, fingerprint, load_examples
from bot.risk.labelled import Labelled
from bot.risk.lexicon import Lexicon
from bot.risk.training import train
from tests.harness import CommandLine

CONTENT = Path(__file__).resolve().parent.parent / "content"


@pytest.fixture(scope="module")
def lexicon(shipped_report: Report) -> Lexicon:
    assert shipped_report.risk is not None, shipped_report.errors
    return shipped_report.risk.lexicon


@pytest.fixture(scope="module")
def examples() -> list[Labelled]:
    problems: list[str] = []
    found = load_examples(CONTENT, problems)
    assert not problems
    return found


def _model(weights: dict[str, float], threshold: float = 0.5, intercept: float = -3.0) -> Classifier:
    return Classifier({f: (1.0, w) for f, w in weights.items()}, intercept, threshold, "-", 0)


def test_features_are_words_pairs_and_letter_groups() -> None:
    found = features([["i", "od"], ["ok"]])
    assert {"w:i", "w:od", "b:i od", "w:ok"} <= set(found)
    assert "b:od ok" not in found  # pairs stay inside a clause
    assert {" o", "od", "d ", " od", "od ", " od "} <= set(found)
    assert all(len(f) <= 5 for f in found if not f.startswith(("w:", "b:")))


def test_scores_as_scikit_learn_does(lexicon: Lexicon, examples: list[Labelled]) -> None:
    """The weights the bot reads give the probabilities scikit-learn gave when it was fitted."""
    # Imported here, as bot.risk.training does: scikit-learn takes a second to import, in every test process.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    sample = examples[::4]
    model = train(sample, lexicon.normalizer, threshold=0.6, strength=4.0, min_messages=2)
    vectorizer = TfidfVectorizer(
        analyzer=lambda text: features(lexicon.normalizer.clauses(text)), sublinear_tf=True, min_df=2
    )
    fitted = LogisticRegression(C=4.0, class_weight="balanced", max_iter=5000)
    matrix = vectorizer.fit_transform([e.text for e in sample])
    fitted.fit(matrix, [e.level >= RiskLevel.HIGH for e in sample])
    unseen = [e.text for e in examples[1::40]] + ["", "🙂", "a brand new sentence about zebras"]
    expected = fitted.predict_proba(vectorizer.transform(unseen))[:, 1]
    reloaded = Classifier.from_json(model.to_json())
    for text, probability in zip(unseen, expected, strict=True):
        clauses = lexicon.normalizer.clauses(text)
        assert model.probability(clauses) == pytest.approx(probability, abs=1e-9)
        assert reloaded.probability(clauses) == pytest.approx(probability, abs=1e-4)
    assert model.fingerprint == fingerprint(reversed(sample))  # order does not matter
    assert model.examples == len(sample)


def test_the_model_only_adds_a_question(lexicon: Lexicon) -> None:
    model = _model({"w:vanish": 5.0, "w:forever": 5.0, "w:kil": 5.0})
    detector = Detector(lexicon, model)
    asked = detector.screen("i think i will just vanish forever tbh")
    assert asked.level is RiskLevel.NONE and asked.categories == ()
    assert asked.follow_up is FollowUp.SAFETY_CHECK
    assert asked.model is not None and asked.model >= 0.5
    assert asked.matched[-1].startswith("model: 0.")
    assert asked.rules_only().follow_up is None and asked.rules_only().model is None
    # without the model, the same message is left alone
    assert Detector(lexicon).screen("i think i will just vanish forever tbh").follow_up is None


@pytest.mark.parametrize(
    "text",
    [
        "vanish forever",  # too short to guess from
        "I have no plan to vanish forever or to kill myself",  # the rules read the words as negated
        "I want to kill myself, vanish forever",  # the rules found it: theirs is the answer
    ],
)
def test_the_model_stays_out(lexicon: Lexicon, text: str) -> None:
    model = _model({"w:vanish": 5.0, "w:forever": 5.0, "w:kil": 5.0})
    with_model = Detector(lexicon, model).screen(text)
    rules = Detector(lexicon).screen(text)
    assert with_model.model is None
    assert (with_model.level, with_model.follow_up) == (rules.level, rules.follow_up)


def test_a_question_does_not_survive_as_question(lexicon: Lexicon) -> None:
    """In a safety plan's steps the model's guess is dropped; the rules' own question is kept."""
    model = _model({"w:vanish": 5.0, "w:forever": 5.0})
    screening = Detector(lexicon, model).screen("when i start thinking i could vanish forever")
    assert screening.model is not None
    assert screening.rules_only().as_question().follow_up is None
    imminent = Detector(lexicon, model).screen("i am going to kill myself tonight")
    assert imminent.level is RiskLevel.IMMINENT and imminent.model is None
    assert imminent.as_question().follow_up is FollowUp.SAFETY_CHECK
    assert Category.SUICIDE in imminent.as_question().categories


def test_the_shipped_model_is_current_and_asks_where_the_rules_are_silent(shipped_report: Report) -> None:
    report = shipped_report
    assert report.risk is not None and report.risk.classifier is not None, report.errors
    assert not [w for w in report.warnings if MODEL_FILE in w]
    screening = report.risk.screen("i keep thinking everyone would move on fine if i just vanished")
    assert screening.level is RiskLevel.NONE and screening.follow_up is FollowUp.SAFETY_CHECK


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def test_content_check_says_when_the_model_is_out_of_date(content: Path) -> None:
    examples = content / "en" / "risk" / "examples.tsv"
    with examples.open("a", encoding="utf-8") as handle:
        handle.write("high\trelapse\tgot a bag from my old connect after work\n")
    report = check_content(content)
    assert not report.errors
    assert any(MODEL_FILE in w and "risk train" in w for w in report.warnings), report.warnings
    assert report.risk is not None and report.risk.classifier is not None  # still used meanwhile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=99), "not a risk model of format 1"),
        (lambda d: d.update(threshold=1.5), "threshold 1.5 must be between 0 and 1"),
        (lambda d: d.pop("features"), "'features'"),
    ],
)
def test_a_broken_model_is_an_error(content: Path, change: object, message: str) -> None:
    path = content / MODEL_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data), encoding="utf-8")
    report = check_content(content)
    assert any(e.startswith(f"{path}:1: ") and message in e for e in report.errors), report.errors


def test_examples_are_checked(content: Path) -> None:
    path = content / "es" / "risk" / "examples.tsv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("high\tsadness\tme siento fatal\n")
        handle.write("none\tpast\tMe siento  fatal\n")
    errors = check_content(content).errors
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert f"{path}:{lines - 1}: category 'sadness' is not one of" in "\n".join(errors)
    assert any(e.startswith(f"{path}:{lines}: the same message as {path}:{lines - 1}") for e in errors)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("severe\tsuicide\tya no aguanto\n")
    errors = check_content(content).errors
    assert any(e.startswith(f"{path}:{lines + 1}: level 'severe'") for e in errors), errors


def test_no_model_means_the_rules_alone(content: Path) -> None:
    (content / MODEL_FILE).unlink()
    report = check_content(content)
    assert not report.errors and report.risk is not None and report.risk.classifier is None


def test_risk_train_writes_a_current_model(content: Path, cli: CommandLine) -> None:
    for language in ("en", "es"):  # a small set keeps the test fast
        path = content / language / "risk" / "examples.tsv"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[:1] + lines[1::5]) + "\n", encoding="utf-8")
    assert any(MODEL_FILE in w for w in check_content(content).warnings)
    trained = cli(
        "risk",
        "train",
        "--content",
        str(content),
        "--threshold",
        "0.7",
        BOT_TOKEN="123456789:AAtesttokentesttokentesttoken",
    )
    assert trained.returncode == 0, trained.stderr
    assert f"wrote {content / MODEL_FILE}: " in trained.stdout and "threshold 0.7" in trained.stdout
    report = check_content(content)
    assert not report.errors and not [w for w in report.warnings if MODEL_FILE in w]
    assert report.risk is not None and report.risk.classifier is not None
    assert report.risk.classifier.threshold == 0.7


def test_risk_train_refuses_a_threshold_that_is_not_a_probability(content: Path, cli: CommandLine) -> None:
    refused = cli("risk", "train", "--content", str(content), "--threshold", "1")
    assert refused.returncode == 2 and "is not a probability between 0 and 1" in refused.stderr
