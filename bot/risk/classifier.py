"""A small statistical model beside the rules: it only ever adds a question.

The lexicon finds what it was written for and explains every match, but people find words for a crisis that
no list foresaw. The model (logistic regression over TF-IDF of words, word pairs and letter groups, trained
on the labelled examples in `content/<lang>/risk/examples.tsv`) gives the probability that a message is high
or imminent. When the rules found nothing high and the model is at or above its threshold, the bot asks "are
you safe right now?": it never pages, never lowers a rule's level and is never counted towards a pattern of
signals, so the rules stand on their own and a wrong guess costs one question.

The weights live in `content/risk_model.json`, written by `python -m bot risk train` (which needs
scikit-learn, the `train` extra); scoring here is plain Python, well under a millisecond. The file records a
fingerprint of the examples it was trained on, so `content check` can say when it is out of date.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.risk.labelled import EvalFileError, Labelled, read_labelled
from bot.risk.levels import Category, RiskLevel

MODEL_FILE = "risk_model.json"
EXAMPLES_FILE = "examples.tsv"
FORMAT = 1
LETTER_GROUPS = (2, 5)  # shortest and longest runs of letters, within a word padded by spaces


def features(clauses: Sequence[Sequence[str]]) -> list[str]:
    """What the model looks at, from the normaliser's clauses (the same on both sides, so leetspeak, emoji
    and shorthand are already folded): each word, each pair of neighbouring words in a clause, and every
    run of 2 to 5 letters inside a word ("overdos" in "overdosed", "0D'd" -> "od")."""
    out: list[str] = []
    low, high = LETTER_GROUPS
    for clause in clauses:
        for index, word in enumerate(clause):
            out.append(f"w:{word}")
            if index + 1 < len(clause):
                out.append(f"b:{word} {clause[index + 1]}")
            padded = f" {word} "
            for size in range(low, high + 1):
                out.extend(padded[i : i + size] for i in range(len(padded) - size + 1))
    return out


@dataclass(frozen=True)
class Classifier:
    weights: dict[str, tuple[float, float]]  # feature -> (idf, weight)
    intercept: float
    threshold: float
    fingerprint: str
    examples: int

    def probability(self, clauses: Sequence[Sequence[str]]) -> float:
        """P(high or imminent), as scikit-learn's TfidfVectorizer(sublinear_tf, l2) and LogisticRegression
        would compute it."""
        total = 0.0
        squares = 0.0
        for feature, count in Counter(features(clauses)).items():
            known = self.weights.get(feature)
            if known is None:
                continue
            idf, weight = known
            value = (1.0 + math.log(count)) * idf
            squares += value * value
            total += value * weight
        score = self.intercept + (total / math.sqrt(squares) if squares else 0.0)
        return 1.0 / (1.0 + math.exp(-score)) if score > -700 else 0.0

    def to_json(self) -> str:
        """One feature per line, so a retrained model's diff shows what changed."""
        head = {
            "format": FORMAT,
            "about": "written by `python -m bot risk train`; do not edit by hand",
            "examples": self.examples,
            "examples_fingerprint": self.fingerprint,
            "threshold": self.threshold,
            "intercept": round(self.intercept, 6),
        }
        lines = [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
        rows = [
            f"{json.dumps(f, ensure_ascii=False)}: [{round(i, 5)}, {round(w, 6)}]"
            for f, (i, w) in sorted(self.weights.items())
        ]
        return "{\n" + "\n".join(lines) + '\n"features": {\n' + ",\n".join(rows) + "\n}\n}\n"

    @classmethod
    def from_json(cls, text: str) -> Classifier:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a risk model of format {FORMAT}")
        threshold = float(data["threshold"])
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold {threshold} must be between 0 and 1")
        weights = {str(f): (float(v[0]), float(v[1])) for f, v in data["features"].items()}
        return cls(
            weights,
            float(data["intercept"]),
            threshold,
            str(data["examples_fingerprint"]),
            int(data["examples"]),
        )


def fingerprint(examples: Iterable[Labelled]) -> str:
    """The same for the same examples in any order or file: what a model was trained on."""
    lines = sorted(f"{e.level.label}\t{e.category}\t{e.text}" for e in examples)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def example_files(root: Path) -> list[Path]:
    return sorted(
        d / "risk" / EXAMPLES_FILE
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / "risk" / EXAMPLES_FILE).is_file()
    )


def load_examples(root: Path, problems: list[str]) -> list[Labelled]:
    """Every language's labelled examples; a wrong level or category is a problem, as path:line."""
    categories = {str(c) for c in Category}
    found: list[Labelled] = []
    seen: dict[str, str] = {}
    for path in example_files(root):
        try:
            items = read_labelled(path)
        except EvalFileError as error:
            problems.append(str(error))
            continue
        for item in items:
            where = f"{path}:{item.line}"
            # (a `none` example's category is free: a note on the pitfall it is, such as `past`)
            if item.level is not RiskLevel.NONE and item.category not in categories:
                problems.append(
                    f"{where}: category {item.category!r} is not one of {', '.join(sorted(categories))}"
                )
            key = " ".join(item.text.casefold().split())
            if key in seen:
                problems.append(f"{where}: the same message as {seen[key]}")
            seen[key] = where
            found.append(item)
    return found


def load_classifier(
    root: Path, examples: Sequence[Labelled], problems: list[str], warnings: list[str]
) -> Classifier | None:
    """The model beside the rules, or None (the rules alone) when there is none; a broken file is a problem,
    a model trained on other examples than today's a warning."""
    path = root / MODEL_FILE
    if not path.is_file():
        return None
    try:
        model = Classifier.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        problems.append(f"{path}:1: {error}; write it again with `python -m bot risk train`")
        return None
    if examples and model.fingerprint != fingerprint(examples):
        warnings.append(
            f"{path}:1: trained on other examples than those in */risk/{EXAMPLES_FILE} now; "
            "run `python -m bot risk train` and `python -m bot risk eval` to see its figures"
        )
    return model
