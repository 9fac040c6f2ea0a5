"""Benchmark: the risk detector on the labelled sets in bench/data/ (or the files given).

    python bench/risk_eval.py [FILE.tsv ...] [--content DIR]

Prints one line per set, then, as the last line, one JSON object over all sets together: recall per level,
the false-alarm rate on `none` messages (flagged high or imminent) and the median microseconds per message.
Targets (issue 5): imminent recall 1.00, high recall >= 0.97, false alarms <= 3%, under 1 ms per message.

The sets were written by people who had not seen the lexicon: risk_eval.tsv was used to tune it;
risk_holdout.tsv, risk_fresh.tsv and risk_blind.tsv were each measured blind first (figures in the issue
notes and commit messages), then used to tune as well. risk_blind2.tsv has not been tuned on: it is the one
figure here that says how the rules do on wording they have never seen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content.check import check_content  # noqa: E402
from bot.risk.evaluate import Evaluation, evaluate, read_labelled  # noqa: E402


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
    for text in ("warm up", "i want to die", "took 30 xanax"):
        detector.screen(text)
    combined = Evaluation()
    per_file: dict[str, object] = {}
    for path in files:
        evaluation = evaluate(detector, read_labelled(path))
        summary = evaluation.summary()
        per_file[path.name] = summary
        print(f"{path.name}: {json.dumps(summary)}")
        combined.outcomes += evaluation.outcomes
        combined.microseconds += evaluation.microseconds
    result = {"sets": [p.name for p in files], **combined.summary()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
