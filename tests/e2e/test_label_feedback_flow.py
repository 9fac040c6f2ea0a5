"""Feedback from the care team (issue 19, item 5), through the stand-in: resolving an alert asks whether it
was a real concern or a false alarm (then, for a real concern, how it was resolved), in the counselor's
language; the verdict is kept with the alert, shown on it, and `risk export-labels` gives it to an admin with
the patient's words, redacted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core import db
from bot.core.models import AuditEvent, Counselor, CounselorRole, Escalation
from bot.risk.callbacks import ALERT_OUTCOME, AlertOutcome
from bot.risk.escalation import REAL_CONCERN_OUTCOMES, Outcome, Verdict
from tests.e2e.test_crisis_first_flow import WAIT
from tests.harness import BotHarness, BotMessage, CommandLine

ALIAS = "River"
# A crisis, and words the counselor finds were a figure of speech; both page as imminent.
REAL = {
    "en": "im going to kill myself tonight. River here, call 555 201 3344",
    "es": "me voy a matar esta noche. Soy River, llama al 555 201 3344",
}
REAL_EXPORTED = {
    "en": "im going to kill myself tonight. [NAME] here, call [PHONE]",
    "es": "me voy a matar esta noche. Soy [NAME], llama al [PHONE]",
}
FIGURE_OF_SPEECH = {
    "en": "if my team loses again im going to kill myself",
    "es": "si mi equipo pierde otra vez me voy a matar",
}


async def _alert(
    harness: BotHarness, counselor_user: int, user: int, words: str, language: str
) -> BotMessage:
    mark = harness.standin.mark(counselor_user)
    await harness.standin.send_text(user, words)
    level = harness.text("escalation.levels.imminent", language)
    return await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", language, level=level), after=mark, timeout=WAIT
    )


async def _newest(harness: BotHarness, patient_id: int) -> Escalation:
    async with harness.runtime.sessions() as session:
        found = await session.scalars(
            select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id.desc())
        )
        return found.first()  # type: ignore[return-value]


@pytest.mark.parametrize("language", ["en", "es"])
async def test_resolving_says_real_concern_or_false_alarm_and_the_export_carries_it(
    harness: BotHarness, cli: CommandLine, tmp_path: Path, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    async with db.transaction(harness.runtime.sessions) as session:
        (await session.get_one(Counselor, counselor_id)).language = language
    admin_id = await harness.add_counselor("Ada Okafor", CounselorRole.ADMIN)
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, language=language, alias=ALIAS)

    # A real concern: Resolve asks that first, then how it was resolved.
    alert = await _alert(harness, counselor_user, user, REAL[language], language)
    verdicts = await harness.tap(
        counselor_user,
        alert,
        harness.text("escalation.resolve_button", language),
        harness.part("escalation.choose_verdict", language),
    )
    assert verdicts.text == harness.text("escalation.choose_verdict", language)
    assert [label for label, _ in verdicts.buttons()] == [
        harness.text(f"escalation.verdicts.{verdict}", language) for verdict in Verdict
    ]
    outcomes = await harness.tap(
        counselor_user,
        verdicts,
        harness.text("escalation.verdicts.real_concern", language),
        harness.part("escalation.choose_outcome", language),
    )
    assert [label for label, _ in outcomes.buttons()] == [
        harness.text(f"escalation.outcomes.{outcome}", language) for outcome in REAL_CONCERN_OUTCOMES
    ]
    safe = harness.text("escalation.outcomes.safe", language)
    await harness.standin.tap(counselor_user, outcomes.message_id, dict(outcomes.buttons())[safe])
    resolved = harness.part(
        "escalation.resolved", language, counselor="Sam Reyes", outcome=safe, real_concern=True
    )
    shown = await harness.standin.wait_for(counselor_user, resolved)
    assert shown.message_id == alert.message_id  # the alert itself says who resolved it, and the verdict
    escalation = await _newest(harness, patient_id)
    assert (escalation.outcome, escalation.verdict) == ("safe", "real_concern")
    [asked] = [m for m in harness.standin.transcript(counselor_user) if m.message_id == verdicts.message_id]
    assert asked.buttons() == []  # answered: its buttons are gone

    # A false alarm resolves at once, with no second question.
    alert = await _alert(harness, counselor_user, user, FIGURE_OF_SPEECH[language], language)
    await harness.resolve_alert(counselor_user, alert, "Sam Reyes", "false_alarm", language)
    escalation = await _newest(harness, patient_id)
    assert (escalation.outcome, escalation.verdict) == ("false_alarm", "false_alarm")
    async with harness.runtime.sessions() as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "escalation.resolved").order_by(AuditEvent.id)
        )
        assert [e.detail for e in events] == [
            {"outcome": "safe", "verdict": "real_concern"},
            {"outcome": "false_alarm", "verdict": "false_alarm"},
        ]

    # The admin exports both, the patient's alias and number taken out.
    out = tmp_path / "labels.tsv"
    ran = await asyncio.to_thread(cli, "risk", "export-labels", "--out", str(out), "--admin", str(admin_id))
    assert ran.returncode == 0, ran.stderr
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()[1:]]
    assert [row[:4] for row in rows] == [
        ["imminent", "suicide", REAL_EXPORTED[language], "real_concern"],
        ["imminent", "suicide", FIGURE_OF_SPEECH[language], "false_alarm"],
    ]


async def test_the_outcome_buttons_from_before_the_verdict_still_resolve(harness: BotHarness) -> None:
    """ "How was it resolved?" messages sent before the verdict was asked keep working: the outcome alone, and
    the verdict it implies (emergency services: a real concern; safe: neither, so no label)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias=ALIAS)
    for outcome, verdict in ((Outcome.EMERGENCY, "real_concern"), (Outcome.SAFE, None)):
        alert = await _alert(harness, counselor_user, user, REAL["en"], "en")
        escalation = await _newest(harness, patient_id)
        old_button = ALERT_OUTCOME.pack(AlertOutcome(escalation.id, outcome))
        # the data a "How was it resolved?" message sent before the verdict was asked carries
        await harness.standin.tap_raw(counselor_user, alert.message_id, old_button)
        label = harness.text(f"escalation.outcomes.{outcome}")
        await harness.standin.wait_for(
            counselor_user,
            lambda m, shown=alert.message_id, said=label: m.message_id == shown and said in (m.text or ""),
        )
        escalation = await _newest(harness, patient_id)
        assert (escalation.outcome, escalation.verdict) == (outcome.value, verdict)
