"""`python -m bot risk export-labels` (issue 19, item 5): the care team's verdicts on resolved alerts, with
the words behind them redacted, for the clinical lead; admins only, every try audited; erased patients,
and those whose deletion is waiting, never in it. The command runs in this process (`cli`), on the test
database."""

from __future__ import annotations

import asyncio
import getpass
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import AuditEvent, Consent, CounselorRole, EscalationStatus, SafetyPlan
from bot.enrollment.consent import SCOPE
from bot.privacy import erasure
from bot.privacy.labels import COLUMNS, Scrubber, messages_of
from bot.risk.escalation import DETAIL_LIMIT, DETAIL_SEPARATOR
from tests.harness import CommandLine, Ran
from tests.records import add_counselor, add_escalation, add_patient

Sessions = async_sessionmaker[AsyncSession]
LATE = datetime(2026, 12, 9, 3, 30, tzinfo=UTC)  # Tuesday 22:30 in New York


async def _export(cli: CommandLine, out: Path, admin: int | str) -> Ran:
    return await asyncio.to_thread(cli, "risk", "export-labels", "--out", str(out), "--admin", str(admin))


def _rows(out: Path) -> list[list[str]]:
    header, *lines = out.read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == list(COLUMNS)
    return [line.split("\t") for line in lines]


