"""The texts the code asks for by name. `content check` (and so /reload and the watcher) refuses content
that lacks one in English, so deleting a text the bot needs is caught before a patient meets the gap.

When code starts using a new text, add its key here; a test fails until it is.
"""

from __future__ import annotations

from bot.careteam.flags import FlagKind
from bot.checkin.callbacks import HISTORY_WINDOWS
from bot.checkin.rules import SLEEP, TRIGGERS, USE_HOW, Question
from bot.content.modules import Category
from bot.core.models import EscalationStatus, MedicationKind, PatientStatus, Rsvp
from bot.enrollment.onboarding import COMMON_TIMEZONES, Step
from bot.medcare.aftercare import CONNECTED as AFTERCARE_CONNECTED
from bot.medcare.aftercare import USE_QUESTIONS as AFTERCARE_USE
from bot.medcare.aftercare import Question as AftercareQuestion
from bot.medcare.callbacks import ANSWERS as DOSE_ANSWERS
from bot.medcare.callbacks import NALOXONE_ANSWERS
from bot.privacy.export import LABELS as EXPORT_LABELS
from bot.privacy.export import value_codes
from bot.risk.cssrs import ColumbiaRisk
from bot.risk.cssrs import Period as CssrsPeriod
from bot.risk.cssrs import Question as CssrsQuestion
from bot.risk.escalation import Outcome, Verdict
from bot.risk.levels import Category as RiskCategory
from bot.risk.promise import Promise
from bot.risk.safety_plan import Step as PlanStep
from bot.risk.use import CHOICES, Advice, Tier, Withdrawal
from bot.workspace.caseload import Trend

PATIENT_COMMANDS = (
    "sos",  # first: help at any time (issue 18 item 8)
    "checkin",
    "cope",
    "safetyplan",
    "schedule",
    "meds",  # medication reminders and naloxone (issue 22)
    "history",
    "settings",
    "help",
    "privacy",
    "mydata",
    "deleteme",
    "revoke",
)
SOS_KEYS = ("sos.keyboard_button", "sos.reply", "sos.team_button", "sos.team_told", "sos.team_already")
PLAN_KEYS = ("plan.clinic_lines",)
MEDCARE_KEYS = (
    *(
        f"meds.{name}"
        for name in (
            "intro",
            "current",
            "change_button",
            "stop_button",
            "naloxone_button",
            "no_thanks_button",
            "no_thanks",
            "stopped",
            "ask_name",
            "ask_time",
            "other_time_button",
            "type_time",
            "ask_shot",
            "in_days",
            "other_day_button",
            "not_sure_button",
            "type_day",
            "ask_show",
            "private_button",
            "show_button",
            "ask_supply",
            "done",
            "dose.ask",
            "dose.again",
            "dose.closed",
            "supply.reminder",
            "supply.got_button",
            "supply.got_shot_button",
            "supply.next_shot",
            "set_by_counselor",
            "stopped_by_counselor",
            "counselor_usage",
            "counselor_saved",
            "counselor_view",
        )
    ),
    "naloxone.ask",
    "naloxone.where",
    "naloxone.replace",
    *(
        f"aftercare.{name}"
        for name in (
            "offer",
            "yes_button",
            "no_button",
            "accepted",
            "declined",
            "intro",
            "stop_button",
            "stop_ask",
            "stopped",
            "closed",
            "thanks",
            "help_told",
            "find_care",
            "note",
            "ended",
            "digest",
            "digest_line",
        )
    ),
    *(
        f"messages.{name}"
        for name in (
            "from_counselor",
            "reply_button",
            "type_reply",
            "reply_sent",
            "reply_gone",
            "reply_expired",
            "usage",
            "sent",
            "group_sent",
            "group_not_found",
            "not_active",
            "reply_notice",
            "reply_details",
            "refused",
        )
    ),
)
CONSENT_KEYS = (
    "program.name",
    "consent.body",
    "consent.hours",
    "consent.update",
    "consent.update_later",
    "consent.update_accepted",
)
MEASURE_KEYS = (
    "intro_scheduled",
    "intro_counselor",
    "resumed",
    "next",
    "question",
    "thanks",
    "closed",
    "stale",
)
MEASURE_TEAM_KEYS = (
    "usage",
    "unknown",
    "not_active",
    "not_offered",
    "already_open",
    "sent",
    "schedule",
    "schedule_line",
    "bad_schedule",
    "done_notice",
    "none",
    "results",
    "result",
    "score",
    "unofficial",
    "held_back",
    "safety_line",
    "open_line",
    "chart_title",
    "caseload_flag",
)
INVITE_REJECTIONS = ("invalid", "expired", "used", "already_enrolled", "counselor_linked")

