"""/start: enroll with an invite code, or say hello again."""

from __future__ import annotations

import logging

from telegram import Update

from bot.core.models import Counselor, Patient, PatientStatus, utcnow
from bot.enrollment import invites as enrollment
from bot.handlers import consent, onboarding
from bot.handlers.base import Context, Turn, turn
from bot.handlers.fallback import answer_stranger
from bot.risk import paging

log = logging.getLogger(__name__)


async def start(update: Update, context: Context) -> None:
    code = context.args[0] if context.args else None
    async with turn(update, context) as t:
        if isinstance(t.person, Patient):
            await _welcome_back_patient(t, t.person)
        elif isinstance(t.person, Counselor):
            await t.reply("counselor.welcome_back", name=t.person.name, role=t.person.role.value)
        elif code is None:
            await answer_stranger(t)
        else:
            await _redeem(t, code)


async def _redeem(t: Turn, code: str) -> None:
    chat, user = t.update.effective_chat, t.update.effective_user
    assert chat is not None and user is not None
    result = await enrollment.redeem(
        t.session,
        code,
        telegram_user_id=user.id,
        chat_id=chat.id,
        language_code=user.language_code,
        default_timezone=t.runtime.settings.default_timezone,
        supported_languages=t.runtime.catalog.languages,
    )
    if isinstance(result, enrollment.Rejected):
        log.info("event=invite.rejected reason=%s", result.reason)
        await t.reply(f"start.code_{result.reason}")
    elif isinstance(result, enrollment.CounselorLinked):
        log.info("event=counselor.linked counselor_id=%s", result.counselor.id)
        t.language = result.counselor.language
        await t.reply("counselor.welcome", name=result.counselor.name, role=result.counselor.role.value)
        if await paging.page_the_newly_linked(t.runtime, t.session, result.counselor, utcnow()):
            t.wake_outbox()
    else:
        log.info("event=patient.enrolled patient_id=%s", result.patient.id)
        t.person, t.language = result.patient, result.patient.language
        await consent.show_consent(t)


async def _welcome_back_patient(t: Turn, patient: Patient) -> None:
    if patient.status is PatientStatus.CONSENT_PENDING:
        await consent.show_consent(t)
    elif patient.status is PatientStatus.ONBOARDING:
        await onboarding.ask_current(t, patient)
    elif patient.status is PatientStatus.CONSENT_REVOKED:
        await consent.show_revoked_limits(t)
    elif patient.status is PatientStatus.DISCHARGED:
        await t.reply("discharged.note")
    else:
        await t.reply("start.welcome_back", keyboard=t.help_now_keyboard())
