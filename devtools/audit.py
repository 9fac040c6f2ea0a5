"""`make audit`: the locked packages against a vulnerability database, with pip-audit.

Every version pinned in the lock is looked up, whatever platform or Python its marker is for. pip-audit
says "No known vulnerabilities found" and exits 0 when it could look up nothing at all (each package "not
found", as a package index without the JSON API answers), so its word alone is not taken:

- every locked package must have been looked up (none skipped), and
- a release known to be vulnerable (CANARY) must come back with vulnerabilities: a service that finds none
  there is not answering with its database.

PyPI's JSON API is asked first, then OSV. Where neither answers, the one line printed says the packages could
NOT be checked and where to run this instead; the exit status is then 2 (0 with --if-reachable, for CI here).
Exit status 1: known vulnerabilities, listed one a line. 0: every locked package was checked and none has one.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("pypi", "osv")
SERVICE_NAMES = {"pypi": "PyPI's JSON API", "osv": "OSV (api.osv.dev)"}
# Django 3.0 has dozens of published advisories (CVE-2020-7471 among the first): any database that answers
# knows it. It is looked up beside the lock, and is not one of the project's packages.
CANARY = ("django", "3.0")
CHECKED, VULNERABLE, UNCHECKED = 0, 1, 2
RUN_ELSEWHERE = "run `make audit` on a machine that can reach pypi.org's JSON API or api.osv.dev"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(lock: Path) -> list[tuple[str, str]]:
    """Every `name==version` the lock pins, markers ignored: a universal lock may pin two versions of one
    package (one for older Pythons), and both are audited."""
    pins: dict[tuple[str, str], None] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[(canonical(match.group(1)), match.group(2))] = None
    return list(pins)


def batches(pins: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The pins in as few lists as hold each name once (pip-audit refuses a name given twice)."""
    versions: dict[str, list[str]] = defaultdict(list)
    for name, version in pins:
        versions[name].append(version)
    depth = max((len(found) for found in versions.values()), default=0)
    return [
        [(name, found[level]) for name, found in sorted(versions.items()) if level < len(found)]
        for level in range(depth)
    ]


@dataclass(frozen=True)
class Finding:
    name: str
    version: str
    ids: tuple[str, ...]  # the advisory and its aliases (CVE-...)
    fixed_in: tuple[str, ...]


@dataclass
class Outcome:
    """What one service said about the whole lock."""

    service: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name version" pip-audit could not look up
    failure: str | None = None  # pip-audit gave no answer at all: why, in one short phrase
    canary_seen: bool = False

    def answered(self) -> bool:
        return self.failure is None and not self.skipped and self.canary_seen


def read_report(report: dict[str, Any], outcome: Outcome) -> None:
    """Fold one pip-audit JSON report (`-f json`) into `outcome`."""
    for dependency in report.get("dependencies", []):
        name, version = canonical(str(dependency.get("name", ""))), str(dependency.get("version", ""))
        if "skip_reason" in dependency:
            if name != CANARY[0]:
                outcome.skipped.append(f"{name} {version}".strip())
            continue
        vulns = dependency.get("vulns", [])
        if name == CANARY[0]:
            outcome.canary_seen = bool(vulns)
            continue
        outcome.checked += 1
        for vuln in vulns:
            ids = (str(vuln.get("id")), *(str(alias) for alias in vuln.get("aliases", [])))
            fixed = tuple(str(version) for version in vuln.get("fix_versions", []))
            outcome.findings.append(Finding(name, version, ids, fixed))


def _why_no_report(stderr: str) -> str:
    """pip-audit's traceback, in a few words: which host, and what went wrong."""
    host = re.search(r"ConnectionPool\(host='([^']+)'", stderr) or re.search(r"host='([^']+)'", stderr)
    where = f" {host.group(1)}" if host else ""
    for marker, phrase in (
        ("ProxyError", f"cannot reach{where} through the proxy"),
        ("NameResolution", f"cannot resolve{where}"),
        ("Name or service not known", f"cannot resolve{where}"),
        ("Connection refused", f"connection to{where} refused"),
        ("timed out", f"no answer from{where} in time"),
        ("SSLError", f"TLS failed with{where}"),
    ):
        if marker in stderr:
            return phrase
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = lines[-1] if lines else "pip-audit wrote no report"
    return text if len(text) <= 120 else text[:117] + "..."


