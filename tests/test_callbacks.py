"""Button data and outbox keys: each kind keeps its exact form (buttons on messages patients already have, and
keys already in the outbox, carry it), reaches the one handler registered for it, and reads back to nothing
when it names what no row can be."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from telegram.ext import Application, CallbackQueryHandler

from bot.careteam.callbacks import (
    CARE,
    FLAG_KEY,
    NOTICE_TOLD,
    CareButton,
    FlagKey,
    MomentEvent,
    NoticeTold,
    RowEvent,
    UseEvent,
)
from bot.careteam.flags import FlagKind
from bot.checkin.callbacks import CHECKIN, HISTORY, PROMPT_KEY, CheckinButton, HistoryButton, PromptKey
from bot.checkin.rules import Question as CheckinQuestion
from bot.content.modules import Category
from bot.coping.callbacks import (
    CATEGORY,
    MENU,
    MODULE,
    RUN,
    CategoryButton,
    MenuButton,
    ModuleButton,
    RunButton,
)
from bot.core.callbacks import MAX_ID, Codec
from bot.core.models import Rsvp
from bot.enrollment.callbacks import (
    CONSENT,
    REVOKE,
    SETTING_ANSWER,
    SETTING_CHOSEN,
    SETUP,
    ConsentButton,
    RevokeButton,
    SettingAnswer,
    SettingChosen,
    SetupAnswer,
)
from bot.enrollment.onboarding import Step
from bot.handlers import register
from bot.measures.callbacks import DONE_KEY, MEASURE, DoneKey, MeasureButton
from bot.measures.callbacks import PROMPT_KEY as MEASURE_PROMPT_KEY
from bot.measures.callbacks import PromptKey as MeasurePromptKey
from bot.outbox.callbacks import REPLY_KEY, ReplyKey
from bot.privacy.callbacks import DELETED_KEY, DELETION, GOODBYE_KEY, DeletedKey, DeletionButton, GoodbyeKey
from bot.risk import safety_plan
from bot.risk.callbacks import (
    ALERT,
    ALERT_OUTCOME,
    ALERT_RESOLVED,
    ALERT_VERDICT,
    PAGE_KEY,
    PLAN,
    PLAN_STEP,
    SAFETY_CHECK,
    SCREENER,
    UNSEEN,
    AlertButton,
    AlertOutcome,
    AlertResolved,
    AlertVerdict,
    PageKey,
    PlanButton,
    PlanStepButton,
    SafetyAnswer,
    ScreenerAnswer,
)
from bot.risk.cssrs import Question as ScreenerQuestion
from bot.risk.escalation import Outcome, Verdict
from bot.schedule.callbacks import (
    NOTICE_KEY,
    REMINDER_KEY,
    RSVP,
    SKIP_REASON,
    NoticeKey,
    ReminderKey,
    RsvpButton,
    SkipReason,
)
from bot.workspace.callbacks import CASELOAD_PAGE, DIGEST_KEY, CaseloadPage, DigestKey
from tests.harness import TEST_TOKEN

START = datetime(2027, 3, 10, 23, 0, tzinfo=UTC)  # occurrence 30078660 (minutes since 1970)
SEEN_AT = 1_796_000_000_123  # an alert's last signal, in milliseconds since 1970 (escalation.seen)

BUTTONS: list[tuple[Codec[Any], object, str]] = [
    (CONSENT, ConsentButton("accept"), "consent:accept"),
    (REVOKE, RevokeButton("cancel"), "revoke:cancel"),
    (SETUP, SetupAnswer(Step.TIMEZONE, "America/New_York"), "tz:America/New_York"),
    (SETUP, SetupAnswer(Step.CHECKIN_TIME, "20:00"), "time:20:00"),
    (SETUP, SetupAnswer(Step.LANGUAGE, "es"), "lang:es"),
    (SETTING_CHOSEN, SettingChosen(Step.TIMEZONE), "set:tz"),
    (SETTING_ANSWER, SettingAnswer(Step.CHECKIN_TIME, "other"), "set:time:other"),
    (CHECKIN, CheckinButton(12, CheckinQuestion.CRAVING, "7"), "ci:12:craving:7"),
    (CHECKIN, CheckinButton(12, "trig", "stress"), "ci:12:trig:stress"),
    (CHECKIN, CheckinButton(12, CheckinQuestion.USE_WHAT, "skip"), "ci:12:use_what:skip"),
    (HISTORY, HistoryButton(30), "hist:30"),
    (MENU, MenuButton(), "cope:menu"),
    (CATEGORY, CategoryButton(Category.URGE_MANAGEMENT), "cope:cat:urge_management"),
    (MODULE, ModuleButton("box_breathing"), "cope:mod:box_breathing"),
    (RUN, RunButton(3, "before", "skip"), "cs:3:before:skip"),
    (RUN, RunButton(3, "next", "2"), "cs:3:next:2"),
    (ALERT, AlertButton(5, "ack", SEEN_AT), "esc:5:ack:1796000000123"),
    (ALERT, AlertButton(5, "ackq", UNSEEN), "esc:5:ackq"),  # sent before what was seen was carried
    (ALERT_OUTCOME, AlertOutcome(5, Outcome.FALSE_ALARM), "esc:5:out:false_alarm"),
    (ALERT_VERDICT, AlertVerdict(5, Verdict.FALSE_ALARM, SEEN_AT), "esc:5:is:false_alarm:1796000000123"),
    (ALERT_VERDICT, AlertVerdict(5, Verdict.FALSE_ALARM, UNSEEN), "esc:5:is:false_alarm"),
    (
        ALERT_RESOLVED,
        AlertResolved(5, Outcome.EMERGENCY, Verdict.REAL_CONCERN, SEEN_AT),
        "esc:5:out:emergency:real_concern:1796000000123",
    ),
    (
        ALERT_RESOLVED,
        AlertResolved(5, Outcome.EMERGENCY, Verdict.REAL_CONCERN, UNSEEN),
        "esc:5:out:emergency:real_concern",
    ),
    (SCREENER, ScreenerAnswer(9, ScreenerQuestion.WISH_DEAD, True), "css:9:wish_dead:y"),
    (SCREENER, ScreenerAnswer(9, ScreenerQuestion.BEHAVIOR_RECENT, False), "css:9:recent:n"),
    (PLAN, PlanButton("later"), "plan:later"),
    (PLAN_STEP, PlanStepButton("keep", safety_plan.Step.HELP_PEOPLE), "plan:keep:help_people"),
    (SAFETY_CHECK, SafetyAnswer("help"), "rsk:help"),
    (RSVP, RsvpButton(4, START, Rsvp.CANNOT), "rsvp:4:30078660:cannot"),
    (SKIP_REASON, SkipReason(8), "rsvp:skip:8"),
    (DELETION, DeletionButton("no", 77), "deleteme:no:77"),
    (CASELOAD_PAGE, CaseloadPage(2), "cl:2"),
    (CARE, CareButton("talk"), "care:talk"),
    (MEASURE, MeasureButton(11, "9", 1), "ms:11:9:1"),
    (MEASURE, MeasureButton(11, "difficulty", 0), "ms:11:difficulty:0"),
    (MEASURE, MeasureButton(11, "7a", 4), "ms:11:7a:4"),
]
KEYS: list[tuple[Codec[Any], object, str]] = [
    (PAGE_KEY, PageKey(5, 0, 3), "page:5:0:3"),
    (REMINDER_KEY, ReminderKey(4, START, 7, 1440), "rem:4:30078660:7:1440"),
    (NOTICE_KEY, NoticeKey(8, "cannot", 3, 1_700_000_000), "rsvp:8:cannot:3:1700000000"),
    (PROMPT_KEY, PromptKey("checkin_nudge", 6), "checkin_nudge:6"),
    (MEASURE_PROMPT_KEY, MeasurePromptKey("measure_resume", 6, 739593), "measure_resume:6:739593"),
    (MEASURE_PROMPT_KEY, MeasurePromptKey("measure_prompt", 6, 0), "measure_prompt:6:0"),
    (DONE_KEY, DoneKey(6), "measure_done:6"),
    (DIGEST_KEY, DigestKey(3, date(2027, 3, 10)), "digest:3:2027-03-10"),
    (REPLY_KEY, ReplyKey(987_654_321_012, 0), "reply:987654321012:0"),
    (GOODBYE_KEY, GoodbyeKey(9, 1_700_000_000), "discharge:9:1700000000"),
    (DELETED_KEY, DeletedKey("0f" * 16), f"deleted:{'0f' * 16}"),
    (FLAG_KEY, FlagKey("a1" * 16), f"flag:{'a1' * 16}"),
    # What a notice's key hashes (see tests/test_notice_keys.py): the flag, the event, the counselor's chat.
    (NOTICE_TOLD, NoticeTold(FlagKind.MISSED_SESSIONS, RowEvent(4), 8), "missed_sessions:4:8"),
    (NOTICE_TOLD, NoticeTold(FlagKind.USE_REPORTED, UseEvent("use", 4), 8), "use_reported:use:4:8"),
    (
        NOTICE_TOLD,
        NoticeTold(FlagKind.USE_REPORTED, UseEvent("aftercare-use", 4), 8),
        "use_reported:aftercare-use:4:8",
    ),
    (
        NOTICE_TOLD,
        NoticeTold(FlagKind.UNREACHABLE, MomentEvent(4, 1_764_601_200_123), -100),
        "unreachable:4:1764601200123:-100",
    ),
]


@pytest.mark.parametrize(("codec", "value", "text"), BUTTONS + KEYS, ids=[t for _, _, t in BUTTONS + KEYS])
def test_each_kind_keeps_its_form_and_reads_back(codec: Codec[Any], value: object, text: str) -> None:
    assert codec.pack(value) == text
    assert codec.parse(text) == value
    assert re.match(codec.pattern, text)


def _registered() -> list[CallbackQueryHandler[Any, Any]]:
    application = Application.builder().token(TEST_TOKEN).build()
    register(application)
    return [h for h in application.handlers[0] if isinstance(h, CallbackQueryHandler)]


@pytest.mark.parametrize("text", [t for _, _, t in BUTTONS])
def test_each_button_reaches_one_handler(text: str) -> None:
    handlers = _registered()
    claimed = [h for h in handlers if h.pattern is not None and h.check_update(_tap(text))]
    assert len(claimed) == 1, text  # and the catch-all for stray buttons comes after it
    assert handlers[-1].pattern is None and handlers.index(claimed[0]) < len(handlers) - 1


def _tap(data: str) -> Any:
    from telegram import CallbackQuery, Update, User

    user = User(1, "Test", is_bot=False)
    return Update(1, callback_query=CallbackQuery("1", user, "chat", data=data))


@pytest.mark.parametrize(
    ("codec", "template"),
    [
        (CHECKIN, "ci:{}:craving:5"),
        (RUN, "cs:{}:before:5"),
        (SCREENER, "css:{}:wish_dead:y"),
        (ALERT, "esc:{}:ack"),
        (ALERT, "esc:{}:res:1796000000123"),
        (ALERT_OUTCOME, "esc:{}:out:safe"),
        (ALERT_VERDICT, "esc:{}:is:real_concern:1796000000123"),
        (ALERT_RESOLVED, "esc:{}:out:other:real_concern:1796000000123"),
        (RSVP, "rsvp:{}:30078660:coming"),
        (RSVP, "rsvp:4:{}:coming"),
        (SKIP_REASON, "rsvp:skip:{}"),
        (DELETION, "deleteme:yes:{}"),
        (MEASURE, "ms:{}:1:0"),
    ],
)
def test_ids_no_row_can_have_read_as_nothing(codec: Codec[Any], template: str) -> None:
    assert codec.parse(template.format(MAX_ID)) is not None
    for impossible in (0, MAX_ID + 1, 999_999_999_999, "-1", "", "1e3", " 5", "５"):
        assert codec.parse(template.format(impossible)) is None, impossible


@pytest.mark.parametrize(
    "forged",
    [
        "ci:5:bogus:5",
        "ci:5:craving:5:6",
        "cope:cat:cooking",
        "esc:5:out:maybe",
        "esc:5:is:maybe",
        "esc:5:out:false_alarm:real_concern",  # a false alarm is never a real concern
        "esc:5:out:safe:false_alarm",  # a false alarm is resolved by its own button
        "plan:step:nothing",
        "rsk:",
        "x" * 64,
    ],
)
def test_malformed_data_reads_as_nothing(forged: str) -> None:
    for codec, _, _ in BUTTONS:
        assert codec.parse(forged) is None


def test_too_long_or_unreadable_values_are_not_packed() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        SETTING_ANSWER.pack(SettingAnswer(Step.TIMEZONE, "A" * 60))  # 69 bytes: Telegram would refuse it
    with pytest.raises(ValueError, match="not a valid"):
        CHECKIN.pack(CheckinButton(0, "craving", "5"))
    with pytest.raises(ValueError, match="not a valid"):
        MODULE.pack(ModuleButton("Box Breathing"))


def test_key_prefixes_match_every_stage_and_nothing_else() -> None:
    assert PAGE_KEY.prefix(escalation_id=5) == "page:5:"
    assert REMINDER_KEY.prefix(session_id=4) == "rem:4:"
    assert REMINDER_KEY.prefix(session_id=4, occurrence=START, patient_id=7) == "rem:4:30078660:7:"
    with pytest.raises(TypeError):
        REMINDER_KEY.prefix(patient_id=7)  # not the first part: no prefix says it
