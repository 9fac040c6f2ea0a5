"""The lock files and `make audit` (devtools/audit.py): every package locked with hashes, and an audit that
never passes what it could not check."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from devtools import audit

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"


def _entries(lock: Path) -> list[str]:
    """Each requirement of a lock, its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", lock.read_text(encoding="utf-8"))
    return [line for line in joined.splitlines() if line and not line[0].isspace() and line[0] != "#"]


@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_every_locked_package_is_pinned_with_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert len(entries) > 40
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+", entry), entry
        assert "--hash=sha256:" in entry, entry


def test_the_runtime_lock_has_the_development_locks_versions() -> None:
    runtime, development = set(audit.locked_pins(LOCK)), set(audit.locked_pins(DEV_LOCK))
    assert runtime <= development
    names = {name for name, _ in runtime}
    # what the bot runs on, what installs it, and nothing of the test tools
    assert {"python-telegram-bot", "cryptography", "sqlalchemy", "pip", "setuptools"} <= names
    assert not names & {"pytest", "mypy", "ruff", "pip-audit", "scikit-learn"}


def test_every_pinned_version_is_audited_whatever_its_marker() -> None:
    pins = audit.locked_pins(DEV_LOCK)
    numpy = [version for name, version in pins if name == "numpy"]
    assert len(numpy) == len(set(numpy)) >= 1
    assert ("colorama", "0.4.6") in pins  # Windows only: locked all the same, so audited
    for batch in audit.batches(pins):
        assert len({name for name, _ in batch}) == len(batch)
    assert sorted(pin for batch in audit.batches(pins) for pin in batch) == sorted(pins)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_no_database_reachable_it_says_it_could_not_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real pip-audit, every request sent to a proxy that refuses: the network is unreachable."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, proxy)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "six==1.17.0 \\\n    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274\n"
    )

    status = audit.main([str(lock), "--cache-dir", str(tmp_path / "cache"), "--timeout", "5"])

    out, err = capsys.readouterr()
    assert status == audit.UNCHECKED != 0
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert "could NOT check the 1 locked package versions" in lines[0]
    assert "PyPI's JSON API: cannot reach pypi.org" in lines[0]
    assert "OSV (api.osv.dev): cannot reach api.osv.dev" in lines[0]
    assert lines[0].endswith(audit.RUN_ELSEWHERE)
    assert "no known vulnerabilities" not in (out + err).lower()


LOCKED = [("cryptography", "51.0.1"), ("six", "1.17.0")]
DJANGO_ADVISORY = {"id": "PYSEC-2020-35", "aliases": ["CVE-2020-7471"], "fix_versions": ["3.0.3"]}


def _answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reports: dict[str, dict[str, Any] | None]
) -> Path:
    """pip-audit's reports, by service (None: it gave none), for a lock of LOCKED."""

    def fake(pins: list[tuple[str, str]], service: str, **_: object) -> tuple[dict[str, Any] | None, str]:
        report = reports[service]
        if report is None:
            return None, "cannot resolve api.osv.dev"
        asked = {name for name, _ in pins}
        return {"dependencies": [d for d in report["dependencies"] if d["name"] in asked], "fixes": []}, ""

    monkeypatch.setattr(audit, "run_pip_audit", fake)
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(f"{name}=={version} \\\n    --hash=sha256:00\n" for name, version in LOCKED))
    return lock


def _report(*, canary: list[dict[str, Any]], **vulns: list[dict[str, Any]]) -> dict[str, Any]:
    found = [{"name": name, "version": version, "vulns": vulns.get(name, [])} for name, version in LOCKED]
    return {"dependencies": [*found, {"name": "django", "version": "3.0", "vulns": canary}]}


NOT_FOUND = {
    "dependencies": [
        {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name}"}
        for name in ("cryptography", "six", "django")
    ]
}


def test_a_pass_only_when_every_package_was_looked_up_and_the_database_knows_the_canary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _answer(monkeypatch, tmp_path, {"pypi": NOT_FOUND, "osv": _report(canary=[DJANGO_ADVISORY])})

    assert audit.main([str(lock)]) == audit.CHECKED

    out, err = capsys.readouterr()
    assert out == (
        f"audit: no known vulnerabilities in the 2 locked package versions ({lock}, OSV (api.osv.dev))\n"
    )
    assert err == ""


def test_a_database_that_knows_no_advisory_at_all_is_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror that answers every lookup with an empty list (as if nothing were ever vulnerable)."""
    lock = _answer(monkeypatch, tmp_path, {"pypi": _report(canary=[]), "osv": None})

    assert audit.main([str(lock)]) == audit.UNCHECKED
    assert audit.main([str(lock), "--if-reachable"]) == audit.CHECKED

    out, err = capsys.readouterr()
    assert out == ""
    for line in err.splitlines():
        assert line.startswith("audit: could NOT check the 2 locked package versions")
        assert "PyPI's JSON API: no advisory even for django 3.0" in line
        assert "OSV (api.osv.dev): cannot resolve api.osv.dev" in line
    assert len(err.splitlines()) == 2


def test_known_vulnerabilities_fail_and_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    advisory = {"id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2099-1"], "fix_versions": ["51.0.2"]}
    lock = _answer(
        monkeypatch,
        tmp_path,
        {"pypi": _report(canary=[DJANGO_ADVISORY], cryptography=[advisory]), "osv": None},
    )

    assert audit.main([str(lock), "--if-reachable"]) == audit.VULNERABLE

    out, err = capsys.readouterr()
    assert out == "cryptography 51.0.1: GHSA-xxxx-yyyy-zzzz / CVE-2099-1 (fixed in: 51.0.2)\n"
    assert err.startswith("audit: 1 known vulnerabilities in 1 of the 2 locked package versions")
