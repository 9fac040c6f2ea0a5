"""Clinical review status of the content: who reviewed each file, when, and whether it changed since.

`content/REVIEW.yaml` lists every file under `content/` (its path inside `content/`) with `by` (the
clinician) and `date` (YYYY-MM-DD) once a clinician has read it, and `fingerprint`: a short code of the file's
exact bytes, so that any later edit shows and the review stops counting until the file is read again.
`content check` prints the code to paste. Missing or malformed review entries are warnings, never errors: a
review date typo must not keep a crisis-line fix from loading. `REQUIRE_CONTENT_REVIEW=true` makes `run`
refuse to start while a patient-facing file has no current review (see `gate`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from bot.content.catalog import ContentError, load_yaml, yaml_problem

log = logging.getLogger(__name__)

REVIEW_FILE = "REVIEW.yaml"
# Files under content/<lang>/ that only counselors read; every other text file and every module is
# patient-facing. Risk lexicon, labelled examples, the model and samples.yaml are listed in REVIEW.yaml too,
# but no patient reads them, so they are not required for `run`.
STAFF_ONLY = frozenset({"caseload.yaml", "measures_team.yaml"})
FIELDS = frozenset({"by", "date", "fingerprint", "note"})


class UnreviewedContent(ContentError):
    """`run` with REQUIRE_CONTENT_REVIEW on, and a patient-facing file without a current clinical review."""


@dataclass
class ReviewStatus:
    reviewed: dict[str, str] = field(default_factory=dict)  # file -> "by, date"
    unreviewed: dict[str, str] = field(default_factory=dict)  # patient-facing file -> why it is not reviewed
    warnings: list[str] = field(default_factory=list)  # problems in REVIEW.yaml itself


def fingerprint(path: Path) -> str:
    """The first 12 hex digits of the SHA-256 of the file, line endings made Unix-style (an editor on Windows
    saving the same text does not undo a review)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:12]


def content_files(root: Path) -> list[str]:
    """Every file under `root` (paths inside it, with /), but REVIEW.yaml itself and hidden files."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and p.name != REVIEW_FILE
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def is_patient_facing(name: str) -> bool:
    """`<lang>/*.yaml` texts (not the staff-only ones), `<lang>/modules/*.yaml` coping modules and
    `<lang>/measures/*.yaml` questionnaires."""
    parts = name.split("/")
    if not parts[-1].endswith(".yaml"):
        return False
    if len(parts) == 2:
        return parts[1] not in STAFF_ONLY
    return len(parts) == 3 and parts[1] in ("modules", "measures")


def _load(root: Path, status: ReviewStatus) -> dict[str, object] | None:
    """The entries of REVIEW.yaml by file name; None (with a warning) when there is no usable list."""
    path = root / REVIEW_FILE
    if not path.is_file():
        status.warnings.append(f"{path}:1: missing: the list of who reviewed each content file, and when")
        return None
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        status.warnings.append(yaml_problem(path, error) + "; every file counts as not reviewed")
        return None
    if not isinstance(data, dict):
        status.warnings.append(f"{path}:1: must list files, each with by, date and fingerprint")
        return None
    return {str(k): v for k, v in data.items()}


def _as_date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _judge(root: Path, name: str, entry: object, today: date, status: ReviewStatus) -> str | None:
    """Why `name` is not reviewed (None when it is); problems with its entry go to the warnings."""
    where = f"{root / REVIEW_FILE}: {name}"
    if entry is None:
        return "no reviewer yet"
    if not isinstance(entry, dict):
        status.warnings.append(f"{where}: expected by, date and fingerprint under the file name")
        return "its review entry is malformed"
    unknown = sorted(str(k) for k in entry if k not in FIELDS)
    if unknown:
        status.warnings.append(
            f"{where}: unknown field {', '.join(unknown)} (use by, date, fingerprint, note)"
        )
    by = str(entry.get("by") or "").strip()
    raw_date = entry.get("date")
    if not by and raw_date in (None, ""):
        return "no reviewer yet"
    reviewed_on = _as_date(raw_date)
    if not by:
        status.warnings.append(f"{where}: a date without a reviewer; write who reviewed it in `by`")
        return "no reviewer named"
    if reviewed_on is None:
        status.warnings.append(f"{where}: `date` must be the review date as YYYY-MM-DD")
        return "no valid review date"
    if reviewed_on > today:
        status.warnings.append(f"{where}: review date {reviewed_on} is in the future")
        return "review date in the future"
    current = fingerprint(root / name)
    recorded = str(entry.get("fingerprint") or "").strip()
    if not recorded:
        status.warnings.append(
            f"{where}: reviewed by {by} on {reviewed_on}; add `fingerprint: {current}` (a later edit shows)"
        )
        return "review has no fingerprint"
    if recorded != current:
        return f"changed since {by} reviewed it on {reviewed_on}"
    status.reviewed[name] = f"{by}, {reviewed_on}"
    return None


def review_status(root: Path, today: date | None = None) -> ReviewStatus:
    """The review state of every file under `root`: which patient-facing files lack a current review."""
    today = today or date.today()
    status = ReviewStatus()
    loaded = _load(root, status)
    entries = loaded or {}
    files = content_files(root)
    for name in sorted(set(entries) - set(files)):
        status.warnings.append(f"{root / REVIEW_FILE}: {name}: no such file under {root}")
    for name in files:
        if loaded is not None and name not in entries:
            status.warnings.append(
                f"{root / REVIEW_FILE}: {name}: not listed; add it (clinical review pending)"
            )
        reason = _judge(root, name, entries.get(name), today, status)
        if reason is not None and is_patient_facing(name):
            status.unreviewed[name] = reason
    return status


def review_warnings(root: Path) -> list[str]:
    """What `content check` prints: REVIEW.yaml's problems, then a line per unreviewed patient-facing file."""
    status = review_status(root)
    return status.warnings + [
        f"{root / name}: not clinically reviewed ({reason}; fingerprint {fingerprint(root / name)})"
        for name, reason in status.unreviewed.items()
    ]


def gate(root: Path, *, required: bool) -> None:
    """At start-up: one log line naming the patient-facing files without a current clinical review (names
    only, never texts); with `required` (REQUIRE_CONTENT_REVIEW), refuse to start instead."""
    unreviewed = sorted(review_status(root).unreviewed)
    if not unreviewed:
        return
    if required:
        raise UnreviewedContent(
            [
                f"REQUIRE_CONTENT_REVIEW is on and {len(unreviewed)} patient-facing content files have no "
                f"current clinical review (see {root / REVIEW_FILE} and `python -m bot content check`): "
                + ", ".join(unreviewed)
            ]
        )
    log.warning("event=content.unreviewed count=%d files=%s", len(unreviewed), ",".join(unreviewed))
