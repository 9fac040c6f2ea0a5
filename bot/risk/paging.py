"""Paging the care team: each stage of an escalation's alert, rendered per counselor into the outbox's urgent
lane, and the job that pages again (and wider) when nobody has acknowledged in time."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.db import transaction
from bot.core.models import (
    CareAssignment,
    Counselor,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    OutboxMessage,
    Patient,
    Priority,
    utcnow,
)
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows
from bot.risk import RiskLevel, oncall
from bot.risk import escalation as rules
from bot.risk.callbacks import ALERT, PAGE_KEY, AlertAction, AlertButton, PageKey, pages_of

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


PAGE_KIND = "page"


def local_time(runtime: Runtime, moment: datetime, counselor: Counselor) -> str:
    """A moment in the counselor's own time zone, in their language's format."""
    try:
        zone = ZoneInfo(counselor.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo(runtime.settings.default_timezone)
    return moment.astimezone(zone).strftime(runtime.text("escalation.time_format", counselor.language))


def alert_text(
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
        time=local_time(runtime, escalation.created_at, reader),
        **extra,
    )


def alert_buttons(runtime: Runtime, escalation: Escalation, language: str) -> Rows:
    """The alert's buttons as it is now; each carries what the counselor sees (`escalation.seen`)."""
    seen = rules.seen(escalation)

    def button(key: str, action: AlertAction) -> Button:
        return runtime.text(key, language), ALERT.pack(AlertButton(escalation.id, action, seen))

    rows: list[list[Button]] = []
    if escalation.status is EscalationStatus.OPEN:
        # Acknowledging tells the patient who saw it; quietly, it does not (a call may not be safe, say).
        rows.append(
            [
                button("escalation.acknowledge_button", "ack"),
                button("escalation.acknowledge_quietly_button", "ackq"),
            ]
        )
    if escalation.status is not EscalationStatus.RESOLVED:
        rows.append([button("escalation.resolve_button", "res")])
    rows.append([button("escalation.details_button", "det"), button("escalation.plan_button", "plan")])
    return rows


async def page(runtime: Runtime, session: AsyncSession, escalation: Escalation, now: datetime) -> int:
    """Put this stage's alert for each counselor it pages in the outbox's urgent lane; move to the next stage.
    One row per escalation, stage and counselor: paging the same stage twice sends nothing new."""
    patient = await session.get(Patient, escalation.patient_id)
    assert patient is not None
    repage = escalation.alerted_at is not None
    settings = runtime.settings
    imminent = RiskLevel.parse(escalation.level) is RiskLevel.IMMINENT
    after_hours = not settings.office.covers(now, settings.timezone)  # closed days included
    # An imminent alert pages whoever is on call whenever a shift covers now, in office hours too: a shift
    # in them is the clinic saying the team may not answer (a holiday OFFICE_CLOSED_DAYS does not name).
    on_call = await oncall.on_call(session, now) if imminent or (after_hours and repage) else []
    if repage and after_hours and not imminent:
        # A high alert is not re-paged after hours (nor widened to backups and supervisors), except to the
        # on-call counselor; with nobody on call it waits for the office to open.
        if not on_call:
            escalation.next_page_at = settings.office.next_opening(now, settings.timezone)
            log.info("event=escalation.repage_held escalation_id=%s", escalation.id)
            return 0
        rules.mark_paged(escalation, now, settings)
        counselors = [c for c in on_call if c.chat_id is not None]
    else:
        rules.mark_paged(escalation, now, settings)
        if imminent and after_hours and not on_call:
            log.warning("event=escalation.nobody_on_call escalation_id=%s", escalation.id)
        counselors = await rules.recipients(session, escalation, on_call if imminent else [])
    if not counselors:
        log.error("event=escalation.nobody_to_page escalation_id=%s", escalation.id)
    key = "escalation.repage" if repage else "escalation.alert"
    pages = [_alert(runtime, key, escalation, patient, counselor, now) for counselor in counselors]
    added = await outbox.enqueue(session, pages)
    log.info(
        "event=escalation.paged escalation_id=%s stage=%s counselors=%s",
        escalation.id,
        escalation.stage,
        added,
    )
    return added


def _alert(
    runtime: Runtime, key: str, escalation: Escalation, patient: Patient, counselor: Counselor, now: datetime
) -> outbox.Planned:
    """This stage's alert to one counselor, in the urgent lane."""
    assert counselor.chat_id is not None
    return outbox.Planned(
        key=PAGE_KEY.pack(PageKey(escalation.id, escalation.stage, counselor.id)),
        kind=PAGE_KIND,
        chat_id=counselor.chat_id,
        text=alert_text(runtime, key, escalation, patient, counselor),
        buttons=alert_buttons(runtime, escalation, counselor.language),
        due_at=now,
        priority=Priority.URGENT,
        counselor_id=counselor.id,
        subject_patient_id=patient.id,
        ref={"escalation_id": escalation.id, "stage": escalation.stage},
    )


async def page_the_newly_linked(
    runtime: Runtime, session: AsyncSession, counselor: Counselor, now: datetime
) -> int:
    """A counselor who has just linked their chat gets, at once, their patients' open alerts that reached
    nobody (nobody on the care team or supervising could be paged when they were raised). Without this they
    waited for the next stage's page, minutes to an hour later. Alerts someone else already has are not
    sent again."""
    found = await session.scalars(
        select(Escalation)
        .join(CareAssignment, CareAssignment.patient_id == Escalation.patient_id)
        .where(CareAssignment.counselor_id == counselor.id, Escalation.status == EscalationStatus.OPEN)
        .order_by(Escalation.id)
    )
    pages = []
    for escalation in found:
        sent = await session.scalar(
            select(EscalationAlert.id).where(EscalationAlert.escalation_id == escalation.id).limit(1)
        )
        queued = await session.scalar(select(OutboxMessage.id).where(pages_of(escalation.id)).limit(1))
        if sent is None and queued is None:
            patient = await session.get(Patient, escalation.patient_id)
            assert patient is not None
            pages.append(_alert(runtime, "escalation.alert", escalation, patient, counselor, now))
    added = await outbox.enqueue(session, pages)
    if added:
        log.info("event=escalation.paged_on_link counselor_id=%s alerts=%s", counselor.id, added)
    return added


async def page_due(runtime: Runtime) -> None:
    """The scheduler's job: page again (and wider) the escalations nobody has acknowledged in time."""
    async with transaction(runtime.sessions) as session:
        now = utcnow()
        added = 0
        for escalation in await rules.due(session, now):
            try:
                async with session.begin_nested():
                    added += await page(runtime, session, escalation, now)
            except Exception as error:
                log.error(
                    "event=escalation.page_error escalation_id=%s kind=%s",
                    escalation.id,
                    type(error).__name__,
                )
    if added:
        runtime.wake_outbox()
