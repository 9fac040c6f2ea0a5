"""The care team's side of an escalation: alerts to counselors, re-pages, their buttons, and /alerts.

The rules (who is paged, when, grouping, who may act) are in `bot.risk.escalation`; this module only
renders and sends. Alerts carry the least data (alias, level, category, time); the words behind an alert
are shown only when an authorised counselor taps "Show details", and that view is written to the audit log.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot
from telegram.error import TelegramError

from bot.core.db import transaction
from bot.core.models import (
    CRISIS_PATH,
    Counselor,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    Priority,
    ScreenStatus,
    utcnow,
)
from bot.handlers.base import Turn
from bot.handlers.guards import counselor_button, counselor_only
from bot.handlers.safety_plan import sections as plan_sections
from bot.outbox import dispatcher as delivery
from bot.outbox import store as outbox
from bot.outbox.dispatcher import keyboard
from bot.outbox.markup import Rows
from bot.risk import Category, RiskLevel, cssrs, safety_plan
from bot.risk import escalation as rules
from bot.risk.callbacks import (
    ACK_TOLD,
    ALERT_BUTTONS,
    ALERT_RESOLVED,
    ALERT_VERDICT,
    UNSEEN,
    AckTold,
    AlertButton,
    AlertOutcome,
    AlertResolved,
    AlertTap,
    AlertVerdict,
    pages_of,
)
from bot.risk.paging import alert_buttons, alert_text, local_time, page
from bot.workspace.reassignment import REASSIGNED

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

LIST_LIMIT = 10  # alerts shown by /alerts; the header says how many more
ACK_TOLD_KIND = "ack_told"  # the patient's "a counselor saw your message"


# ---- paging ------------------------------------------------------------------------------------------------


async def escalate(
    t: Turn, patient: Patient, level: RiskLevel, category: Category, source: str, detail: str | None
) -> rules.Raised:
    """Open or join an escalation from this turn. Its pages are written to the outbox in the same
    transaction, so they exist the moment the escalation does, and go out (first) once the turn commits."""
    now = utcnow()
    raised = await rules.raise_escalation(
        t.session, patient, level, category, source, detail, now, t.runtime.settings
    )
    log.info(
        "event=risk.escalated patient_id=%s escalation_id=%s source=%s paged=%s",
        patient.id,
        raised.escalation.id,
        source,
        raised.page_now,
    )
    if raised.page_now:
        await page(t.runtime, t.session, raised.escalation, now)
        t.wake_outbox()
    return raised


async def page_sent(
    runtime: Runtime, session: AsyncSession, row: outbox.Claimed, message_id: int
) -> delivery.FollowUp | None:
    """Keep each alert copy, so an acknowledgement can be shown on it. If one came while this copy was on
    its way, show it on this copy too. (The row lock orders this against an acknowledgement: either it sees
    this copy, or this sees it.)"""
    assert row.counselor_id is not None
    escalation_id = row.ref["escalation_id"]
    escalation = await session.get(Escalation, escalation_id, with_for_update=True)
    if escalation is None:  # erased meanwhile (/deleteme): nothing to keep, and no row may point at it
        return None
    if await _taken_off_the_team(session, row.id):
        return None  # a kept copy is a licence to the escalation; theirs ended while this was on its way
    session.add(
        EscalationAlert(
            escalation_id=escalation_id,
            counselor_id=row.counselor_id,
            chat_id=row.chat_id,
            message_id=message_id,
            stage=row.ref.get("stage", 0),
            sent_at=utcnow(),
        )
    )
    if escalation.status is EscalationStatus.OPEN:
        return None
    return lambda bot: _refresh_alerts(runtime, bot, escalation_id, None)


async def _taken_off_the_team(session: AsyncSession, outbox_id: int) -> bool:
    """The page was cancelled while being sent because its counselor left the patient's care team."""
    row = await session.get(OutboxMessage, outbox_id)
    return row is not None and row.status is OutboxStatus.CANCELLED and row.error == REASSIGNED


# ---- the counselor's buttons -------------------------------------------------------------------------------


