"""Benchmark: the risk detector on labelled messages, with the semantic layer and with the rules alone.

    python bench/risk_eval.py [FILE.tsv ...] [--content DIR] [--no-data]

The sets, each scored with the layer on and off:
- `trained_on`: content/*/risk/examples.tsv and content/*/risk/corpus/*.tsv, what the rules were tuned on
  (examples.tsv) and the layer trained on (all of it). Their figures show the detector does what it was
  taught; the layer's own validation figures (five folds, each message scored by a head that never saw it)
  are printed by `python -m bot risk train`.
- the blind sets in bench/data/ (or the files given): risk_blind2.tsv was measured blind before the first
  model existed, risk_blind3.tsv was written and first measured after it; neither has been trained on nor
  used to choose a threshold (bench/risk_near_duplicates.py finds 14 of risk_blind3's 320 rows close to a
  training row today). A new blind set
  is written by someone who has not seen the training examples, checked with bench/risk_near_duplicates.py,
  scored once and kept here with its date; every set ever scored is reported, not only the latest.

For every set: the share of imminent and high messages paged (screened high or imminent) and paged or asked
about (the C-SSRS screener or "are you safe right now?"), false alarms (a `none` message paged) and questions
on `none` messages, and the microseconds per message (median and 99th percentile, by the clock and in this
thread's CPU time, which a busy shared machine inflates less). One line per set and
mode, then, as the last line, one JSON object with all of them.
Targets (issue 19, on fresh blind sets): imminent paged >= 0.95 and paged or asked 1.00; high paged or asked
>= 0.95; hard negatives paged <= 5% and asked <= 10%; screening p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content_check.check import check_content  # noqa: E402
from bot.risk.corpus import load_examples  # noqa: E402
from bot.risk.detector import Detector  # noqa: E402
from bot.risk.evaluate import evaluate, read_labelled  # noqa: E402
from bot.risk.labelled import Labelled  # noqa: E402
from bot.risk.semantic import UniversalSentenceEncoder  # noqa: E402

WARM_UP = ("warm up", "i want to die", "took 30 xanax", "i just want to disappear for a while now")


def _measure(detector: Detector, items: list[Labelled]) -> dict[str, object]:
    summary = evaluate(detector, items).summary()
    return {
        "messages": summary["messages"],
        "paged": summary["paged"],
        "paged_or_asked": summary["reached"],
        "false_alarms_on_none": summary["false_alarm_rate"],
        "questions_on_none": summary["questions_on_none"],
        "counts": summary["counts"],
        "p50_us": summary["median_us"],
        "p99_us": summary["p99_us"],
        "cpu_p50_us": summary["cpu_p50_us"],
        "cpu_p99_us": summary["cpu_p99_us"],
    }


def _package_pass(detector: Detector, items: list[Labelled]) -> dict[str, object]:
    """The layer with each message encoded by the package's own pass instead of `TokenPath` (the encoder's
    speed before it), and how many decisions differ between the two (the embeddings agree to float32
    rounding: none should)."""
    layer = detector.layer
    encoder = None if layer is None else layer.encoder
    if layer is None or not isinstance(encoder, UniversalSentenceEncoder):
        return {}
    layer.recent.clear()
    by_tokens = [(s.level, s.follow_up) for s in (detector.screen(item.text) for item in items)]
    layer.recent.clear()
    encoder.by_tokens = False
    try:
        figures = _measure(detector, items)
        layer.recent.clear()
        by_package = [(s.level, s.follow_up) for s in (detector.screen(item.text) for item in items)]
    finally:
        encoder.by_tokens = True
        layer.recent.clear()
    figures["decisions_differ"] = sum(a != b for a, b in zip(by_tokens, by_package, strict=True))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--content", type=Path, default=ROOT / "content")
    parser.add_argument(
        "--no-data",
        action="store_true",
        help="leave out the blind sets in bench/data/ (to measure speed while a model is tuned: a blind set "
        "is scored once, when the model is final)",
    )
    parser.add_argument(
        "--package-pass",
        action="store_true",
        help="also measure the layer with each message encoded by the package's own pass (no TokenPath), and "
        "count the decisions that differ",
    )
    args = parser.parse_args()
    kept = [] if args.no_data else sorted((ROOT / "bench" / "data").glob("risk_*.tsv"))
    files = kept + list(args.files)
    report = check_content(args.content)
    if report.risk is None:
        print("\n".join(report.errors), file=sys.stderr)
        return 1
    layer_on = report.risk
    layer_off = Detector(layer_on.lexicon)
    for detector in (layer_on, layer_off):
        for text in WARM_UP:
            detector.screen(text)
    sets: dict[str, list[Labelled]] = {"trained_on": list(load_examples(args.content, []))}
    for path in files:
        sets[path.name] = read_labelled(path)
    result: dict[str, object] = {
        "layer": None if layer_on.layer is None else layer_on.layer.head.encoder,
        "validation_folds": None if layer_on.layer is None else layer_on.layer.head.validation,
    }
    for name, items in sets.items():
        figures = {}
        for mode, detector in (("layer_on", layer_on), ("layer_off", layer_off)):
            figures[mode] = _measure(detector, items)
            print(f"{name}, {mode.replace('_', ' ')}: {json.dumps(figures[mode])}", flush=True)
        if args.package_pass:
            figures["layer_on_package_pass"] = _package_pass(layer_on, items)
            print(
                f"{name}, layer on, package's pass: {json.dumps(figures['layer_on_package_pass'])}",
                flush=True,
            )
        result[name] = figures
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