async def _audit(sessions: Sessions, action: str) -> list[AuditEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# ---- who may export ----------------------------------------------------------------------------------------


async def test_only_an_active_admin_may_export_and_every_try_is_audited(
    cli: CommandLine, sessions: Sessions, tmp_path: Path
) -> None:
    counselor = await add_counselor(sessions, "Dana")
    supervisor = await add_counselor(sessions, "Lee", role=CounselorRole.SUPERVISOR)
    former = await add_counselor(sessions, "Ola", role=CounselorRole.ADMIN, active=False)
    patient = await add_patient(sessions, counselor=counselor)
    await add_escalation(sessions, patient, "i want to die tonight", resolved_at=LATE)
    out = tmp_path / "labels.tsv"

    for who in (counselor.id, supervisor.id, former.id, 424242, 0):
        refused = await _export(cli, out, who)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error:") and refused.stderr.count("\n") == 1, refused.stderr
        assert "admin" in refused.stderr and refused.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written, not even in part
    refusals = await _audit(sessions, "risk.labels_export_refused")
    # `--admin` is a claim: the record also says which account on which machine made it.
    where = {"os_user": getpass.getuser(), "host": socket.gethostname()}
    assert [(e.actor_type, e.detail) for e in refusals] == [
        ("cli", {"counselor_id": who, **where}) for who in (counselor.id, supervisor.id, former.id, 424242, 0)
    ]

    admin = await add_counselor(sessions, "Ada", role=CounselorRole.ADMIN)
    done = await _export(cli, out, admin.id)
    assert done.returncode == 0, done.stderr
    # resolved on the 9th in UTC, the 8th in the clinic's time zone (DEFAULT_TIMEZONE, New York)
    assert _rows(out) == [["imminent", "suicide", "i want to die tonight", "real_concern", "2026-12"]]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # the clinical lead's, not everyone's on the machine
    assert [p.name for p in tmp_path.iterdir()] == ["labels.tsv"]
    [exported] = await _audit(sessions, "risk.labels_exported")
    assert (exported.actor_type, exported.actor_id, exported.detail) == (
        "counselor",
        admin.id,
        {"rows": 1, "alerts": 1, **where},
    )


async def test_a_folder_that_does_not_exist_is_one_line(cli: CommandLine, tmp_path: Path) -> None:
    ran = await _export(cli, tmp_path / "nowhere" / "labels.tsv", 1)
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1 and "no folder" in ran.stderr


# ---- what is in it -----------------------------------------------------------------------------------------

PLAN = {
    "help_people": "Mi hermana María 555-201-3344, my sponsor Jim (jim.b@example.org)",
    "professionals": "Dr. Okafor at the clinic",
    "distraction": "walk the dog with Keisha, the park",
}
WORDS_AND_WITHOUT = [
    (
        "tell maria and JIM goodbye from marisol vega, text me at (555) 201-3344 or jim.b@example.org",
        "tell [NAME] and [NAME] goodbye from [NAME], text me at [PHONE] or [EMAIL]",
    ),
    (
        "@riverboi knows, see https://example.com/x?a=1. and www.site.org, my id is 7012345678, dr okafor",
        "[HANDLE] knows, see [URL]. and [URL], my id is [ID], dr [NAME]",
    ),
    (  # a counselor's name is taken out too
        "i told Ada Lovelace everything",
        "i told [NAME] [NAME] everything",
    ),
    (
        "Marisol-Vega here.\tKEISHA has\nmy pills, call +1 (555) 987 6543",
        "[NAME] here. [NAME] has my pills, call [PHONE]",
    ),
    (  # ordinary numbers and words stay: crisis lines, doses, times, dates, the plan's common words
        "called 988 and 741741, took 20mg at 11:30 on 12/10/2026, walked the dog in the park",
        "called 988 and 741741, took 20mg at 11:30 on 12/10/2026, walked the dog in the park",
    ),
]


async def test_names_numbers_and_addresses_are_taken_out(
    cli: CommandLine, sessions: Sessions, tmp_path: Path
) -> None:
    admin = await add_counselor(sessions, "Ada Lovelace", role=CounselorRole.ADMIN)
    patient = await add_patient(
        sessions, counselor=admin, alias="Marisol Vega", telegram_user_id=7012345678, chat_id=7012345678
    )
    async with db.transaction(sessions) as session:
        session.add(SafetyPlan(patient_id=patient.id, **PLAN))
    detail = DETAIL_SEPARATOR.join(words for words, _ in WORDS_AND_WITHOUT)
    await add_escalation(sessions, patient, detail, verdict="false_alarm")

    ran = await _export(cli, tmp_path / "labels.tsv", admin.id)
    assert ran.returncode == 0, ran.stderr
    rows = _rows(tmp_path / "labels.tsv")
    assert [row[2] for row in rows] == [without for _, without in WORDS_AND_WITHOUT]
    assert {(row[0], row[1], row[3]) for row in rows} == {("imminent", "suicide", "false_alarm")}
    text = (tmp_path / "labels.tsv").read_text(encoding="utf-8").lower()
    for identifying in (
        "maria",
        "jim",
        "marisol",
        "vega",
        "okafor",
        "keisha",
        "ada",
        "lovelace",
        "3344",
        "7012345678",
        "@",
    ):
        assert identifying not in text, identifying


def test_a_patients_short_telegram_id_and_alias_words_are_taken_out_too() -> None:
    scrub = Scrubber([104233], "P-10423", [])
    assert scrub("p-10423 here, 104233 is me, 10423 pills") == "[NAME] here, [ID] is me, 10423 pills"
    assert Scrubber([1], "River", [])("down by the river, River") == "down by the [NAME], [NAME]"


def test_a_message_cut_short_by_the_details_limit_is_left_out() -> None:
    assert messages_of(f"one{DETAIL_SEPARATOR}two") == ["one", "two"]
    cut = f"{'o' * DETAIL_LIMIT}{DETAIL_SEPARATOR}newest"[-DETAIL_LIMIT:]  # as the escalation keeps it
    assert messages_of(cut) == ["newest"]
    assert messages_of("x" * DETAIL_LIMIT) == ["x" * DETAIL_LIMIT]  # one long message: all there is


# ---- who is never in it ------------------------------------------------------------------------------------


async def test_erased_patients_and_those_waiting_to_be_erased_are_never_exported(
    cli: CommandLine, sessions: Sessions, tmp_path: Path
) -> None:
    admin = await add_counselor(sessions, "Ada", role=CounselorRole.ADMIN)
    kept, erased, waiting, older, still_open, withdrew = [
        await add_patient(sessions, counselor=admin) for _ in range(6)
    ]
    await add_escalation(sessions, withdrew, "withdrew: i want to end it", verdict="real_concern")
    await add_escalation(sessions, kept, "kept: i cant go on", verdict="real_concern")
    await add_escalation(sessions, erased, "erased: i want to die", verdict="real_concern")
    await add_escalation(sessions, waiting, "waiting: goodbye everyone", verdict="false_alarm")
    await add_escalation(sessions, older, "older: no verdict asked", verdict=None)
    await add_escalation(
        sessions, still_open, "open: not resolved yet", verdict=None, status=EscalationStatus.OPEN
    )
    async with db.transaction(sessions) as session:
        await erasure.erase_patient(session, erased.id, reason="request")
        await erasure.defer(session, waiting.id)  # confirmed /deleteme, held back while an alert was open
        # Agreed, then withdrew consent (/revoke): their words are not exported either.
        session.add(Consent(patient_id=withdrew.id, scope=SCOPE, version="1", language="en", revoked_at=LATE))

    ran = await _export(cli, tmp_path / "labels.tsv", admin.id)
    assert ran.returncode == 0, ran.stderr
    assert [row[2] for row in _rows(tmp_path / "labels.tsv")] == ["kept: i cant go on"]
    assert (
        "left out: 1 resolved without a verdict, 2 of patients waiting to be erased or who withdrew consent"
        in ran.stderr
    )
    [exported] = await _audit(sessions, "risk.labels_exported")
    assert exported.detail == {
        "rows": 1,
        "alerts": 1,
        "os_user": getpass.getuser(),
        "host": socket.gethostname(),
    }
