"""The content a running bot serves: texts and modules that passed `content check`, swapped as one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bot.content.catalog import Catalog, ContentError
from bot.content.instruments import InstrumentLibrary
from bot.content.modules import ModuleLibrary
from bot.content_check.check import Report, check_content
from bot.risk.detector import Detector

CONTENT_SUFFIXES = (".yaml", ".yml", ".md")


@dataclass(frozen=True)
class Content:
    catalog: Catalog
    modules: ModuleLibrary
    risk: Detector
    fingerprint: str
    measures: InstrumentLibrary  # the validated questionnaires (content/<lang>/measures/)


def fingerprint(root: Path) -> str:
    """Changes when any content file is added, removed or edited (by name, size and modification time)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in CONTENT_SUFFIXES and p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_content(root: Path) -> Content:
    """Everything under `root`, or ContentError with every problem `content check` finds: the bot never
    serves content that would fail the check (an undefined variable, a text over Telegram's limit...)."""
    stamp = fingerprint(root)
    return checked_content(check_content(root), root, stamp)


def checked_content(report: Report, root: Path, stamp: str) -> Content:
    """What `report` (`content check` of `root`, whose fingerprint was `stamp` before the check) found, or
    ContentError with every problem it found."""
    if (
        report.errors
        or report.catalog is None
        or report.modules is None
        or report.risk is None
        or report.measures is None
    ):
        raise ContentError(report.errors or [f"{root}: no content"])
    return Content(report.catalog, report.modules, report.risk, stamp, report.measures)