@counselor_button(ALERT_BUTTONS, refused="escalation.refused")
async def on_alert_button(t: Turn, counselor: Counselor, button: AlertTap) -> None:
    action = button.action if isinstance(button, AlertButton) else _ACTIONS[type(button)]
    found = await rules.find_for(t.session, button.escalation_id, counselor, action)
    if isinstance(found, rules.Refusal):
        log.warning(
            "event=escalation.refused counselor_id=%s escalation_id=%s", counselor.id, button.escalation_id
        )
        t.answer(t.text("escalation.refused"))
        return
    escalation = found
    patient = await t.session.get(Patient, escalation.patient_id)
    assert patient is not None
    if action in _DECIDING and not _as_seen(button, escalation):
        log.info(
            "event=escalation.changed_since counselor_id=%s escalation_id=%s", counselor.id, escalation.id
        )
        await _show_changed(t, escalation, patient, counselor, old=_seen(button) == UNSEEN)
        return
    now = utcnow()
    if action == "det":
        rules.details_viewed(t.session, escalation, counselor)
        await _show_details(t, escalation, patient, counselor)
        return
    if action == "plan":
        rules.plan_viewed(t.session, escalation, counselor)
        await _show_plan(t, patient, counselor)
        return
    if action == "res":
        await _ask_verdict(t, escalation)
        return
    if isinstance(button, AlertVerdict) and button.verdict is rules.Verdict.REAL_CONCERN:
        await _ask_outcome(t, escalation)
        return
    if isinstance(button, AlertButton):
        done = rules.acknowledge(t.session, escalation, counselor, now)
        if done:
            told = action == "ack" and await _tell_patient(t, escalation, patient, counselor, now)
            log.info("event=escalation.patient_told escalation_id=%s told=%s", escalation.id, told)
            t.answer(t.text("escalation.ack_told" if told else "escalation.ack_quiet", alias=patient.alias))
    else:
        outcome, verdict = _resolution(button)
        action = "out"  # however it was resolved (the pages it cancels say so)
        done = rules.resolve(t.session, escalation, counselor, outcome, now, verdict)
        if done:
            log.info("event=escalation.resolved escalation_id=%s", escalation.id)
            t.clear_buttons()
    if not done:
        t.answer(t.text("escalation.already"))
    if done:
        # Pages of this escalation not yet sent are moot now.
        await outbox.cancel(t.session, pages_of(escalation.id), reason=action)
        runtime, bot, escalation_id = t.runtime, t.update.get_bot(), escalation.id
        query = t.update.callback_query
        message = query.message if query else None
        acked = action in ("ack", "ackq")
        tapped = (counselor.id, message.chat.id, message.message_id) if message and acked else None
        t.then(lambda: _refresh_alerts(runtime, bot, escalation_id, tapped))


# What the audit log names a refused tap of each kind of resolve button.
_ACTIONS: dict[type, str] = {AlertOutcome: "out", AlertVerdict: "is", AlertResolved: "out"}
# The taps that acknowledge or resolve (or start to): only on the alert as the counselor saw it.
_DECIDING = ("ack", "ackq", "res", "is", "out")


def _seen(button: AlertTap) -> int:
    """What the counselor saw when the button was sent (UNSEEN: an outcome button from before it was kept)."""
    return UNSEEN if isinstance(button, AlertOutcome) else button.seen


def _as_seen(button: AlertTap, escalation: Escalation) -> bool:
    """Nothing changed since the button was sent, or the alert is resolved (the tap is answered as before)."""
    return escalation.status is EscalationStatus.RESOLVED or rules.as_seen(escalation, _seen(button))


async def _show_changed(
    t: Turn, escalation: Escalation, patient: Patient, counselor: Counselor, *, old: bool
) -> None:
    """The patient wrote again since these buttons were sent (or they are from before that was kept): nothing
    is done. The tapped message loses its buttons; the alert as it is now comes with its own."""
    acknowledger = (
        await t.session.get(Counselor, escalation.acknowledged_by) if escalation.acknowledged_by else None
    )
    t.clear_buttons()
    await t.send(
        alert_text(
            t.runtime,
            "escalation.changed",
            escalation,
            patient,
            counselor,
            new_message=not old,
            wrote_at=local_time(t.runtime, escalation.last_signal_at, counselor),
            acknowledged=escalation.status is EscalationStatus.ACKNOWLEDGED,
            counselor=acknowledger.name if acknowledger else "?",
        ),
        buttons=alert_buttons(t.runtime, escalation, counselor.language),
    )


def _resolution(
    button: AlertOutcome | AlertVerdict | AlertResolved,
) -> tuple[rules.Outcome, rules.Verdict | None]:
    """The outcome and verdict a resolving tap says: a false alarm; a real concern and how it was resolved;
    or only an outcome (the buttons from before the verdict was asked)."""
    if isinstance(button, AlertVerdict):
        return rules.Outcome.FALSE_ALARM, rules.Verdict.FALSE_ALARM
    if isinstance(button, AlertResolved):
        return button.outcome, button.verdict
    return button.outcome, None


