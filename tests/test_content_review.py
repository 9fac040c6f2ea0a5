"""Clinical review status of the content (issue 18, item 18): `content check` warns about patient-facing files
without a current review, `run` logs them at start, and REQUIRE_CONTENT_REVIEW makes it refuse to start."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.app import serve
from bot.cli import main
from bot.content_check.check import check_content
from bot.content_check.review import (
    REVIEW_FILE,
    UnreviewedContent,
    content_files,
    fingerprint,
    gate,
    is_patient_facing,
    review_status,
)
from bot.core.config import Settings
from bot.runtime import Runtime
from tests.harness import TEST_CLINIC, TEST_ENCRYPTION_KEY, TEST_TOKEN

CONTENT = Path(__file__).resolve().parent.parent / "content"
REVIEWER = "Test Reviewer, LCSW"  # test data in a copy of the content, never in the shipped REVIEW.yaml
REVIEWED_ON = "2026-11-30"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def _review(root: Path, *names: str, **fields: object) -> None:
    """Record a review of `names` in root's REVIEW.yaml (fingerprints of the files as they are now)."""
    path = root / REVIEW_FILE
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name in names:
        entries[name] = {
            "by": REVIEWER,
            "date": REVIEWED_ON,
            "fingerprint": fingerprint(root / name),
        } | fields
    path.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")


def _review_everything(root: Path) -> None:
    _review(root, *content_files(root))


def _patient_facing() -> list[str]:
    return [name for name in content_files(CONTENT) if is_patient_facing(name)]


def test_which_files_are_patient_facing() -> None:
    names = _patient_facing()
    assert {"en/crisis.yaml", "es/crisis.yaml", "en/modules/box_breathing.yaml", "es/common.yaml"} <= set(
        names
    )
    for staff_or_data in (
        "en/caseload.yaml",
        "en/risk/lexicon.yaml",
        "samples.yaml",
        "en/risk/corpus/sources.yaml",
    ):
        assert staff_or_data in content_files(CONTENT) and staff_or_data not in names


def test_the_shipped_list_names_every_content_file_and_no_reviewer_yet() -> None:
    entries = yaml.safe_load((CONTENT / REVIEW_FILE).read_text(encoding="utf-8"))
    assert sorted(entries) == content_files(CONTENT)
    # Nobody has reviewed anything clinically: no name may be filled in for a clinician.
    assert all(not (entry or {}).get("by") and not (entry or {}).get("date") for entry in entries.values())
    for changed in ("en/crisis.yaml", "es/crisis.yaml"):
        assert "needs clinical review" in entries[changed]["note"]


def test_check_lists_each_unreviewed_patient_facing_file_as_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["content", "check", str(CONTENT)]) == 0  # warnings, not errors
    out = capsys.readouterr().out
    for name in _patient_facing():
        assert f"warning: {CONTENT / name}: not clinically reviewed (no reviewer yet; fingerprint " in out
    assert f"{CONTENT / 'en/caseload.yaml'}: not clinically reviewed" not in out
    assert "0 errors" in out


def test_a_review_counts_until_the_file_changes(content: Path) -> None:
    _review(content, "en/crisis.yaml")
    status = review_status(content)
    assert "en/crisis.yaml" not in status.unreviewed and "es/crisis.yaml" in status.unreviewed
    assert status.reviewed["en/crisis.yaml"] == f"{REVIEWER}, {REVIEWED_ON}"
    assert status.warnings == []

    path = content / "en" / "crisis.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# one more comment\n", encoding="utf-8")
    report = check_content(content)
    assert report.errors == []
    assert (
        f"{path}: not clinically reviewed (changed since {REVIEWER} reviewed it on {REVIEWED_ON}; "
        f"fingerprint {fingerprint(path)})"
    ) in report.warnings


def test_a_review_written_by_hand_counts(content: Path) -> None:
    """As a clinician types it: an unquoted date, a name with a credential, a note."""
    name = "en/modules/box_breathing.yaml"
    review = content / REVIEW_FILE
    text = review.read_text(encoding="utf-8")
    entry = f"{name}:\n  by:\n  date:\n  fingerprint:\n"
    assert entry in text
    filled = (
        f"{name}:\n  by: {REVIEWER}\n  date: {REVIEWED_ON}\n"
        f"  fingerprint: {fingerprint(content / name)}\n  note: read aloud, pauses fine\n"
    )
    review.write_text(text.replace(entry, filled), encoding="utf-8")
    status = review_status(content)
    assert name in status.reviewed and name not in status.unreviewed and status.warnings == []


def test_the_same_text_saved_with_windows_line_endings_keeps_its_review(content: Path) -> None:
    _review(content, "en/crisis.yaml")
    path = content / "en" / "crisis.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert "en/crisis.yaml" not in review_status(content).unreviewed