NAMED = frozenset(
    {
        "checkin.after_use",
        "checkin.closed",
        "checkin.first_in_a_while",
        "checkin.high_craving",
        "checkin.high_craving_helped",
        "checkin.intro_on_demand",
        "checkin.intro_scheduled",
        "checkin.nudge",
        "checkin.other_exercises_button",
        "checkin.resumed",
        "checkin.retry.buttons",
        "checkin.start_button",
        "checkin.streak",
        "checkin.thanks",
        "consent.accept_button",
        "consent.accepted",
        "consent.accepted_again",
        "consent.decline_button",
        "consent.declined",
        "consent.required",
        "consent.review_button",
        "consent.screen",
        "content.reload_failed",
        "content.reloaded",
        "coping.back_button",
        "coping.category_intro",
        "coping.done_higher",
        "coping.done_lower",
        "coping.done_same",
        "coping.done_unrated",
        "coping.for_you_button",
        "coping.menu",
        "coping.menu_for_you",
        "coping.mid_exercise",
        "coping.module_button",
        "coping.next_button",
        "coping.rate_after",
        "coping.rate_before",
        "coping.retry_rating",
        "coping.skip_button",
        "coping.stale",
        "coping.step",
        "coping.stop_button",
        "coping.unavailable",
        "counselor.welcome",
        "counselor.welcome_back",
        "discharged.note",
        "error.generic",
        "help.counselor",
        "history.craving_axis",
        "history.date_format",
        "history.empty",
        "history.mood_axis",
        "history.no_triggers",
        "history.summary",
        "history.title",
        "history.triggers_title",
        "history.use_label",
        "input.button_expired",
        "input.edited",
        "input.forwarded",
        "input.group_chat",
        "input.non_text",
        "input.not_for_role",
        "input.not_understood",
        "input.slow_down",
        "input.unknown_command",
        "language_name",
        "onboarding.done",
        "onboarding.invalid_language",
        "onboarding.other_time_button",
        "onboarding.other_zone_button",
        "privacy.not_patient",
        "privacy.restated",
        "revoke.cancel_button",
        "revoke.cancelled",
        "revoke.confirm_button",
        "revoke.confirm_prompt",
        "revoke.done",
        "revoke.limited",
        "revoke.nothing",
        "settings.checkin_time_button",
        "settings.language_button",
        "settings.menu",
        "settings.saved",
        "settings.timezone_button",
        "start.welcome_back",
        "stranger.not_enrolled",
        "crisis.imminent",
        "crisis.high",
        "crisis.high_relapse",
        "crisis.pattern_told",
        "crisis.moderate",
        "crisis.try_exercise_button",
        "crisis.safety_check",
        "crisis.safe_button",
        "crisis.not_safe_button",
        "crisis.safe_reply",
        "crisis.danger",
        "crisis.call_ok_button",
        "crisis.call_not_ok_button",
        "crisis.call_ok_reply",
        "crisis.call_not_ok_reply",
        "crisis.harm_others",
        "escalation.alert",
        "escalation.repage",
        "escalation.acknowledged",
        "escalation.resolved",
        "escalation.details",
        "escalation.no_details",
        "escalation.choose_verdict",
        "escalation.choose_outcome",
        "escalation.acknowledge_button",
        "escalation.acknowledge_quietly_button",
        "tone.greetings",
        "tone.feelings",
        "tone.greeting",
        "tone.feeling",
        "tone.exercise_button",
        "tone.talk_button",
        "tone.lines_button",
        "tone.talk_told",
        "tone.lines",
        "escalation.patient_told",
        "escalation.ack_told",
        "escalation.ack_quiet",
        "escalation.resolve_button",
        "escalation.details_button",
        "escalation.already",
        "escalation.changed",
        "escalation.refused",
        "escalation.none_open",
        "escalation.open_list",
        "escalation.listed_open",
        "escalation.plan_button",
        "escalation.screener",
        "escalation.screener_yes",
        "escalation.screener_no",
        "escalation.time_format",
        "crisis.safety_plan_button",
        "cssrs.intro_alerted",
        "cssrs.intro_ambiguous",
        "cssrs.intro_measure",
        "cssrs.yes_button",
        "cssrs.no_button",
        "cssrs.use_buttons",
        "cssrs.stale",
        "cssrs.result_urgent",
        "cssrs.result_concern",
        "cssrs.result_clear_open",
        "cssrs.result_clear",
        "cssrs.result_referral",
        "cssrs.ok_button",
        "cssrs.not_now_button",
        "cssrs.use_permission_buttons",
        "cssrs.declined",
        "plan.intro",
        "plan.start_button",
        "plan.not_now_button",
        "plan.not_now",
        "plan.ask",
        "plan.skip_button",
        "plan.keep_button",
        "plan.stop_button",
        "plan.too_long",
        "plan.stopped",
        "plan.view",
        "plan.empty_step",
        "plan.edit_button",
        "plan.edit_which",
        "plan.done_button",
        "plan.counselor_view",
        "plan.counselor_none",
        "schedule.when",
        "schedule.date_format",
        "schedule.reminder",
        "schedule.ask_reason",
        "schedule.skip_button",
        "schedule.reason_thanks",
        "schedule.reason_skipped",
        "schedule.gone",
        "schedule.list",
        "schedule.list_item",
        "schedule.list_empty",
        "schedule.care_cannot",
        "schedule.care_reason",
    }
)


