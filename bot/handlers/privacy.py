"""A patient's rights over their data: /mydata (a copy of everything) and /deleteme (erase everything).

Any enrolled patient may use them, whatever their status: withdrawing consent or being discharged does not
take these rights away. The rules are in `bot.privacy.export` and `bot.privacy.erasure`.

The confirm button of /deleteme carries the id of the audit event that recorded the request; only the
patient's latest request, younger than CONFIRM_WITHIN, can be confirmed, and "Keep my data" spends it. So a
forged button, an old one, or one from a request already answered does nothing.

While an alert about the patient is open, a confirmed deletion waits (`bot.privacy.erasure.blocked`): the
patient is told why, the care team that a request is waiting, and `erase_deferred` (a scheduler job) erases
once the last alert is resolved, and tells the patient.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from telegram import Bot

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.checkin.rules import SLEEP, TRIGGERS
from bot.core import audit
from bot.core.db import transaction
from bot.core.models import AuditEvent, Patient, Priority, Rsvp, utcnow
from bot.handlers.base import Turn, remove_markup
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import enrolled_only, patient_button
from bot.medcare.aftercare import CONNECTED
from bot.outbox import store as outbox
from bot.privacy import erasure
from bot.privacy import export as data_export
from bot.privacy.callbacks import DELETED_KEY, DELETION, DeletedKey, DeletionButton
from bot.privacy.erasure import KEPT, REQUESTED, erase_patient
from bot.risk import use
from bot.risk.cssrs import Question as ScreenerQuestion
from bot.risk.levels import Category as RiskCategory
from bot.risk.safety_plan import STEPS

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

CONFIRM_WITHIN = timedelta(minutes=30)


# ---- /mydata -----------------------------------------------------------------------------------------------


@enrolled_only
async def mydata_command(t: Turn, patient: Patient) -> None:
    now = utcnow()
    data = await data_export.gather(t.session, patient, now)
    today = now.strftime("%Y-%m-%d")
    page = data_export.render_html(data, _wording(t, today))
    audit.record(
        t.session,
        "data.exported",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="patient",
        subject_id=patient.id,
    )
    log.info("event=data.exported patient_id=%s", patient.id)
    # Sent after the commit, in this order: the files follow the message that explains them.
    await t.reply("mydata.sending")
    t.send_document(data_export.to_json(data), f"my-data-{today}.json", t.text("mydata.json_caption"))
    t.send_document(page, f"my-data-{today}.html", t.text("mydata.html_caption"))


def _wording(t: Turn, today: str) -> data_export.Wording:
    modules = {
        module_id: module.title
        for module_id in t.runtime.modules.ids()
        if (module := t.runtime.modules.get(module_id, t.language)) is not None
    }
    return data_export.Wording(
        labels={label: t.text(f"mydata.html.{label}", date=today) for label in data_export.LABELS},
        values={code: t.text(f"mydata.values.{code}") for code in data_export.value_codes()},
        names={
            "triggers": {key: t.text(f"checkin.buttons.triggers.{key}") for key in TRIGGERS},
            "sleep": {key: t.text(f"checkin.buttons.sleep.{key}") for key in SLEEP},
            "plan_steps": {step.value: t.text(f"plan.steps.{step.value}.title") for step in STEPS},
            "categories": {c.value: t.text(f"escalation.categories.{c.value}") for c in RiskCategory},
            "answers": {rsvp.value: t.text(f"schedule.buttons.{rsvp.value}") for rsvp in Rsvp},
            "connected": {answer: t.text(f"aftercare.connected.{answer}") for answer in CONNECTED},
            "substances": {
                **{s.value: t.text(f"checkin.buttons.use_what.{s.value}") for s in use.CHOICES},
                use.Substance.UNKNOWN_PILLS.value: t.text("mydata.html.pills"),
            },
            "use_how": {how: t.text(f"checkin.buttons.use_how.{how}") for how in ("alone", "injected")},
            "screener": {q.value: t.text(f"cssrs.questions.{q.value}") for q in ScreenerQuestion},
            "modules": modules,
            "questionnaires": {
                instrument_id: found.name
                for instrument_id in t.runtime.measures.ids()
                if (found := t.runtime.measures.get(instrument_id, t.language)) is not None
            },
            "scores": {  # "phq9.total": the score's name in the patient's language
                f"{instrument_id}.{score.id}": score.name
                for instrument_id in t.runtime.measures.ids()
                if (found := t.runtime.measures.get(instrument_id, t.language)) is not None
                for score in found.scores
            },
        },
        language=t.language,
    )


# ---- /deleteme ---------------------------------------------------------------------------------------------


@enrolled_only
async def deleteme_command(t: Turn, patient: Patient) -> None:
    request = audit.record(
        t.session,
        REQUESTED,
        actor_type="patient",
        actor_id=patient.id,
        subject_type="patient",
        subject_id=patient.id,
    )
    await t.session.flush()
    log.info("event=deletion.requested patient_id=%s", patient.id)
    await t.reply(
        "deleteme.confirm_prompt",
        buttons=[
            [(t.text("deleteme.confirm_button"), DELETION.pack(DeletionButton("yes", request.id)))],
            [(t.text("deleteme.cancel_button"), DELETION.pack(DeletionButton("no", request.id)))],
        ],
    )


@patient_button(DELETION, active=False)
async def on_button(t: Turn, patient: Patient, button: DeletionButton) -> None:
    if not await _open_request(t, patient, button.request_id):
        log.info("event=deletion.stale_button")
        answer_expired_button(t)
        return
    t.clear_buttons()
    if button.choice == "no":
        audit.record(
            t.session,
            KEPT,
            actor_type="patient",
            actor_id=patient.id,
            subject_type="patient",
            subject_id=patient.id,
        )
        log.info("event=deletion.kept patient_id=%s", patient.id)
        await t.reply("deleteme.kept")
        return
    if await erasure.blocked(t.session, patient.id):
        if await erasure.defer(t.session, patient.id) and await tell_care_team(
            t.runtime, t.session, patient, FlagKind.DELETION_WAITING
        ):
            t.wake_outbox()
        await t.reply("deleteme.deferred")
        return
    erased = await erase_patient(t.session, patient.id, reason="request")
    alerts, bot = erased.alert_messages, t.update.get_bot()
    await t.reply("deleteme.done")

    async def take_buttons_off() -> None:
        # The care team's copies of the patient's alerts: their buttons would now find nothing.
        for chat_id, message_id in alerts:
            await remove_markup(bot, chat_id, message_id, t.runtime.keyring)

    t.then(take_buttons_off)


async def _open_request(t: Turn, patient: Patient, request_id: int) -> bool:
    """Is `request_id` this patient's latest deletion request, unanswered and recent?"""
    latest = await t.session.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == patient.id,
            AuditEvent.action.in_((REQUESTED, KEPT)),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return (
        latest is not None
        and latest.id == request_id
        and latest.action == REQUESTED
        and latest.actor_id == patient.id
        and latest.at >= utcnow() - CONFIRM_WITHIN
    )


