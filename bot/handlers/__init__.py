"""Telegram glue only: parse the update, call a rule module, render a reply from content/."""

from __future__ import annotations

from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.careteam.callbacks import CARE
from bot.checkin import callbacks as checkins
from bot.coping import callbacks as exercises
from bot.enrollment import callbacks as enrollment
from bot.handlers import (
    admin,
    aftercare,
    alerts,
    care_messages,
    caseload,
    checkin,
    consent,
    coping,
    crisis,
    fallback,
    history,
    measures,
    medication,
    onboarding,
    privacy,
    safety_plan,
    schedule,
    screener,
    settings,
    sos,
    start,
    text,
    tone,
)
from bot.handlers.errors import on_error
from bot.measures.callbacks import MEASURE
from bot.medcare import callbacks as medcare
from bot.privacy.callbacks import DELETION
from bot.risk import callbacks as risk
from bot.schedule import callbacks as sessions
from bot.workspace.callbacks import CASELOAD_PAGE


def register(application: Application) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE
    application.add_handlers(
        [
            MessageHandler(~private & filters.UpdateType.MESSAGES, fallback.on_group),
            MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, fallback.on_edited),
            MessageHandler(private & new_message & filters.FORWARDED, fallback.on_forwarded),
            CommandHandler("start", start.start, filters=private & new_message),
            CommandHandler("sos", sos.sos_command, filters=private & new_message),
            CommandHandler("help", fallback.on_help, filters=private & new_message),
            CommandHandler("privacy", consent.privacy, filters=private & new_message),
            CommandHandler("revoke", consent.revoke, filters=private & new_message),
            CommandHandler("mydata", privacy.mydata_command, filters=private & new_message),
            CommandHandler("deleteme", privacy.deleteme_command, filters=private & new_message),
            CommandHandler("checkin", checkin.start_command, filters=private & new_message),
            CommandHandler("cope", coping.cope_command, filters=private & new_message),
            CommandHandler("history", history.history_command, filters=private & new_message),
            CommandHandler("settings", settings.settings_command, filters=private & new_message),
            CommandHandler("safetyplan", safety_plan.safety_plan_command, filters=private & new_message),
            CommandHandler("schedule", schedule.schedule_command, filters=private & new_message),
            CommandHandler("alerts", alerts.alerts_command, filters=private & new_message),
            CommandHandler("caseload", caseload.caseload_command, filters=private & new_message),
            CommandHandler("patient", caseload.patient_command, filters=private & new_message),
            CommandHandler("note", caseload.note_command, filters=private & new_message),
            CommandHandler("digest", caseload.digest_command, filters=private & new_message),
            CommandHandler("measure", measures.measure_command, filters=private & new_message),
            CommandHandler("reload", admin.reload_command, filters=private & new_message),
            CommandHandler("meds", medication.meds_command, filters=private & new_message),
            CommandHandler("message", care_messages.message_command, filters=private & new_message),
            CommandHandler("stopcheckins", aftercare.stop_command, filters=private & new_message),
            MessageHandler(private & new_message & filters.COMMAND, fallback.on_unknown_command),
            MessageHandler(private & new_message & filters.TEXT, text.on_text),
            MessageHandler(private & new_message, fallback.on_non_text),
            # Each button's data is read by its feature's codec (bot/<feature>/callbacks.py).
            CallbackQueryHandler(consent.on_consent_button, pattern=enrollment.CONSENT.pattern),
            CallbackQueryHandler(consent.on_revoke_button, pattern=enrollment.REVOKE.pattern),
            CallbackQueryHandler(privacy.on_button, pattern=DELETION.pattern),
            CallbackQueryHandler(onboarding.on_button, pattern=enrollment.SETUP.pattern),
            CallbackQueryHandler(checkin.on_button, pattern=checkins.CHECKIN.pattern),
            CallbackQueryHandler(coping.on_menu_button, pattern=exercises.MENU_BUTTONS.pattern),
            CallbackQueryHandler(coping.on_run_button, pattern=exercises.RUN.pattern),
            CallbackQueryHandler(coping.on_strong_button, pattern=exercises.STRONG.pattern),
            CallbackQueryHandler(history.on_button, pattern=checkins.HISTORY.pattern),
            CallbackQueryHandler(settings.on_button, pattern=enrollment.SETTINGS.pattern),
            CallbackQueryHandler(alerts.on_alert_button, pattern=risk.ALERT_BUTTONS.pattern),
            CallbackQueryHandler(screener.on_button, pattern=risk.SCREENER.pattern),
            CallbackQueryHandler(safety_plan.on_button, pattern=risk.PLAN_BUTTONS.pattern),
            CallbackQueryHandler(crisis.on_safety_button, pattern=risk.SAFETY_CHECK.pattern),
            CallbackQueryHandler(sos.on_button, pattern=risk.SOS.pattern),
            CallbackQueryHandler(schedule.on_button, pattern=sessions.RSVP.pattern),
            CallbackQueryHandler(schedule.on_skip, pattern=sessions.SKIP_REASON.pattern),
            CallbackQueryHandler(caseload.on_page_button, pattern=CASELOAD_PAGE.pattern),
            CallbackQueryHandler(measures.on_button, pattern=MEASURE.pattern),
            CallbackQueryHandler(tone.on_button, pattern=CARE.pattern),
            CallbackQueryHandler(medication.on_button, pattern=medcare.MED.pattern),
            CallbackQueryHandler(medication.on_dose_button, pattern=medcare.DOSE.pattern),
            CallbackQueryHandler(medication.on_supply_button, pattern=medcare.SUPPLY.pattern),
            CallbackQueryHandler(medication.on_naloxone_button, pattern=medcare.NALOXONE.pattern),
            CallbackQueryHandler(care_messages.on_reply_button, pattern=medcare.REPLY.pattern),
            CallbackQueryHandler(care_messages.on_details_button, pattern=medcare.REPLY_DETAILS.pattern),
            CallbackQueryHandler(aftercare.on_choice, pattern=medcare.AFTERCARE_CHOICE.pattern),
            CallbackQueryHandler(aftercare.on_answer, pattern=medcare.AFTERCARE_ANSWER.pattern),
            CallbackQueryHandler(fallback.on_stray_button),
        ]
    )
    application.add_error_handler(on_error)
