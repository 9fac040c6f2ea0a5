"""Crisis responses to patients, alerts to the care team, and the counselors' buttons on those alerts.

The rules (who is paged, when, grouping, who may act) are in `bot.escalation`; this module only renders and
sends. Alerts carry the least data (alias, level, category, time); the words behind an alert are shown only
when an authorised counselor taps "Show details", and that view is written to the audit log.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, Update
from telegram.error import TelegramError

from bot import escalation as rules
from bot.db import transaction
from bot.handlers.base import Button, Context, Rows, Turn, keyboard, turn
from bot.models import Counselor, Escalation, EscalationAlert, EscalationStatus, Patient, utcnow
from bot.risk import Category, FollowUp, RiskLevel, Screening

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

ALERT_PATTERN = r"^esc:\d{1,12}:(ack|res|det|out:(safe|emergency|false_alarm|other))$"
SAFETY_PATTERN = r"^rsk:(safe|help)$"
TIME_FORMAT = "%b %d, %H:%M"


async def respond(t: Turn, patient: Patient, screening: Screening, text: str, *, source: str) -> bool:
    """Answer a risk signal at once: crisis resources for imminent, a kind word for high (with the care team
    told, always: no secret surveillance), or a safety question when an imminent signal came softened.
    Returns True if the patient was answered here (moderate signals are left to the caller)."""
    now = utcnow()
    level = await rules.record_signal(t.session, patient, screening, source, now, t.runtime.settings)
    if level >= RiskLevel.HIGH:
        category = screening.categories[0] if screening.categories else Category.HOPELESS
        raised = await rules.raise_escalation(
            t.session, patient, level, category, source, text, now, t.runtime.settings
        )
        log.info(
            "event=risk.escalated patient_id=%s escalation_id=%s level=%s category=%s paged=%s",
            patient.id,
            raised.escalation.id,
            level.label,
            category,
            raised.page_now,
        )
        if level is RiskLevel.IMMINENT:
            await t.reply("crisis.imminent", overdose=Category.OVERDOSE in screening.categories)
        elif category in (Category.RELAPSE, Category.USE_PLAN):
            await t.reply(
                "crisis.high_relapse", buttons=[[(t.text("crisis.try_exercise_button"), "cope:menu")]]
            )
        else:
            await t.reply("crisis.high")
        if raised.page_now:
            runtime, bot, escalation_id = t.runtime, t.update.get_bot(), raised.escalation.id
            t.then(lambda: page(runtime, bot, escalation_id))
        return True
    if screening.follow_up is not None:
        log.info("event=risk.safety_check patient_id=%s follow_up=%s", patient.id, screening.follow_up)
        await t.reply("crisis.safety_check", buttons=_safety_buttons(t))
        return True
    return False


def _safety_buttons(t: Turn) -> Rows:
    return [[(t.text("crisis.safe_button"), "rsk:safe"), (t.text("crisis.not_safe_button"), "rsk:help")]]


async def offer_exercise(t: Turn) -> None:
    await t.reply("crisis.moderate", buttons=[[(t.text("crisis.try_exercise_button"), "cope:menu")]])


async def on_safety_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    answer = query.data.split(":")[1]
    async with turn(update, context) as t:
        await query.answer()
        t.clear_buttons()
        patient = t.active_patient
        if patient is None:
            return
        if answer == "safe":
            log.info("event=risk.safety_check.safe patient_id=%s", patient.id)
            await t.reply("crisis.safe_reply")
            return
        screening = Screening(RiskLevel.IMMINENT, (Category.SUICIDE,), (), FollowUp.CSSRS)
        await respond(t, patient, screening, "", source="safety_check")


# ---- paging ------------------------------------------------------------------------------------------------


def _local(runtime: Runtime, moment: datetime, counselor: Counselor) -> str:
    try:
        zone = ZoneInfo(counselor.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo(runtime.settings.default_timezone)
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def _alert_text(
    runtime: Runtime,
    key: str,
    escalation: Escalation,
    patient: Patient,
    reader: Counselor,
    **extra: object,
) -> str:
    language = reader.language
    return runtime.text(
        key,
        language,
        level=runtime.text(f"escalation.levels.{escalation.level}", language),
        category=runtime.text(f"escalation.categories.{escalation.category}", language),
        alias=patient.alias,
        time=_local(runtime, escalation.created_at, reader),
        **extra,
    )


def _alert_buttons(runtime: Runtime, escalation: Escalation, language: str) -> Rows:
    prefix = f"esc:{escalation.id}"
    rows: list[list[Button]] = []
    if escalation.status is EscalationStatus.OPEN:
        rows.append([(runtime.text("escalation.acknowledge_button", language), f"{prefix}:ack")])
    if escalation.status is not EscalationStatus.RESOLVED:
        rows.append([(runtime.text("escalation.resolve_button", language), f"{prefix}:res")])
    rows.append([(runtime.text("escalation.details_button", language), f"{prefix}:det")])
    return rows


async def page(runtime: Runtime, bot: Bot, escalation_id: int) -> None:
    """Send this escalation's alert to whoever its stage pages, if it is still open and due."""
    async with transaction(runtime.sessions) as session:
        escalation = await session.get(Escalation, escalation_id, with_for_update=True)
        now = utcnow()
        if (
            escalation is None
            or escalation.status is not EscalationStatus.OPEN
            or escalation.next_page_at is None
            or escalation.next_page_at > now
        ):
            return
        await _page_locked(runtime, bot, session, escalation, now)


