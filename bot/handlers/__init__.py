"""Telegram glue only: parse the update, call a rule module, render a reply from content/."""

from __future__ import annotations

from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.handlers import (
    admin,
    alerts,
    caseload,
    checkin,
    consent,
    coping,
    crisis,
    fallback,
    history,
    onboarding,
    privacy,
    safety_plan,
    schedule,
    screener,
    settings,
    start,
    text,
)
from bot.handlers.errors import on_error


def register(application: Application) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE
    application.add_handlers(
        [
            MessageHandler(~private & filters.UpdateType.MESSAGES, fallback.on_group),
            MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, fallback.on_edited),
            MessageHandler(private & new_message & filters.FORWARDED, fallback.on_forwarded),
            CommandHandler("start", start.start, filters=private & new_message),
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
            CommandHandler("reload", admin.reload_command, filters=private & new_message),
            MessageHandler(private & new_message & filters.COMMAND, fallback.on_unknown_command),
            MessageHandler(private & new_message & filters.TEXT, text.on_text),
            MessageHandler(private & new_message, fallback.on_non_text),
            CallbackQueryHandler(consent.on_consent_button, pattern=r"^consent:(accept|decline|review)$"),
            CallbackQueryHandler(consent.on_revoke_button, pattern=r"^revoke:(confirm|cancel)$"),
            CallbackQueryHandler(privacy.on_button, pattern=privacy.PATTERN),
            CallbackQueryHandler(onboarding.on_button, pattern=r"^(tz|time|lang):[A-Za-z0-9_/+:-]{1,60}$"),
            CallbackQueryHandler(checkin.on_button, pattern=checkin.CALLBACK_PATTERN),
            CallbackQueryHandler(coping.on_menu_button, pattern=coping.MENU_PATTERN),
            CallbackQueryHandler(coping.on_run_button, pattern=coping.RUN_PATTERN),
            CallbackQueryHandler(history.on_button, pattern=history.PATTERN),
            CallbackQueryHandler(settings.on_button, pattern=settings.PATTERN),
            CallbackQueryHandler(alerts.on_alert_button, pattern=alerts.ALERT_PATTERN),
            CallbackQueryHandler(screener.on_button, pattern=screener.PATTERN),
            CallbackQueryHandler(safety_plan.on_button, pattern=safety_plan.PATTERN),
            CallbackQueryHandler(crisis.on_safety_button, pattern=crisis.SAFETY_PATTERN),
            CallbackQueryHandler(schedule.on_button, pattern=schedule.PATTERN),
            CallbackQueryHandler(schedule.on_skip, pattern=schedule.SKIP_PATTERN),
            CallbackQueryHandler(caseload.on_page_button, pattern=caseload.PAGE_PATTERN),
            CallbackQueryHandler(fallback.on_stray_button),
        ]
    )
    application.add_error_handler(on_error)
