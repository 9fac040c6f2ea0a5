"""A stolen database says nothing about who uses drugs, and erasure leaves no id behind (issue 20, items 2-3).

A whole scripted journey through the stand-in and the real bot: a counselor links, a patient enrolls, checks
in and reports a use that pages, writes crisis words, answers the C-SSRS screener, starts a safety plan; the
counselor looks at their caseload and gets a digest. Then every table and column of the raw database (the
SQLite file, or PostgreSQL) is read without the key: neither Telegram id, nor any value that says "used",
"imminent" or "suicide", may be in it in clear. After /deleteme, no table may hold the erased patient's id
or Telegram id in any column, JSON included, raw or decrypted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core import db
from bot.core.models import InviteKind
from bot.risk import cssrs
from bot.workspace import digests
from bot.workspace.rules import digest_key
from tests.e2e.test_erasure_flow import _digest_due, _digests, _recorded_sent
from tests.e2e.test_screener_flow import WAIT, _agree, _q
from tests.e2e.test_use_alert_flow import _high_alert, _to_use_question
from tests.harness import BotHarness, until
from tests.rawdb import CLINICAL_WORDS, Found, raw_values, read_values, search
from tests.records import add_patient

PATIENT_USER = 6_120_487_935  # Telegram ids no other number in the database comes near
COUNSELOR_USER = 6_120_488_017
ERASED_ID = 48_213  # the erased patient's own id, as distinct (see _next_patient_id)
CRISIS = "im going to kill myself tonight"


async def _counselor(harness: BotHarness) -> int:
    """Sam, linked to Telegram as COUNSELOR_USER (with a counselor invite, as a real counselor links)."""
    counselor_id = await harness.add_counselor("Sam")
    code = await harness.invite(InviteKind.COUNSELOR, counselor_id)
    await harness.say(
        COUNSELOR_USER, f"/start {code}", harness.part("counselor.welcome", name="Sam", role="counselor")
    )
    return counselor_id


async def _next_patient_id(harness: BotHarness, patient_id: int) -> None:
    """The next patient enrolled gets this id: another patient (who stays) takes the one before it."""
    await add_patient(harness.runtime.sessions, id=patient_id - 1)
    if harness.runtime.engine.dialect.name == "postgresql":
        async with db.transaction(harness.runtime.sessions) as session:
            await session.execute(text("SELECT setval('patients_id_seq', :last)"), {"last": patient_id - 1})


async def _check_in_with_use(harness: BotHarness) -> None:
    """A check-in that reports opioid use (a high alert), with a note."""
    use = await _to_use_question(harness, PATIENT_USER, "en")
    what = await harness.tap(
        PATIENT_USER, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what")
    )
    mark = harness.standin.mark(PATIENT_USER)
    await harness.tap(
        PATIENT_USER,
        what,
        harness.text("checkin.buttons.use_what.opioid"),
        harness.part("use.told_high"),
    )
    await harness.standin.wait_for(PATIENT_USER, harness.part("checkin.ask.note"), after=mark)
    await harness.say(PATIENT_USER, "rough night", harness.part("checkin.thanks"))
    await _high_alert(harness, COUNSELOR_USER, PATIENT_USER)


async def _crisis_and_screener(harness: BotHarness) -> None:
    """Crisis words (an urgent alert), then the screener: intent, yes."""
    mark = harness.standin.mark(PATIENT_USER)
    await harness.standin.send_text(PATIENT_USER, CRISIS)
    permission = await harness.standin.wait_for(
        PATIENT_USER, harness.text("cssrs.intro_alerted"), after=mark, timeout=WAIT
    )
    await harness.standin.wait_for(
        COUNSELOR_USER, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    await _agree(harness, PATIENT_USER, permission)
    yes, no = harness.text("cssrs.yes_button"), harness.text("cssrs.no_button")
    await harness.say(PATIENT_USER, "no", _q(harness, cssrs.Question.THOUGHTS))
    question = await harness.say(PATIENT_USER, "yes", _q(harness, cssrs.Question.METHOD))
    question = await harness.tap(PATIENT_USER, question, no, _q(harness, cssrs.Question.INTENT))
    await harness.tap(PATIENT_USER, question, yes, "988")


async def _safety_plan(harness: BotHarness) -> None:
    await harness.start_safety_plan(PATIENT_USER)
    step = await harness.say(
        PATIENT_USER, "I stop answering my phone", harness.part("plan.steps.coping.title")
    )
    await harness.tap(PATIENT_USER, step, harness.text("plan.stop_button"), harness.part("plan.stopped"))


async def _caseload_and_digest(harness: BotHarness, counselor_id: int) -> None:
    """The counselor's /caseload (audited with the patients it showed) and today's digest, sent."""
    await harness.say(COUNSELOR_USER, "/caseload", harness.part("caseload.header", count=1))
    days = await _digest_due(harness, counselor_id)
    assert await digests.send_digests(harness.runtime) == 1
    await harness.standin.wait_for(
        COUNSELOR_USER, lambda m: m in _digests(harness, COUNSELOR_USER), timeout=10
    )
    await _recorded_sent(harness, digest_key(counselor_id, days[counselor_id]))


def _report(found: list[Found]) -> str:
    return "\n".join(f"{f.table}.{f.column} = {f.value}" for f in found[:40])


async def test_a_copy_of_the_database_names_no_telegram_account_and_no_use_or_risk(
    harness: BotHarness,
) -> None:
    counselor_id = await _counselor(harness)
    await harness.enroll(PATIENT_USER, counselor_id)
    await _check_in_with_use(harness)
    await _crisis_and_screener(harness)
    await _safety_plan(harness)
    await _caseload_and_digest(harness, counselor_id)

    stored = await raw_values(harness.runtime.engine)
    tables = {table for table, _, _ in stored}
    # The journey reached the tables that matter (else the search below would prove little).
    for table in ("patients", "checkins", "escalations", "risk_signals", "suicide_screens", "safety_plans"):
        assert table in tables
    found = search(stored, numbers=(PATIENT_USER, COUNSELOR_USER), words=CLINICAL_WORDS)
    assert found == [], _report(found)
    # ...while the bot, with the key, still reads all of it.
    read = await read_values(harness.runtime.sessions)
    assert search(read, numbers=(PATIENT_USER,)), "the patient's Telegram id is stored (encrypted)"
    assert search(read, words=("imminent", "suicide")), "the alert's level and category are stored"


async def test_after_deleteme_no_table_holds_the_erased_patients_id(harness: BotHarness) -> None:
    counselor_id = await _counselor(harness)
    await _next_patient_id(harness, ERASED_ID)
    assert await harness.enroll(PATIENT_USER, counselor_id) == ERASED_ID
    await _check_in_with_use(harness)
    alert = await _high_alert(harness, COUNSELOR_USER, PATIENT_USER)
    await harness.resolve_alert(COUNSELOR_USER, alert, "Sam")
    await _caseload_and_digest(harness, counselor_id)
    before = await raw_values(harness.runtime.engine)
    assert search(before, numbers=(ERASED_ID,)), "the patient's id is in the database before /deleteme"

    prompt = await harness.say(PATIENT_USER, "/deleteme", harness.part("deleteme.confirm_prompt"))
    await harness.tap(
        PATIENT_USER, prompt, harness.text("deleteme.confirm_button"), harness.part("deleteme.done")
    )
    assert await harness.patient(PATIENT_USER) is None

    async def handled() -> bool:  # the confirmation's own inbox row is gone or done
        async with harness.runtime.sessions() as session:
            return not await session.scalar(text("SELECT count(*) FROM inbox WHERE status = 'pending'"))

    await until(handled, 10, "the inbox to be handled")
    numbers = (ERASED_ID, PATIENT_USER)
    found = search(await raw_values(harness.runtime.engine), numbers=numbers)
    found += search(await read_values(harness.runtime.sessions), numbers=numbers)
    assert found == [], _report(found)


async def test_after_deleteme_the_sqlite_files_keep_none_of_the_erased_ciphertext(
    harness: BotHarness,
) -> None:
    """The rows are gone, and so are their bytes: the ciphertext of a reply the patient wrote and of their
    Telegram id is in neither the database file (`secure_delete`: another patient's rows stay on the same
    pages) nor its write-ahead log (emptied after the erasure), where ENCRYPTION_KEY would still read it. On
    PostgreSQL the server's own VACUUM, WAL and backups decide (README: "What the database holds")."""
    if harness.runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite files only")
    counselor_id = await _counselor(harness)
    other = harness.new_user_id()
    for user, alias in ((PATIENT_USER, "River"), (other, "Lake")):
        await harness.enroll(user, counselor_id, alias=alias)
        await harness.say(
            COUNSELOR_USER, f"/message {alias} hello", harness.part("messages.sent", alias=alias)
        )
        message = await harness.standin.wait_for(
            user, harness.part("messages.from_counselor", counselor="Sam")
        )
        await harness.tap(
            user,
            message,
            harness.text("messages.reply_button"),
            harness.part("messages.type_reply", counselor="Sam"),
        )
        await harness.say(
            user,
            f"{alias}: my sister visited",
            harness.part("messages.reply_sent", counselor="Sam", told=True),
        )
    async with harness.runtime.sessions() as session:
        river = await session.scalar(text("SELECT id FROM patients WHERE alias = 'River'"))
        tokens = [
            str(token).encode()
            for token in (
                await session.scalar(
                    text("SELECT text FROM care_message_replies WHERE patient_id = :p"), {"p": river}
                ),
                await session.scalar(
                    text("SELECT telegram_user_id FROM patients WHERE id = :p"), {"p": river}
                ),
            )
        ]
    database = Path(str(harness.runtime.engine.url.database))

    def files() -> bytes:
        return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*") if p.is_file())

    assert all(token in files() for token in tokens)
    prompt = await harness.say(PATIENT_USER, "/deleteme", harness.part("deleteme.confirm_prompt"))
    await harness.tap(
        PATIENT_USER, prompt, harness.text("deleteme.confirm_button"), harness.part("deleteme.done")
    )
    assert await harness.patient(PATIENT_USER) is None and await harness.patient(other) is not None
    assert [token for token in tokens if token in files()] == []