def test_a_review_without_a_fingerprint_says_which_one_to_add(content: Path) -> None:
    _review(content, "es/crisis.yaml", fingerprint=None)
    status = review_status(content)
    assert status.unreviewed["es/crisis.yaml"] == "review has no fingerprint"
    expected = fingerprint(content / "es" / "crisis.yaml")
    assert any(f"add `fingerprint: {expected}`" in w and REVIEWER in w for w in status.warnings)


@pytest.mark.parametrize(
    ("fields", "reason", "warning"),
    [
        ({"date": "30/11/2026"}, "no valid review date", "YYYY-MM-DD"),
        ({"date": "2999-01-01"}, "review date in the future", "in the future"),
        ({"by": ""}, "no reviewer named", "without a reviewer"),
        ({"reviewer": "someone"}, None, "unknown field reviewer"),
    ],
)
def test_mistakes_in_a_review_entry_are_warnings_never_errors(
    content: Path, fields: dict[str, object], reason: str | None, warning: str
) -> None:
    _review(content, "en/common.yaml", **fields)
    status = review_status(content, today=date(2026, 12, 7))
    assert status.unreviewed.get("en/common.yaml") == reason
    assert any(warning in w for w in status.warnings), status.warnings


def test_unlisted_files_unknown_files_and_a_broken_list_are_warnings(content: Path) -> None:
    (content / "en" / "modules" / "new_exercise.yaml").write_text("id: new_exercise\n", encoding="utf-8")
    review = content / REVIEW_FILE
    review.write_text(review.read_text(encoding="utf-8") + "en/gone.yaml:\n  by:\n", encoding="utf-8")
    status = review_status(content)
    assert "en/modules/new_exercise.yaml" in status.unreviewed
    assert any("en/modules/new_exercise.yaml: not listed" in w for w in status.warnings)
    assert any("en/gone.yaml: no such file" in w for w in status.warnings)

    review.write_text("en/crisis.yaml: [unclosed\n", encoding="utf-8")
    status = review_status(content)
    assert set(status.unreviewed) == {n for n in content_files(content) if is_patient_facing(n)}
    assert any("not valid YAML" in w for w in status.warnings)
    review.unlink()
    assert any("missing" in w for w in review_status(content).warnings)

    # A list with a broken entry and every other file unlisted: the content still passes, with warnings.
    (content / "en" / "modules" / "new_exercise.yaml").unlink()
    review.write_text(f"en/common.yaml:\n  by: {REVIEWER}\n  date: 30/11/2026\n", encoding="utf-8")
    report = check_content(content)
    assert report.errors == [] and any("YYYY-MM-DD" in w for w in report.warnings)


def test_start_logs_one_line_with_the_count_and_names(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.content_check.review"):
        gate(CONTENT, required=False)
    [record] = [r for r in caplog.records if "content.unreviewed" in r.getMessage()]
    names = _patient_facing()
    assert record.getMessage() == f"event=content.unreviewed count={len(names)} files={','.join(names)}"


def test_start_with_everything_reviewed_logs_nothing_and_is_allowed(
    content: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _review_everything(content)
    with caplog.at_level(logging.WARNING, logger="bot.content_check.review"):
        gate(content, required=True)
        gate(content, required=False)
    assert not [r for r in caplog.records if "content.unreviewed" in r.getMessage()]


async def test_serve_refuses_to_start_before_anything_when_review_is_required(
    settings: Settings, content: Path
) -> None:
    _review_everything(content)
    path = content / "es" / "crisis.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited after the review\n", encoding="utf-8")
    runtime = Runtime.create(
        settings.model_copy(update={"content_dir": content, "require_content_review": True})
    )
    try:
        with pytest.raises(UnreviewedContent) as refused:
            await asyncio.wait_for(serve(runtime, asyncio.Event()), timeout=10)
    finally:
        await runtime.engine.dispose()
    # Refused before anything else: Telegram's address in these settings points nowhere, so getting further
    # would have failed with a network error instead.
    assert "REQUIRE_CONTENT_REVIEW" in str(refused.value) and str(refused.value).endswith("es/crisis.yaml")


def test_run_refuses_to_start_with_unreviewed_content_when_required(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "BOT_TOKEN": TEST_TOKEN,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DATABASE_URL": database_url,
        "CONTENT_DIR": str(CONTENT),
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9",
        "REQUIRE_CONTENT_REVIEW": "true",
        "LOG_LEVEL": "WARNING",
        **TEST_CLINIC,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    names = _patient_facing()
    assert err.startswith(
        f"error: REQUIRE_CONTENT_REVIEW is on and {len(names)} patient-facing content files"
    )
    assert all(name in err for name in names)
