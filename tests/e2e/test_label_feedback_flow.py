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
from bot.core.models import AuditEvent, Counselor, CounselorRole, Escalation, EscalationStatus
from bot.risk.callbacks import (
    ALERT,
    ALERT_OUTCOME,
    ALERT_VERDICT,
    UNSEEN,
    AlertButton,
    AlertOutcome,
    AlertVerdict,
)
from bot.risk.escalation import REAL_CONCERN_OUTCOMES, Outcome, Verdict
from tests.e2e.test_crisis_first_flow import WAIT
from tests.harness import BotHarness, BotMessage, CommandLine, alert_button

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


HIGH = "i want to die"  # pages as high
IMMINENT = "im going to kill myself tonight"  # joins the same alert, raises it to imminent, pages again


@pytest.mark.parametrize("language", ["en", "es"])
async def test_buttons_tapped_after_the_patient_wrote_again_resolve_nothing(
    harness: BotHarness, language: str
) -> None:
    """The counselor is asked "real concern or false alarm?" about a high alert; the patient then writes an
    imminent message, which joins that alert, raises it and pages again. False alarm, tapped now, resolves
    nothing (the paging goes on, no label is kept): the counselor is told the patient wrote again and gets the
    alert as it is now, with its buttons. Acknowledge on the first copy is refused the same way; the new
    buttons work."""
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    async with db.transaction(harness.runtime.sessions) as session:
        (await session.get_one(Counselor, counselor_id)).language = language
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias=ALIAS)
    level = {lv: harness.text(f"escalation.levels.{lv}", language) for lv in ("high", "imminent")}
    await harness.say(user, HIGH, "988")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", language, level=level["high"])
    )
    verdicts = await harness.tap(
        counselor_user,
        alert,
        harness.text("escalation.resolve_button", language),
        harness.part("escalation.choose_verdict", language),
    )
    await harness.say(user, IMMINENT, "988")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.repage", language, level=level["imminent"])
    )

    changed = harness.part("escalation.changed", language, new_message=True, alias=ALIAS)
    ack = harness.text("escalation.acknowledge_button", language)
    for message, label in (
        (verdicts, harness.text("escalation.verdicts.false_alarm", language)),
        (alert, ack),
    ):
        now = await harness.tap(counselor_user, message, label, changed)
        assert harness.part("escalation.listed_open", language, level=level["imminent"]) in (now.text or "")
        escalation = await _newest(harness, patient_id)
        assert (escalation.status, escalation.level) == (EscalationStatus.OPEN, "imminent")
        assert (escalation.outcome, escalation.verdict, escalation.acknowledged_by) == (None, None, None)
        assert escalation.next_page_at is not None  # still paged
        [tapped] = [
            m for m in harness.standin.transcript(counselor_user) if m.message_id == message.message_id
        ]
        assert tapped.buttons() == []  # the stale buttons are gone; the alert as it is now has its own

    # The buttons of the alert as it is now act on it (and the message shows it).
    acknowledged = harness.part("escalation.acknowledged", language, counselor="Sam Reyes")
    await harness.standin.tap(counselor_user, now.message_id, dict(now.buttons())[ack])
    await harness.standin.wait_for(
        counselor_user, lambda m: m.message_id == now.message_id and acknowledged in (m.text or "")
    )
    escalation = await _newest(harness, patient_id)
    assert (escalation.status, escalation.acknowledged_by) == (EscalationStatus.ACKNOWLEDGED, counselor_id)


async def test_a_message_that_pages_nobody_leaves_the_alerts_buttons_working(harness: BotHarness) -> None:
    """The patient writes again at the same level: the message joins the alert and pages nobody, so the
    counselor has no newer buttons; the ones they have still acknowledge it (a patient who keeps writing
    must not keep Acknowledge refused)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias=ALIAS)
    high = harness.text("escalation.levels.high")
    await harness.say(user, HIGH, "988")
    alert = await harness.standin.wait_for(counselor_user, harness.part("escalation.alert", level=high))
    mark = harness.standin.mark(counselor_user)
    await harness.say(user, HIGH, "988")
    joined = await _newest(harness, patient_id)
    assert joined.last_signal_at > joined.created_at  # it joined the same alert
    assert harness.standin.transcript(counselor_user)[mark:] == []  # and paged nobody
    acknowledged = harness.part("escalation.acknowledged", counselor="Sam Reyes")
    await harness.standin.tap(counselor_user, alert.message_id, alert_button(alert, "ack"))
    await harness.standin.wait_for(
        counselor_user, lambda m: m.message_id == alert.message_id and acknowledged in (m.text or "")
    )
    escalation = await _newest(harness, patient_id)
    assert (escalation.status, escalation.acknowledged_by) == (EscalationStatus.ACKNOWLEDGED, counselor_id)


async def test_buttons_from_before_they_said_what_was_seen_resolve_nothing(harness: BotHarness) -> None:
    """Buttons already in counselors' chats that do not say what the counselor saw ("How was it resolved?"
    from before the verdict was asked; alert and verdict buttons from before that was carried) acknowledge
    and resolve nothing: the tapped message loses them, and the counselor gets the alert as it is now, with
    buttons that work."""
    counselor_user, counselor_id = await harness.link_counselor("Sam Reyes")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id, alias=ALIAS)
    alert = await _alert(harness, counselor_user, user, REAL["en"], "en")
    escalation = await _newest(harness, patient_id)
    out_of_date = harness.part("escalation.changed", new_message=False, alias=ALIAS)
    for old_button in (
        ALERT_OUTCOME.pack(AlertOutcome(escalation.id, Outcome.EMERGENCY)),
        ALERT_VERDICT.pack(AlertVerdict(escalation.id, Verdict.FALSE_ALARM, UNSEEN)),
        ALERT.pack(AlertButton(escalation.id, "ack", UNSEEN)),
    ):
        mark = harness.standin.mark(counselor_user)
        await harness.standin.tap_raw(counselor_user, alert.message_id, old_button)
        now = await harness.standin.wait_for(counselor_user, out_of_date, after=mark)
        assert harness.text("escalation.acknowledge_button") in dict(now.buttons())
        escalation = await _newest(harness, patient_id)
        assert (escalation.status, escalation.outcome, escalation.verdict) == (
            EscalationStatus.OPEN,
            None,
            None,
        )
        [tapped] = [m for m in harness.standin.transcript(counselor_user) if m.message_id == alert.message_id]
        assert tapped.buttons() == []
    # The alert as it is now resolves it, and every copy of the alert says so.
    await harness.resolve_alert(counselor_user, now, "Sam Reyes", "emergency", shown_on=alert)
    escalation = await _newest(harness, patient_id)
    assert (escalation.outcome, escalation.verdict) == ("emergency", "real_concern")
