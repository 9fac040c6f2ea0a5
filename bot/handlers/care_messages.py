"""Messages from the care team: `/message ALIAS TEXT`, `/message group NAME TEXT`, the patient's Reply button
and typed reply, and the counselor's "Show details" on a reply. Rules are in bot/medcare/messages.py."""

from __future__ import annotations

import logging

from bot.core.models import CareMessage, CareMessageReply, Counselor, Patient, PatientGroup, Priority, utcnow
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import counselor_button, counselor_only, patient_button
from bot.medcare import messages as rules
from bot.medcare.callbacks import (
    CARE_MESSAGE_KEY,
    CARE_MESSAGE_KIND,
    REPLY,
    REPLY_DETAILS,
    REPLY_NOTICE_KEY,
    REPLY_NOTICE_KIND,
    TYPING_REPLY,
    CareMessageKey,
    ReplyButton,
    ReplyDetails,
    ReplyNoticeKey,
    TypingReply,
)
from bot.outbox import store as outbox
from bot.risk.paging import local_time
from bot.workspace import rules as workspace

log = logging.getLogger(__name__)


def _first_name(counselor: Counselor | None) -> str:
    if counselor is None:
        return ""
    words = counselor.name.split()
    return words[0] if words else counselor.name


def _writer_named(message: CareMessage, recipients: list[Counselor]) -> str:
    """The writer's first name if the reply reaches them; "" (the texts then say "your care team") if they are
    off the patient's care team now, so that the patient is never told a reply went to them."""
    writer = next((c for c in recipients if c.id == message.counselor_id), None)
    return _first_name(writer)


def _planned(t: Turn, counselor: Counselor, patient: Patient, message: CareMessage) -> outbox.Planned:
    text = t.runtime.text(
        "messages.from_counselor", patient.language, counselor=counselor.name, text=message.text
    )
    label = t.runtime.text("messages.reply_button", patient.language)
    return outbox.Planned(
        key=CARE_MESSAGE_KEY.pack(CareMessageKey(message.id)),
        kind=CARE_MESSAGE_KIND,
        chat_id=patient.chat_id,
        text=text,
        buttons=[[(label, REPLY.pack(ReplyButton(message.id)))]],
        due_at=utcnow(),
        priority=Priority.NORMAL,
        patient_id=patient.id,
    )


@counselor_only
async def message_command(t: Turn, counselor: Counselor) -> None:
    args = list(t.args)
    if args and args[0].lower() in rules.GROUP_WORDS:
        await _to_group(t, counselor, args[1:])
        return
    named = await _named(t, counselor, args)
    if named is None:
        return
    patient, text = named
    if not outbox.may_message_patient(patient):
        await t.reply("messages.not_active", alias=patient.alias)
        return
    message = await rules.send(t.session, counselor, patient, text)
    await outbox.enqueue(t.session, [_planned(t, counselor, patient, message)])
    t.wake_outbox()
    log.info("event=care_message.sent counselor_id=%s patient_id=%s", counselor.id, patient.id)
    await t.reply("messages.sent", alias=patient.alias)


async def _named(t: Turn, counselor: Counselor, args: list[str]) -> tuple[Patient, str] | None:
    named = await workspace.patient_and_rest(t.session, counselor, args)
    if not args or (named.patient is not None and not named.rest.strip()):
        await t.reply("messages.usage", alias="P-1234")
        return None
    if named.patient is None:
        log.info("event=workspace.refused counselor_id=%s", counselor.id)
        await t.reply("caseload.not_found", alias=named.alias[:64])
        return None
    return named.patient, named.rest


async def _to_group(t: Turn, counselor: Counselor, words: list[str]) -> None:
    named = await rules.group_and_rest(t.session, words)
    if not words or (named.group is not None and not named.rest.strip()):
        await t.reply("messages.usage", alias="P-1234")
        return
    group: PatientGroup | None = named.group
    if group is None:
        await t.reply("messages.group_not_found", group=named.name[:120])
        return
    found = await rules.group_recipients(t.session, counselor, group)
    for patient in found.patients:
        message = await rules.send(t.session, counselor, patient, named.rest, group=group)
        await outbox.enqueue(t.session, [_planned(t, counselor, patient, message)])
    if found.patients:
        t.wake_outbox()
    log.info(
        "event=care_message.group_sent counselor_id=%s group_id=%s count=%d left_out=%d",
        counselor.id,
        group.id,
        len(found.patients),
        found.left_out,
    )
    await t.reply("messages.group_sent", group=group.name, count=len(found.patients), left_out=found.left_out)


# ---- the patient's reply -----------------------------------------------------------------------------------


@patient_button(REPLY)
async def on_reply_button(t: Turn, patient: Patient, button: ReplyButton) -> None:
    message = await t.session.get(CareMessage, button.message_id)
    if message is None or message.patient_id != patient.id:
        answer_expired_button(t)
        return
    patient.onboarding_step = TYPING_REPLY.pack(TypingReply(message.id, utcnow()))
    recipients = await rules.reply_recipients(t.session, message, patient)
    await t.reply("messages.type_reply", counselor=_writer_named(message, recipients))


async def on_typed(t: Turn, patient: Patient, typing: TypingReply, text: str) -> None:
    """The words typed after Reply: kept, and the counselor told (alias only; the words behind a button)."""
    patient.onboarding_step = None
    message = await t.session.get(CareMessage, typing.message_id)
    if message is None or message.patient_id != patient.id:
        await t.reply("messages.reply_gone")
        return
    reply = await rules.add_reply(t.session, message, patient, text)
    now = utcnow()
    notices = []
    recipients = await rules.reply_recipients(t.session, message, patient)
    for counselor in recipients:
        assert counselor.chat_id is not None
        label = t.runtime.text("escalation.details_button", counselor.language)
        notices.append(
            outbox.Planned(
                key=REPLY_NOTICE_KEY.pack(ReplyNoticeKey(reply.id, counselor.id)),
                kind=REPLY_NOTICE_KIND,
                chat_id=counselor.chat_id,
                text=t.runtime.text(
                    "messages.reply_notice",
                    counselor.language,
                    alias=patient.alias,
                    time=local_time(t.runtime, now, counselor),
                ),
                buttons=[[(label, REPLY_DETAILS.pack(ReplyDetails(reply.id)))]],
                due_at=now,
                priority=Priority.NORMAL,
                counselor_id=counselor.id,
                subject_patient_id=patient.id,
            )
        )
    if await outbox.enqueue(t.session, notices):
        t.wake_outbox()
    log.info("event=care_message.replied patient_id=%s message_id=%s", patient.id, message.id)
    await t.reply("messages.reply_sent", counselor=_writer_named(message, recipients), told=bool(notices))


@counselor_button(REPLY_DETAILS, refused="messages.refused")
async def on_details_button(t: Turn, counselor: Counselor, button: ReplyDetails) -> None:
    reply = await t.session.get(CareMessageReply, button.reply_id)
    patient = await rules.may_see_reply(t.session, counselor, reply) if reply is not None else None
    if reply is None or patient is None:
        log.warning("event=care_message.refused counselor_id=%s reply_id=%s", counselor.id, button.reply_id)
        t.answer(t.text("messages.refused"))
        return
    rules.reply_viewed(t.session, counselor, reply)
    log.info("event=care_message.reply_viewed counselor_id=%s reply_id=%s", counselor.id, reply.id)
    await t.reply(
        "messages.reply_details",
        alias=patient.alias,
        time=local_time(t.runtime, reply.created_at, counselor),
        text=reply.text,
    )