async def erase_deferred(runtime: Runtime, bot: Bot) -> None:
    """The scheduler's job: erase each patient whose confirmed deletion waited for their alerts, once none
    is open, no page about them is queued and no message of theirs waits in the inbox (`erasure.ready`);
    tell them (through the outbox: their row is gone by then), and take the buttons off the counselors'
    copies of their alerts."""
    alerts: list[tuple[int, int]] = []
    told = 0
    async with transaction(runtime.sessions) as session:
        for patient_id in await erasure.deferred_patients(session):
            patient = await erasure.ready(session, patient_id)
            if patient is None:
                continue
            chat_id, language = patient.chat_id, patient.language
            erased = await erase_patient(session, patient_id, reason="request", actor="system")
            alerts.extend(erased.alert_messages)
            told += await outbox.enqueue(
                session,
                [
                    outbox.Planned(
                        key=DELETED_KEY.pack(DeletedKey(uuid.uuid4().hex)),
                        kind="notice",
                        chat_id=chat_id,
                        text=runtime.text("deleteme.done", language),
                        due_at=utcnow(),
                        priority=Priority.NORMAL,
                    )
                ],
            )
    if told:
        runtime.wake_outbox()
    for chat_id, message_id in alerts:
        await remove_markup(bot, chat_id, message_id, runtime.keyring)