async def _ask_verdict(t: Turn, escalation: Escalation) -> None:
    """Resolve's first step: was it a real concern or a false alarm? (The label the clinical lead reviews.)"""
    if escalation.status is EscalationStatus.RESOLVED:
        t.answer(t.text("escalation.already"))
        return
    seen = rules.seen(escalation)
    await t.reply(
        "escalation.choose_verdict",
        buttons=[
            [
                (t.text(f"escalation.verdicts.{v}"), ALERT_VERDICT.pack(AlertVerdict(escalation.id, v, seen)))
                for v in rules.Verdict
            ]
        ],
    )


async def _ask_outcome(t: Turn, escalation: Escalation) -> None:
    """A real concern: how was it resolved?"""
    if escalation.status is EscalationStatus.RESOLVED:
        t.answer(t.text("escalation.already"))
        return
    real, seen = rules.Verdict.REAL_CONCERN, rules.seen(escalation)
    t.clear_buttons()  # the question is answered; "How was it resolved?" comes in a message of its own
    await t.reply(
        "escalation.choose_outcome",
        buttons=[
            [
                (
                    t.text(f"escalation.outcomes.{o}"),
                    ALERT_RESOLVED.pack(AlertResolved(escalation.id, o, real, seen)),
                )
            ]
            for o in rules.REAL_CONCERN_OUTCOMES
        ],
    )


async def _tell_patient(
    t: Turn, escalation: Escalation, patient: Patient, counselor: Counselor, now: datetime
) -> bool:
    """Close the loop: the patient hears that this counselor saw their message and will contact them
    (through the outbox, once per escalation, sent after this turn commits). False if they cannot be told
    (no longer active: withdrawn consent, discharged)."""
    if patient.status not in CRISIS_PATH:
        return False
    name = counselor.name.split()[0] if counselor.name.split() else counselor.name
    told = outbox.Planned(
        key=ACK_TOLD.pack(AckTold(escalation.id)),
        kind=ACK_TOLD_KIND,
        chat_id=patient.chat_id,
        text=t.runtime.text("escalation.patient_told", patient.language, counselor=name),
        due_at=now,
        priority=Priority.URGENT,
        subject_patient_id=patient.id,  # in aftercare too (`patient_id` would cancel it for a non-active one)
    )
    if await outbox.enqueue(t.session, [told]):
        t.wake_outbox()
    return True


async def _show_details(t: Turn, escalation: Escalation, patient: Patient, counselor: Counselor) -> None:
    """The patient's words behind the alert, then what any C-SSRS screener behind it found."""
    runtime = t.runtime
    if escalation.detail:
        await t.send(
            alert_text(
                runtime, "escalation.details", escalation, patient, counselor, detail=escalation.detail
            )
        )
    screens = await cssrs.screens_of(t.session, escalation.id)
    for screen in screens:
        language = counselor.language
        answers = " · ".join(
            f"{runtime.text(f'escalation.screener_questions.{q}', language)}: "
            f"{runtime.text('escalation.screener_yes' if yes else 'escalation.screener_no', language)}"
            for q, yes in screen.answers.items()
        )
        await t.send(
            runtime.text(
                "escalation.screener",
                language,
                time=local_time(runtime, screen.started_at, counselor),
                risk=runtime.text(f"escalation.screener_risk.{screen.result or 'none'}", language),
                unfinished=screen.status is not ScreenStatus.COMPLETE,
                declined=screen.status is ScreenStatus.DECLINED,
                below=screen.result is not None
                and cssrs.LEVELS[cssrs.ColumbiaRisk(screen.result)] < RiskLevel.parse(escalation.level),
                level=runtime.text(f"escalation.levels.{escalation.level}", language),
                answers=answers,
                not_asked=" · ".join(
                    runtime.text(f"escalation.screener_questions.{q}", language)
                    for q in cssrs.not_asked(screen)
                ),
            )
        )
    if not escalation.detail and not screens:
        await t.reply("escalation.no_details")


async def _show_plan(t: Turn, patient: Patient, counselor: Counselor) -> None:
    plan = await safety_plan.plan_of(t.session, patient.id)
    if not safety_plan.filled(plan):
        await t.reply("plan.counselor_none", alias=patient.alias)
        return
    assert plan is not None
    await t.reply(
        "plan.counselor_view",
        alias=patient.alias,
        time=local_time(t.runtime, plan.updated_at, counselor),
        sections=plan_sections(t, plan),
    )