def run_pip_audit(
    pins: Sequence[tuple[str, str]], service: str, *, cache_dir: str | None, timeout: int
) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report on `pins` (no resolving, no downloading), or None and why there is none."""
    with tempfile.TemporaryDirectory(prefix="iop-audit-") as folder:
        requirements = Path(folder, "pins.txt")
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in pins), encoding="utf-8")
        report = Path(folder, "report.json")
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(report),
            "--progress-spinner",
            "off",
            "--timeout",
            str(timeout),
        ]
        if cache_dir:
            command += ["--cache-dir", cache_dir]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our own argv)
        try:
            parsed = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, _why_no_report(done.stderr)
        if not isinstance(parsed, dict):
            return None, "pip-audit's report is not a JSON object"
        return parsed, ""


def audit(
    pins: Sequence[tuple[str, str]], service: str, *, cache_dir: str | None = None, timeout: int = 15
) -> Outcome:
    outcome = Outcome(service)
    for number, batch in enumerate(batches(pins)):
        if number == 0:
            batch = [*batch, CANARY]
        report, failure = run_pip_audit(batch, service, cache_dir=cache_dir, timeout=timeout)
        if report is None:
            outcome.failure = failure
            return outcome
        read_report(report, outcome)
    return outcome


def why_unchecked(outcome: Outcome, total: int) -> str:
    name = SERVICE_NAMES.get(outcome.service, outcome.service)
    if outcome.failure is not None:
        return f"{name}: {outcome.failure}"
    if outcome.skipped:
        return f"{name}: {len(outcome.skipped)} of {total} not found"
    return f"{name}: no advisory even for {CANARY[0]} {CANARY[1]}, which has dozens"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.audit", description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path, help="a lock file written by `make lock`")
    parser.add_argument(
        "--service", choices=SERVICES, action="append", help="ask only this one (may be repeated)"
    )
    parser.add_argument("--cache-dir", help="pip-audit's HTTP cache (default: pip's)")
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request (default: %(default)s)")
    parser.add_argument(
        "--if-reachable",
        action="store_true",
        help="exit 0 when no vulnerability database answers (it still says it could not check)",
    )
    args = parser.parse_args(argv)
    pins = locked_pins(args.lock)
    if not pins:
        print(f"audit: {args.lock} pins no package; nothing was checked", file=sys.stderr)
        return UNCHECKED
    reasons = []
    for service in args.service or SERVICES:
        outcome = audit(pins, service, cache_dir=args.cache_dir, timeout=args.timeout)
        if not outcome.answered():
            reasons.append(why_unchecked(outcome, len(pins)))
            continue
        for finding in outcome.findings:
            fixed = ", ".join(finding.fixed_in) or "no fixed release yet"
            print(f"{finding.name} {finding.version}: {' / '.join(finding.ids)} (fixed in: {fixed})")
        where = SERVICE_NAMES.get(service, service)
        if outcome.findings:
            packages = len({(finding.name, finding.version) for finding in outcome.findings})
            print(
                f"audit: {len(outcome.findings)} known vulnerabilities in {packages} of the {len(pins)} "
                f"locked package versions ({args.lock}, {where})",
                file=sys.stderr,
            )
            return VULNERABLE
        print(
            f"audit: no known vulnerabilities in the {len(pins)} locked package versions "
            f"({args.lock}, {where})"
        )
        return CHECKED
    print(
        f"audit: could NOT check the {len(pins)} locked package versions in {args.lock} for known "
        f"vulnerabilities: no vulnerability database answered ({'; '.join(reasons)}); {RUN_ELSEWHERE}",
        file=sys.stderr,
    )
    return CHECKED if args.if_reachable else UNCHECKED


if __name__ == "__main__":
    sys.exit(main())
