"""`python -m bot risk check` and `risk eval`, and the evaluation they print.

The commands run in this process (the `cli` fixture); one with its own content check, the others with the
check of the shipped content done once per run, so they stay fast."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from bot.content_check import check
from bot.content_check.check import Report
from bot.risk.detector import Detector, Screening
from bot.risk.evaluate import EvalFileError, Evaluation, Labelled, evaluate, read_labelled
from bot.risk.levels import RiskLevel
from tests.harness import CommandLine

CONTENT = Path(__file__).resolve().parent.parent / "content"
KEYS = {"text", "level", "categories", "matched", "follow_up", "semantic"}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def report(shipped_report: Report) -> Report:
    assert shipped_report.risk is not None, shipped_report.errors
    return shipped_report


@pytest.fixture
def run(report: Report, cli: CommandLine, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`python -m bot ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(check, "check_content", lambda root: report)

    def call(*args: str, stdin: str = "") -> tuple[int, str, str]:
        ran = cli(*args, stdin=stdin, CONTENT_DIR=str(CONTENT))
        return ran.returncode, ran.stdout, ran.stderr

    return call


def _records(stdout: str) -> list[dict[str, object]]:
    lines = stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    return records


# ---- risk check --------------------------------------------------------------------------------------------


def test_risk_check_from_standard_input_with_its_own_content_check(
    cli: CommandLine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # CONTENT_DIR, not the working directory, says where the lexicon is
    result = cli(
        "risk",
        "check",
        "-",
        stdin="i want to die\n\n   \ntook 30 xanax\nwhat time is group\n",
        CONTENT_DIR=str(CONTENT),
        DATABASE_URL=None,
    )
    assert result.returncode == 0, result.stderr
    records = _records(result.stdout)
    assert [r["text"] for r in records] == ["i want to die", "took 30 xanax", "what time is group"]
    assert all(set(r) >= {"text", "level", "categories", "matched"} for r in records)
    assert [r["level"] for r in records] == ["high", "imminent", "none"]
    assert records[0]["categories"] == ["suicide"]
    assert records[1]["categories"] == ["overdose"]
    assert records[2]["categories"] == [] and records[2]["matched"] == []


def test_risk_check_stdin(run: Run) -> None:
    status, out, err = run("risk", "check", "-", stdin="I want to kill myself\n\n \t \nmy cousin relapsed\n")
    assert status == 0, err
    records = _records(out)
    assert len(records) == 2  # blank lines are skipped
    first, second = records
    assert set(first) == KEYS
    assert first["text"] == "I want to kill myself"
    assert first["level"] == "imminent"
    assert first["categories"] == ["suicide"]
    assert first["follow_up"] == "cssrs"
    matched = first["matched"]
    assert isinstance(matched, list) and matched
    assert all(isinstance(m, str) and m.startswith(("suicide/", "harm_others/")) for m in matched)
    assert second["level"] == "none" and second["categories"] == []
    assert any("(other_person)" in m for m in cast(list[str], second["matched"]))


def test_risk_check_without_a_file_reads_standard_input(run: Run) -> None:
    status, out, _ = run("risk", "check", stdin="took 30 xanax")  # no final newline
    assert status == 0
    assert [r["text"] for r in _records(out)] == ["took 30 xanax"]


def test_risk_check_keeps_text_as_typed(run: Run) -> None:
    status, out, _ = run("risk", "check", "-", stdin="  Me tomé TODAS las pastillas 💊  \r\n")
    assert status == 0
    (record,) = _records(out)
    assert record["text"] == "  Me tomé TODAS las pastillas 💊  \r"
    assert record["level"] == "imminent"
    assert "💊" in out and "\\u" not in out  # JSON with the characters themselves


def test_risk_check_file(run: Run, tmp_path: Path) -> None:
    messages = tmp_path / "messages.txt"
    messages.write_text(
        "he hit me again\n\ncravings are insane today\nhad a drink of water\n", encoding="utf-8"
    )
    status, out, err = run("risk", "check", str(messages))
    assert status == 0, err
    records = _records(out)
    assert [(r["text"], r["level"], r["categories"]) for r in records] == [
        ("he hit me again", "high", ["danger"]),
        ("cravings are insane today", "moderate", ["craving"]),
        ("had a drink of water", "none", []),
    ]


def test_risk_check_an_empty_file_prints_nothing(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert run("risk", "check", str(empty)) == (0, "", "")


def test_risk_check_missing_file(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    status, out, err = run("risk", "check", str(missing))
    assert status == 1
    assert out == ""
    assert err.strip() == f"error: cannot read {missing}: No such file or directory"


def test_risk_commands_refuse_content_that_fails_the_check(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = Report(errors=[f"{tmp_path}/en/risk/lexicon.yaml:7: 'took <drug>': unknown word class <drug>"])
    monkeypatch.setattr(check, "check_content", lambda root: broken)
    status, out, err = run("risk", "check", "-", stdin="hello\n")
    assert status == 1 and out == ""
    assert err.startswith("error: the content does not pass `content check`:\n")
    assert "unknown word class <drug>" in err


# ---- risk eval ---------------------------------------------------------------------------------------------

LABELLED = (
    "level\tcategory\ttext\n"
    "imminent\tsuicide\tI want to kill myself\n"
    "imminent\toverdose\ti think i might be in trouble\n"
    "high\trelapse\ti relapsed last night\n"
    "high\tsuicide\ttook 30 xanax\n"
    "\n"
    "moderate\tcraving\tcravings are insane today\n"
    "none\t-\tmy cousin relapsed\n"
    "none\t-\ti relapsed last night\n"
)


def test_risk_eval(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_text(LABELLED, encoding="utf-8")
    status, out, err = run("risk", "eval", str(path))
    assert status == 0, err
    lines = out.splitlines()
    # the rules miss it; the semantic layer asks "are you safe right now?" (and says so)
    assert lines[0] == (
        f"{path}:3: MISSED, ASKED: labelled imminent/overdose, screened none: i think i might be in trouble"
    )
    assert lines[1].startswith("    semantic: 0.") and lines[1].endswith(": ask")
    false_alarm = next(i for i, line in enumerate(lines) if "FALSE ALARM" in line)
    assert lines[false_alarm] == (
        f"{path}:9: FALSE ALARM: labelled none/-, screened high: i relapsed last night"
    )
    assert lines[false_alarm + 1].startswith("    relapse/high: ")  # what matched, indented
    assert "recall: imminent 0.500 (2), high 1.000 (2), moderate 1.000 (1)" in lines
    assert "false alarms on none: 1 of 2 (50.0%)" in lines
    assert "paged or asked: imminent 1.000, high 1.000" in lines
    assert "questions on none: 0.0%" in lines
    assert lines[-1].startswith("median ") and lines[-1].endswith(" microseconds per message")
    assert not any("i relapsed last night" in line and "MISSED" in line for line in lines)


def test_risk_eval_with_no_messages_at_a_level(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_text("level\tcategory\ttext\nhigh\trelapse\trelapsed\n", encoding="utf-8")
    status, out, _ = run("risk", "eval", str(path))
    assert status == 0
    assert "recall: imminent - (0), high 1.000 (1), moderate - (0)" in out.splitlines()
    assert "false alarms on none: 0 of 0" in out.splitlines()


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("text\tlevel\tcategory\nhigh\trelapse\trelapsed\n", 1, "the first line must name the columns"),
        ("", 1, "the first line must name the columns"),
        ("level,category,text\nhigh,relapse,relapsed\n", 1, "the first line must name the columns"),
        ("level\tcategory\ttext\nhigh\trelapse\trelapsed\nsevere\tsuicide\tgoodbye\n", 3, "level 'severe'"),
        ("level\tcategory\ttext\nhigh\trelapsed\n", 2, "expected 3 tab-separated columns, found 2"),
    ],
)
def test_risk_eval_bad_file(run: Run, tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_text(content, encoding="utf-8")
    status, out, err = run("risk", "eval", str(path))
    assert status == 1
    assert out == ""
    assert err.startswith(f"error: {path}:{line}: "), err
    assert message in err


def test_risk_eval_missing_file(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "none.tsv"
    status, _, err = run("risk", "eval", str(missing))
    assert status == 1
    assert err.strip() == f"error: cannot read {missing}: No such file or directory"


# ---- read_labelled -----------------------------------------------------------------------------------------


def test_read_labelled(tmp_path: Path) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_text(
        " Level \tCATEGORY\tText\tnotes\n"
        "IMMINENT\tsuicide\tgoodbye\n"
        "\n"
        "\t\t\n"
        'none\t\tshe said "hi"\tand\tmore\n'
        "moderate \t craving \tcravings\n",
        encoding="utf-8",
    )
    assert read_labelled(path) == [
        Labelled(2, RiskLevel.IMMINENT, "suicide", "goodbye"),
        Labelled(5, RiskLevel.NONE, "", 'she said "hi"\tand\tmore'),
        Labelled(6, RiskLevel.MODERATE, "craving", "cravings"),
    ]


def test_read_labelled_bad_level(tmp_path: Path) -> None:
    path = tmp_path / "labelled.tsv"
    path.write_text("level\tcategory\ttext\nhigh\tx\tfine\nurgent\tx\tnot fine\n", encoding="utf-8")
    with pytest.raises(EvalFileError) as error:
        read_labelled(path)
    assert str(error.value) == f"{path}:3: level 'urgent' is not one of imminent, high, moderate, none"


# ---- evaluate ----------------------------------------------------------------------------------------------


class _Fixed:
    """A stand-in detector that screens each text at the level it is told."""

    def __init__(self, levels: dict[str, RiskLevel]) -> None:
        self.levels = levels

    def screen(self, text: str) -> Screening:
        return Screening(self.levels[text])


def _evaluate(cases: list[tuple[RiskLevel, RiskLevel]]) -> Evaluation:
    """(labelled, screened) pairs through evaluate()."""
    items = [Labelled(n + 2, labelled, "x", f"message {n}") for n, (labelled, _) in enumerate(cases)]
    screened = {f"message {n}": level for n, (_, level) in enumerate(cases)}
    return evaluate(cast(Detector, _Fixed(screened)), items)


IMM, H, M, N = RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.MODERATE, RiskLevel.NONE


def test_recall_counts_a_higher_screening_as_found_and_a_lower_one_as_missed() -> None:
    evaluation = _evaluate([(H, IMM), (H, H), (H, M), (IMM, H), (IMM, IMM), (M, IMM), (M, N)])
    assert evaluation.recall(H) == pytest.approx(2 / 3)  # high screened imminent is found
    assert evaluation.recall(IMM) == pytest.approx(1 / 2)  # imminent screened high is missed
    assert evaluation.recall(M) == pytest.approx(1 / 2)
    missed = [(o.item.level, o.result.level) for o in evaluation.outcomes if o.missed]
    assert missed == [(H, M), (IMM, H), (M, N)]


def test_false_alarms_are_only_none_messages_screened_high_or_imminent() -> None:
    evaluation = _evaluate([(N, N), (N, M), (N, H), (N, IMM), (H, IMM), (M, H), (M, IMM)])
    alarms = [(o.item.level, o.result.level) for o in evaluation.outcomes if o.false_alarm]
    assert alarms == [(N, H), (N, IMM)]
    assert evaluation.false_alarm_rate == pytest.approx(2 / 4)
    assert not any(o.missed for o in evaluation.outcomes)
    assert [(o.item.level, o.result.level) for o in evaluation.misses] == [(N, H), (N, IMM)]


def test_summary() -> None:
    evaluation = _evaluate([(IMM, IMM), (IMM, H), (H, H), (N, N), (N, H), (N, M)])
    summary = evaluation.summary()
    assert summary["messages"] == 6
    assert summary["recall"] == {"imminent": 0.5, "high": 1.0, "moderate": None}
    assert summary["counts"] == {"imminent": 2, "high": 1, "moderate": 0, "none": 3}
    assert summary["false_alarm_rate"] == round(1 / 3, 4)
    assert summary["false_alarms"] == 1
    assert summary["missed"] == 1
    assert len(evaluation.microseconds) == 6


def test_an_empty_evaluation() -> None:
    evaluation = _evaluate([])
    assert evaluation.recall(IMM) is None
    assert evaluation.false_alarm_rate is None
    assert evaluation.misses == []
    assert evaluation.median_microseconds == 0.0


def test_evaluate_with_the_shipped_detector(report: Report) -> None:
    assert report.risk is not None
    items = [
        Labelled(2, IMM, "suicide", "I want to kill myself"),
        Labelled(3, H, "relapse", "took 30 xanax"),  # screened imminent: found
        Labelled(4, N, "-", "my cousin relapsed"),
        Labelled(5, N, "-", "i relapsed last night"),
    ]
    evaluation = evaluate(report.risk, items)
    assert evaluation.recall(IMM) == 1.0
    assert evaluation.recall(H) == 1.0
    assert [o.item.line for o in evaluation.misses] == [5]


def test_risk_check_shows_the_patients_words_and_the_rule(run: Run) -> None:
    status, out, err = run("risk", "check", stdin="Honestly I want to KILLL  myself!! tonight\n")
    assert status == 0, err
    (record,) = _records(out)
    matched = cast(list[str], record["matched"])
    first = matched[0]
    # The words as typed (not the normalised "kil myself" the rules read), then the rule and where it is.
    assert first.startswith('suicide/imminent: "KILLL  myself!!" by the rule \'kill|')
    assert first.endswith(")") and " (en/risk/lexicon.yaml:" in first
    assert not any("'kil myself'" in m for m in matched)
