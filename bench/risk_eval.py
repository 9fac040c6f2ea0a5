"""Benchmark: the risk detector on labelled messages, with and without the model beside the rules.

    python bench/risk_eval.py [FILE.tsv ...] [--content DIR]

Two kinds of sets. The examples in content/*/risk/examples.tsv (1,230 messages written by people who had not
seen the lexicon, each set measured blind first and then used to tune the lexicon, and 230 everyday harmless
ones added so the model stops asking about ordinary Spanish and goodbyes) are what the rules were tuned on
and the model trained on: their figures show the detector does what it was taught. The held-out
sets in bench/data/ (or the files given) have been used for neither: risk_blind2.tsv was measured blind
before the model existed, risk_blind3.tsv was written and first measured after it; their figures are the
ones that say how the detector does on wording it has never seen.

Prints one line per set, then, as the last line, one JSON object: recall per level, the share of high and
imminent messages paged or asked about ("reached"), false alarms (a `none` message flagged high or
imminent), questions on `none` messages, and the median microseconds per message, for the trained-on set
and the held-out sets together, each with the model and with the rules alone.
Targets (issue 5): imminent recall 1.00, high recall >= 0.97, false alarms <= 3%, under 1 ms per message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content_check.check import check_content  # noqa: E402
from bot.risk.classifier import load_examples  # noqa: E402
from bot.risk.detector import Detector  # noqa: E402
from bot.risk.evaluate import evaluate, read_labelled  # noqa: E402
from bot.risk.labelled import Labelled  # noqa: E402

SHOWN = ("recall", "reached", "false_alarm_rate", "questions_on_none", "median_us", "messages")


def _measure(detector: Detector, items: list[Labelled]) -> dict[str, object]:
    summary = evaluate(detector, items).summary()
    return {key: summary[key] for key in SHOWN}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--content", type=Path, default=ROOT / "content")
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "bench" / "data").glob("risk_*.tsv"))
    report = check_content(args.content)
    if report.risk is None:
        print("\n".join(report.errors), file=sys.stderr)
        return 1
    detector = report.risk
    rules = Detector(detector.lexicon)
    for warm in (detector, rules):
        for text in ("warm up", "i want to die", "took 30 xanax", "i just want to disappear for a while now"):
            warm.screen(text)
    trained_on = load_examples(args.content, [])
    held_out: list[Labelled] = []
    print(f"examples (trained on): {json.dumps(_measure(detector, trained_on))}")
    for path in files:
        items = read_labelled(path)
        held_out += items
        print(f"{path.name}: {json.dumps(_measure(detector, items))}")
        print(f"{path.name}, rules alone: {json.dumps(_measure(rules, items))}")
    result = {
        "held_out_sets": [p.name for p in files],
        "model": detector.classifier is not None,
        "trained_on": _measure(detector, trained_on),
        "held_out": _measure(detector, held_out),
        "held_out_rules_alone": _measure(rules, held_out),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
