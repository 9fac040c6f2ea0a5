"""Blind-set protocol: how many messages of a new labelled set are near-duplicates of the training rows.

    python bench/risk_near_duplicates.py NEW.tsv [--content DIR]

A row of NEW is a near-duplicate when, after normalising both texts (case, accents, punctuation and spacing
folded), some training row (content/*/risk/examples.tsv and content/*/risk/corpus/*.tsv, every language)
has a character 3-gram Jaccard similarity of at least 0.8 with it, or a difflib ratio of at least 0.85. A
blind set is only blind if (nearly) none are.

Prints counts and the line numbers of NEW only, never a text of either side (whoever runs it may not have
seen the training rows, and whoever wrote the detector must not see the blind set); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.risk.corpus import load_examples  # noqa: E402
from bot.risk.labelled import read_labelled  # noqa: E402

JACCARD = 0.8
RATIO = 0.85


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", folded))


def grams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i : i + 3] for i in range(max(1, len(padded) - 2)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def nearest(text: str, training: list[tuple[str, frozenset[str]]]) -> tuple[float, float]:
    """The highest Jaccard and the highest difflib ratio of `text` against any training text."""
    mine = grams(text)
    best_jaccard = best_ratio = 0.0
    for other, theirs in training:
        best_jaccard = max(best_jaccard, jaccard(mine, theirs))
        matcher = SequenceMatcher(None, text, other, autojunk=False)
        # Cheap upper bounds first: most pairs are nowhere near.
        if matcher.real_quick_ratio() >= RATIO and matcher.quick_ratio() >= RATIO:
            best_ratio = max(best_ratio, matcher.ratio())
    return best_jaccard, best_ratio


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("new", type=Path)
    parser.add_argument("--content", type=Path, default=ROOT / "content")
    args = parser.parse_args()
    problems: list[str] = []
    training = [(t, grams(t)) for t in {normalise(e.text) for e in load_examples(args.content, problems)}]
    if problems:
        print(
            f"the training rows have {len(problems)} problems; run `python -m bot content check`",
            file=sys.stderr,
        )
    known = {t for t, _ in training}
    rows = read_labelled(args.new)
    exact: list[int] = []
    by_jaccard: list[int] = []
    by_ratio: list[int] = []
    for row in rows:
        text = normalise(row.text)
        if text in known:
            exact.append(row.line)
            continue
        best_jaccard, best_ratio = nearest(text, training)
        if best_jaccard >= JACCARD:
            by_jaccard.append(row.line)
        if best_ratio >= RATIO:
            by_ratio.append(row.line)
    near = sorted(set(exact) | set(by_jaccard) | set(by_ratio))
    print(f"{args.new.name}: {len(rows)} rows against {len(training)} training rows")
    print(f"exact duplicates (after normalising): {len(exact)}")
    print(
        f"near-duplicates: {len(near)} "
        f"(Jaccard >= {JACCARD}: {len(by_jaccard)}, difflib >= {RATIO}: {len(by_ratio)})"
    )
    if near:
        print("lines of NEW: " + ", ".join(map(str, near)))
    summary = {
        "file": args.new.name,
        "rows": len(rows),
        "training_rows": len(training),
        "exact": len(exact),
        "near_duplicates": len(near),
        "by_jaccard": len(by_jaccard),
        "by_difflib": len(by_ratio),
        "share": round(len(near) / len(rows), 4) if rows else 0.0,
        "lines": near,
        "thresholds": {"jaccard_3gram": JACCARD, "difflib_ratio": RATIO},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