def required_keys() -> frozenset[str]:
    keys = set(NAMED)
    keys.update(f"commands.{name}" for name in PATIENT_COMMANDS)
    keys.update(f"help.patient_{status.value}" for status in PatientStatus)
    keys.update(f"start.code_{reason}" for reason in INVITE_REJECTIONS)
    keys.update(f"onboarding.{kind}_{step.value}" for step in Step for kind in ("ask", "invalid"))
    keys.update(f"onboarding.type_{step.value}" for step in (Step.TIMEZONE, Step.CHECKIN_TIME))
    keys.update(f"onboarding.zones.{zone.split('/')[-1].lower()}" for zone in COMMON_TIMEZONES)
    keys.update(f"checkin.ask.{question.value}" for question in Question)
    keys.update(f"checkin.retry.{q}{r}" for q in ("craving", "mood") for r in ("", "_range"))
    keys.update(f"checkin.buttons.{key}" for key in ("skip", "done", "yes", "no"))
    keys.update(f"checkin.buttons.sleep.{key}" for key in SLEEP)
    keys.update(f"checkin.buttons.triggers.{key}" for key in TRIGGERS)
    keys.update(f"care.flag.{kind.value}" for kind in FlagKind)
    # a reported use: what and how, who is told, harm reduction (bot.risk.use)
    keys.update(f"checkin.buttons.use_what.{substance.value}" for substance in CHOICES)
    keys.update(f"checkin.buttons.use_how.{key}" for key in USE_HOW)
    keys.update(f"use.told_{tier.value}" for tier in Tier)
    keys.update(f"use.advice.{advice.value}" for advice in Advice)
    keys.update(f"use.withdrawal.{kind.value}" for kind in Withdrawal)
    keys.add("use.exercise_offer")
    keys.add("coping.too_strong")  # a module not for a craving this strong (Module.max_craving)
    keys.update(
        f"coping.strong.{key}"
        for key in (
            "offer",
            "support_button",
            "delay_button",
            "support",
            "no_support",
            "delayed",
            "check_back",
            "better_button",
            "strong_button",
            "better",
        )
    )
    keys.update(f"caseload.arrows.{trend.value}" for trend in Trend)
    keys.update(f"caseload.statuses.{status.value}" for status in EscalationStatus)
    keys.update(
        f"caseload.{name}"
        for name in (
            "header",
            "header_program",
            "empty",
            "admin_only",
            "line",
            "previous_button",
            "next_button",
            "patient_usage",
            "not_found",
            "summary",
            "day_line",
            "alert_item",
            "plan",
            "notes",
            "note_line",
            "note_someone",
            "note_usage",
            "note_saved",
            "chart_title",
            "digest_usage",
            "digest_set",
            "digest_off",
            "digest_bad_time",
            "digest",
            "silent_never",
        )
    )
    keys.update(f"escalation.levels.{level}" for level in ("imminent", "high"))
    keys.update(f"escalation.categories.{category.value}" for category in RiskCategory)
    keys.update(f"escalation.outcomes.{outcome.value}" for outcome in Outcome)
    keys.update(f"escalation.verdicts.{verdict.value}" for verdict in Verdict)
    # What a patient is promised when the care team is told (bot.risk.promise), by the clinic's hours
    keys.update(f"promise.{kind.value}" for kind in Promise)
    keys.update(f"promise.when.{day}" for day in ("today", "tomorrow", "weekday", "date"))
    keys.update(f"promise.weekdays.{day}" for day in range(7))
    keys.update(("promise.time_format", "promise.delayed"))
    keys.update(f"coping.categories.{category.value}" for category in Category)
    keys.update(f"cssrs.questions.{question.value}" for question in CssrsQuestion)
    keys.update(f"cssrs.begin_{period.value}" for period in CssrsPeriod)
    keys.update(f"escalation.screener_questions.{question.value}" for question in CssrsQuestion)
    keys.update(f"escalation.screener_risk.{risk.value}" for risk in ColumbiaRisk)
    keys.update(f"plan.steps.{step.value}.{part}" for step in PlanStep for part in ("title", "prompt"))
    keys.update(f"history.days_{days}_button" for days in HISTORY_WINDOWS)
    keys.update(f"schedule.weekdays.{day}" for day in range(7))
    keys.update(f"schedule.buttons.{rsvp.value}" for rsvp in Rsvp)
    keys.update(f"schedule.thanks_{rsvp.value}" for rsvp in (Rsvp.COMING, Rsvp.LATE))
    # /mydata, /deleteme and the end of care
    keys.update(f"mydata.{key}" for key in ("sending", "json_caption", "html_caption"))
    keys.update(f"mydata.html.{label}" for label in EXPORT_LABELS)
    keys.update(f"mydata.values.{code}" for code in value_codes())
    keys.update(
        f"deleteme.{key}"
        for key in ("confirm_prompt", "confirm_button", "cancel_button", "kept", "done", "deferred")
    )
    keys.add("discharge.goodbye")
    # medication reminders, naloxone, messages from the care team (issue 22; bot.medcare)
    keys.update(MEDCARE_KEYS)
    keys.update(f"meds.kinds.{kind.value}" for kind in MedicationKind)
    keys.update(f"meds.kind_buttons.{kind.value}" for kind in MedicationKind)
    keys.update(f"meds.dose.buttons.{answer.value}" for answer in DOSE_ANSWERS)
    keys.update(f"meds.dose.answers.{answer.value}" for answer in DOSE_ANSWERS)
    keys.update(f"naloxone.buttons.{answer}" for answer in NALOXONE_ANSWERS)
    keys.update(f"naloxone.answers.{answer}" for answer in NALOXONE_ANSWERS)
    keys.update(  # what was used and how: the daily check-in's questions (bot.medcare.prompts)
        f"aftercare.ask.{question.value}" for question in AftercareQuestion if question not in AFTERCARE_USE
    )
    keys.update(f"aftercare.connected.{value}" for value in AFTERCARE_CONNECTED)
    # Validated questionnaires (bot.measures): the patient's side, then the care team's (/measure, /patient)
    keys.update(f"measures.{key}" for key in MEASURE_KEYS)
    keys.update(f"measures_team.{key}" for key in MEASURE_TEAM_KEYS)
    keys.update(SOS_KEYS)
    keys.update(PLAN_KEYS)
    keys.update(CONSENT_KEYS)
    return frozenset(keys)
