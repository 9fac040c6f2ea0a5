"""Care-team notices about a flag (missed check-ins or sessions, a patient who blocked the bot), rendered
for the outbox in each counselor's language."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.careteam import flags
from bot.careteam.callbacks import FLAG_KEY, NOTICE_TOLD, FlagKey, MomentEvent, NoticeEvent, NoticeTold
from bot.core.models import Patient, Priority, utcnow
from bot.outbox import store as outbox

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def render_notice(
    runtime: Runtime, notice: flags.Notice, event: NoticeEvent, priority: Priority = Priority.NORMAL
) -> outbox.Planned:
    """`event` is what the notice is about, so each counselor is told of it once. The outbox key is a keyed
    hash of the flag's kind, the event and the chat: it must not say what the flag was (a use reported) nor
    whose chat."""
    text = runtime.text(f"care.flag.{notice.kind}", notice.language, alias=notice.alias, count=notice.count)
    told = NOTICE_TOLD.pack(NoticeTold(notice.kind, event, notice.chat_id))
    return outbox.Planned(
        key=FLAG_KEY.pack(FlagKey(runtime.keyring.tag(told))),
        kind="notice",
        chat_id=notice.chat_id,
        text=text,
        due_at=utcnow(),
        priority=priority,
        subject_patient_id=notice.patient_id,
    )


async def tell_care_team(
    runtime: Runtime,
    session: AsyncSession,
    patient: Patient,
    kind: flags.FlagKind,
    *,
    priority: Priority = Priority.NORMAL,
) -> int:
    """Raise a flag and queue its notice for each linked counselor (in this transaction); how many."""
    now = utcnow()
    notices = await flags.raise_flag(session, patient, kind, now)
    event = MomentEvent(patient.id, int(now.timestamp() * 1000))
    return await outbox.enqueue(session, [render_notice(runtime, n, event, priority) for n in notices])


async def patient_unreachable(runtime: Runtime, session: AsyncSession, patient_id: int) -> None:
    """The patient blocked the bot: mark them unreachable and tell their care team once (the outbox's
    `on_blocked`)."""
    now = utcnow()
    patient = await outbox.mark_unreachable(session, patient_id, now)
    if patient is None:
        return
    log.warning("event=patient.unreachable patient_id=%s", patient_id)
    notices = await flags.raise_flag(session, patient, flags.FlagKind.UNREACHABLE, now)
    event = MomentEvent(patient_id, int(now.timestamp()))
    await outbox.enqueue(session, [render_notice(runtime, n, event) for n in notices])