async def _page_locked(
    runtime: Runtime, bot: Bot, session: AsyncSession, escalation: Escalation, now: datetime
) -> None:
    patient = await session.get(Patient, escalation.patient_id)
    assert patient is not None
    repage = escalation.alerted_at is not None
    rules.mark_paged(escalation, now, runtime.settings)
    counselors = await rules.recipients(session, escalation)
    if not counselors:
        log.error("event=escalation.nobody_to_page escalation_id=%s", escalation.id)
    for counselor in counselors:
        assert counselor.chat_id is not None
        text = _alert_text(
            runtime, "escalation.repage" if repage else "escalation.alert", escalation, patient, counselor
        )
        try:
            sent = await bot.send_message(
                counselor.chat_id,
                text,
                reply_markup=keyboard(_alert_buttons(runtime, escalation, counselor.language)),
            )
        except TelegramError as error:
            log.warning(
                "event=escalation.page_failed escalation_id=%s counselor_id=%s kind=%s",
                escalation.id,
                counselor.id,
                type(error).__name__,
            )
            continue
        session.add(
            EscalationAlert(
                escalation_id=escalation.id,
                counselor_id=counselor.id,
                chat_id=counselor.chat_id,
                message_id=sent.message_id,
                stage=escalation.stage,
                sent_at=now,
            )
        )
    log.info(
        "event=escalation.paged escalation_id=%s stage=%s counselors=%s",
        escalation.id,
        escalation.stage,
        len(counselors),
    )


async def page_due(runtime: Runtime, bot: Bot) -> None:
    """The scheduler's job: first alerts that never went out (a crash after the commit) and re-pages."""
    async with transaction(runtime.sessions) as session:
        ids = [e.id for e in await rules.due(session, utcnow())]
    for escalation_id in ids:
        await page(runtime, bot, escalation_id)


# ---- the counselor's buttons -------------------------------------------------------------------------------


async def on_alert_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, raw_id, action, *rest = query.data.split(":")
    async with turn(update, context) as t:
        counselor = t.person
        if not isinstance(counselor, Counselor):
            await query.answer(t.text("escalation.refused"))
            return
        found = await rules.find_for(t.session, int(raw_id), counselor, action)
        if isinstance(found, rules.Refusal):
            log.warning("event=escalation.refused counselor_id=%s escalation_id=%s", counselor.id, raw_id)
            await query.answer(t.text("escalation.refused"))
            return
        escalation = found
        patient = await t.session.get(Patient, escalation.patient_id)
        assert patient is not None
        now = utcnow()
        if action == "det":
            rules.details_viewed(t.session, escalation, counselor)
            await query.answer()
            if escalation.detail:
                text = _alert_text(
                    t.runtime, "escalation.details", escalation, patient, counselor, detail=escalation.detail
                )
                await t.send(text)
            else:
                await t.reply("escalation.no_details")
            return
        if action == "res":
            await query.answer()
            await t.reply(
                "escalation.choose_outcome",
                buttons=[
                    [(t.text(f"escalation.outcomes.{o}"), f"esc:{escalation.id}:out:{o}")]
                    for o in rules.Outcome
                ],
            )
            return
        if action == "ack":
            done = rules.acknowledge(t.session, escalation, counselor, now)
        else:
            done = rules.resolve(t.session, escalation, counselor, rules.Outcome(rest[0]), now)
            if done:
                t.clear_buttons()
        await query.answer(None if done else t.text("escalation.already"))
        if done:
            alerts = await rules.alerts_of(t.session, escalation.id)
            runtime, bot, escalation_id = t.runtime, t.update.get_bot(), escalation.id
            t.then(lambda: _refresh_alerts(runtime, bot, escalation_id, [a.id for a in alerts]))


async def _refresh_alerts(runtime: Runtime, bot: Bot, escalation_id: int, alert_ids: list[int]) -> None:
    """Show an acknowledgement or resolution on every counselor's copy of the alert."""
    async with transaction(runtime.sessions) as session:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            return
        patient = await session.get(Patient, escalation.patient_id)
        actor_id = escalation.resolved_by or escalation.acknowledged_by
        actor = await session.get(Counselor, actor_id) if actor_id else None
        for alert_id in alert_ids:
            alert = await session.get(EscalationAlert, alert_id)
            counselor = await session.get(Counselor, alert.counselor_id) if alert else None
            if alert is None or counselor is None or patient is None or alert.message_id is None:
                continue
            resolved = escalation.status is EscalationStatus.RESOLVED
            extra: dict[str, object] = {"counselor": actor.name if actor else "?"}
            if resolved:
                extra["outcome"] = runtime.text(
                    f"escalation.outcomes.{escalation.outcome}", counselor.language
                )
            text = _alert_text(
                runtime,
                "escalation.resolved" if resolved else "escalation.acknowledged",
                escalation,
                patient,
                counselor,
                **extra,
            )
            rows = _alert_buttons(runtime, escalation, counselor.language)
            try:
                await bot.edit_message_text(
                    text, alert.chat_id, alert.message_id, reply_markup=keyboard(rows)
                )
            except TelegramError as error:
                log.warning(
                    "event=escalation.refresh_failed alert_id=%s kind=%s", alert.id, type(error).__name__
                )
