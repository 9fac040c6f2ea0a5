"""Button data of the risk flows: the care team's alert ("esc:...", resolve's verdict and outcome among
them, each but the oldest carrying what the counselor saw: "esc:5:ack:1796000000000"), the C-SSRS screener
("css:..."), the safety plan ("plan:..."), the safety question ("rsk:...") and /sos ("sos:..."); and the
outbox keys of pages ("page:ESCALATION:STAGE:COUNSELOR") and of the patient's "a counselor saw it"
("ack-told:ESCALATION").
Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement

from bot.core.callbacks import COUNT, ID, Codec, OneOf, Part, choice, member
from bot.core.models import OutboxMessage
from bot.risk.cssrs import PERMISSION, Question
from bot.risk.escalation import REAL_CONCERN_OUTCOMES, Outcome, Verdict
from bot.risk.safety_plan import STEPS, Step

# acknowledge (the patient is told), acknowledge quietly (they are not), resolve (choose how), details, plan
AlertAction = Literal["ack", "ackq", "res", "det", "plan"]
PlanAction = Literal["start", "later", "show", "edit", "stop"]
PlanStepAction = Literal["step", "skip", "keep"]  # edit that step; leave it empty; keep what it says


# ---- the counselor's alert ---------------------------------------------------------------------------------


# What the counselor saw when the button was sent: the time of the escalation's last message that paged
# (`escalation.seen`). Written as ":" and the number after the rest; buttons sent before it was carried have
# nothing there, read as UNSEEN (they never match: the counselor is shown the alert as it is now).
UNSEEN = 0
SEEN: Part[int] = Part(
    r"(?::[0-9]{1,19})?",
    lambda text: int(text[1:]) if text else UNSEEN,
    lambda seen: f":{seen}" if seen else "",
)


@dataclass(frozen=True)
class AlertButton:
    escalation_id: int
    action: AlertAction
    seen: int


@dataclass(frozen=True)
class AlertOutcome:
    """Resolved, and how (the buttons before the verdict was asked: still on counselors' messages). They say
    nothing of what was seen: a tap is answered with the alert as it is now."""

    escalation_id: int
    outcome: Outcome


@dataclass(frozen=True)
class AlertVerdict:
    """Resolve's first question: a real concern (then how it was resolved) or a false alarm (resolved)."""

    escalation_id: int
    verdict: Verdict
    seen: int


@dataclass(frozen=True)
class AlertResolved:
    """A real concern, resolved, and how."""

    escalation_id: int
    outcome: Outcome
    verdict: Verdict
    seen: int


ALERT = Codec(
    "esc:{escalation_id}:{action}{seen}",
    AlertButton,
    escalation_id=ID,
    action=choice("ack", "ackq", "res", "det", "plan"),
    seen=SEEN,
)
ALERT_OUTCOME = Codec(
    "esc:{escalation_id}:out:{outcome}", AlertOutcome, escalation_id=ID, outcome=member(Outcome)
)
ALERT_VERDICT = Codec(
    "esc:{escalation_id}:is:{verdict}{seen}",
    AlertVerdict,
    escalation_id=ID,
    verdict=member(Verdict),
    seen=SEEN,
)
ALERT_RESOLVED = Codec(
    "esc:{escalation_id}:out:{outcome}:{verdict}{seen}",
    AlertResolved,
    escalation_id=ID,
    outcome=member(Outcome, REAL_CONCERN_OUTCOMES),
    verdict=member(Verdict, (Verdict.REAL_CONCERN,)),
    seen=SEEN,
)
AlertTap = AlertButton | AlertOutcome | AlertVerdict | AlertResolved
ALERT_BUTTONS: OneOf[AlertTap] = OneOf(ALERT, ALERT_OUTCOME, ALERT_VERDICT, ALERT_RESOLVED)


# ---- the screener, the safety plan, the safety question ----------------------------------------------------


@dataclass(frozen=True)
class ScreenerAnswer:
    screen_id: int
    question: Question | Literal["ask"]  # "ask": the permission before the first question (cssrs.PERMISSION)
    yes: bool


def _step(text: str) -> Question | Literal["ask"] | None:
    return "ask" if text == PERMISSION else _QUESTION.read(text)


def _step_text(step: Question | Literal["ask"]) -> str:
    return step.value if isinstance(step, Question) else step


_QUESTION = member(Question)
_YES_NO: Part[bool] = Part("y|n", lambda text: text == "y", lambda yes: "y" if yes else "n")
SCREENER = Codec(
    "css:{screen_id}:{question}:{yes}",
    ScreenerAnswer,
    screen_id=ID,
    question=Part(f"{_QUESTION.pattern}|{PERMISSION}", _step, _step_text),
    yes=_YES_NO,
)


@dataclass(frozen=True)
class PlanButton:
    action: PlanAction


@dataclass(frozen=True)
class PlanStepButton:
    action: PlanStepAction
    step: Step


PLAN = Codec("plan:{action}", PlanButton, action=choice("start", "later", "show", "edit", "stop"))
PLAN_STEP = Codec(
    "plan:{action}:{step}", PlanStepButton, action=choice("step", "skip", "keep"), step=member(Step, STEPS)
)
PLAN_BUTTONS: OneOf[PlanButton | PlanStepButton] = OneOf(PLAN, PLAN_STEP)


@dataclass(frozen=True)
class SafetyAnswer:
    """The answer to "are you safe right now?"."""

    answer: Literal["safe", "help", "call", "nocall"]  # "call": may the care team call (danger at home)


SAFETY_CHECK = Codec("rsk:{answer}", SafetyAnswer, answer=choice("safe", "help", "call", "nocall"))


@dataclass(frozen=True)
class SosButton:
    """/sos: "tell my care team now"."""

    action: Literal["team"]


SOS = Codec("sos:{action}", SosButton, action=choice("team"))


# ---- pages in the outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageKey:
    """One page: one per escalation, stage and counselor, so paging a stage twice sends nothing new."""

    escalation_id: int
    stage: int
    counselor_id: int


PAGE_KEY = Codec(
    "page:{escalation_id}:{stage}:{counselor_id}",
    PageKey,
    limit=None,
    escalation_id=ID,
    stage=COUNT,
    counselor_id=ID,
)


@dataclass(frozen=True)
class AckTold:
    """The patient is told a counselor saw their alert: once per escalation, however many taps."""

    escalation_id: int


ACK_TOLD = Codec("ack-told:{escalation_id}", AckTold, limit=None, escalation_id=ID)


def pages_of(escalation_id: int) -> ColumnElement[bool]:
    """A condition on outbox rows: the pages of this escalation, every stage and counselor."""
    return OutboxMessage.key.startswith(PAGE_KEY.prefix(escalation_id=escalation_id), autoescape=True)