async def _refresh_alerts(
    runtime: Runtime, bot: Bot, escalation_id: int, tapped: tuple[int, int, int] | None
) -> None:
    """Show an acknowledgement or resolution on every counselor's copy of the alert, and on the message that
    was tapped (counselor id, chat id, message id) even if it is a copy still being recorded. The edits are
    worked out in a short transaction and sent after it, never while it holds the database."""
    edits: list[tuple[int, int, str, Rows]] = []
    async with runtime.sessions() as session:
        escalation = await session.get(Escalation, escalation_id)
        patient = await session.get(Patient, escalation.patient_id) if escalation else None
        if escalation is None or patient is None:
            return
        actor_id = escalation.resolved_by or escalation.acknowledged_by
        actor = await session.get(Counselor, actor_id) if actor_id else None
        targets = {
            (a.chat_id, a.message_id): a.counselor_id
            for a in await rules.alerts_of(session, escalation_id)
            if a.message_id is not None
        }
        if tapped is not None:
            targets.setdefault((tapped[1], tapped[2]), tapped[0])
        resolved = escalation.status is EscalationStatus.RESOLVED
        for (chat_id, message_id), counselor_id in targets.items():
            counselor = await session.get(Counselor, counselor_id)
            if counselor is None:
                continue
            extra: dict[str, object] = {"counselor": actor.name if actor else "?"}
            if resolved:
                extra["outcome"] = runtime.text(
                    f"escalation.outcomes.{escalation.outcome}", counselor.language
                )
                extra["real_concern"] = escalation.verdict == rules.Verdict.REAL_CONCERN
            key = "escalation.resolved" if resolved else "escalation.acknowledged"
            text = alert_text(runtime, key, escalation, patient, counselor, **extra)
            edits.append((chat_id, message_id, text, alert_buttons(runtime, escalation, counselor.language)))
    for chat_id, message_id, text, rows in edits:
        try:
            await bot.edit_message_text(text, chat_id, message_id, reply_markup=keyboard(rows))
        except TelegramError as error:
            log.warning(
                "event=escalation.refresh_failed escalation_id=%s kind=%s",
                escalation_id,
                type(error).__name__,
            )


# ---- /alerts -----------------------------------------------------------------------------------------------


@counselor_only
async def alerts_command(t: Turn, counselor: Counselor) -> None:
    """A counselor's open escalations, most urgent first, each with its buttons. The copies are kept like
    alerts, so an acknowledgement by anyone shows on them too."""
    found = await rules.open_for(t.session, counselor)
    if not found:
        await t.reply("escalation.none_open")
        return
    runtime, bot, counselor_id, chat_id = t.runtime, t.update.get_bot(), counselor.id, t.chat_id
    ids = [e.id for e in found]
    t.then(lambda: _list(runtime, bot, counselor_id, chat_id, ids))


async def _list(runtime: Runtime, bot: Bot, counselor_id: int, chat_id: int, ids: list[int]) -> None:
    """Send the header, then each alert; each copy is recorded as soon as it is sent (in a short transaction
    of its own, never one held across the send)."""
    async with runtime.sessions() as session:
        counselor = await session.get(Counselor, counselor_id)
        if counselor is None:
            return
        shown = ids[:LIST_LIMIT]
        header = runtime.text(
            "escalation.open_list", counselor.language, count=len(ids), more=len(ids) - len(shown)
        )
    await bot.send_message(chat_id, header)
    for escalation_id in shown:
        async with runtime.sessions() as session:
            escalation = await session.get(Escalation, escalation_id)
            patient = await session.get(Patient, escalation.patient_id) if escalation else None
            if escalation is None or patient is None:
                continue
            acknowledger = (
                await session.get(Counselor, escalation.acknowledged_by)
                if escalation.acknowledged_by
                else None
            )
            open_ = escalation.status is EscalationStatus.OPEN
            text = alert_text(
                runtime,
                "escalation.listed_open" if open_ else "escalation.acknowledged",
                escalation,
                patient,
                counselor,
                counselor=acknowledger.name if acknowledger else "?",
            )
            rows = alert_buttons(runtime, escalation, counselor.language)
            stage = escalation.stage
        sent = await bot.send_message(chat_id, text, reply_markup=keyboard(rows))
        async with transaction(runtime.sessions) as session:
            session.add(
                EscalationAlert(
                    escalation_id=escalation_id,
                    counselor_id=counselor_id,
                    chat_id=chat_id,
                    message_id=sent.message_id,
                    stage=stage,
                    sent_at=utcnow(),
                )
            )
