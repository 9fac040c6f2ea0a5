"""Button data of medication support ("med:...", "dose:...", "supply:..."), naloxone ("nalox:..."), care-team
messages ("cmsg:...", "cmr:..."), what a patient is typing for these features (kept in
`Patient.onboarding_step`), and the outbox keys of their messages. Written and read only here (see
bot.core.callbacks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bot.core.callbacks import COUNT, DAY, ID, NUMBER, Codec, OneOf, Part, choice, member, word
from bot.core.models import DoseStatus

# ---- /meds: the patient's set-up, one button a step ------------------------------------------------------

SETUP_STEPS = ("kind", "time", "shot", "show", "supply", "menu")
MENU_CHOICES = ("change", "stop", "naloxone", "none")


@dataclass(frozen=True)
class MedButton:
    """A set-up answer: `step` is the question, `value` the answer (a medicine, a clock time "0900", days
    from today, "yes"/"no", "other" to type it, or a menu choice)."""

    step: str
    value: str


MED = Codec("med:{step}:{value}", MedButton, step=choice(*SETUP_STEPS), value=word(r"[a-z0-9_]{1,20}"))

# ---- the daily dose reminder and the refill or shot reminder -----------------------------------------------

ANSWERS = (DoseStatus.TAKEN, DoseStatus.NOT_YET, DoseStatus.MISSED, DoseStatus.RAN_OUT)


@dataclass(frozen=True)
class DoseButton:
    dose_id: int
    answer: DoseStatus


DOSE = Codec("dose:{dose_id}:{answer}", DoseButton, dose_id=ID, answer=member(DoseStatus, ANSWERS))


@dataclass(frozen=True)
class SupplyButton:
    """ "I got it" on a refill or shot reminder."""

    plan_id: int


SUPPLY = Codec("supply:{plan_id}:got", SupplyButton, plan_id=ID)

# ---- naloxone ----------------------------------------------------------------------------------------------

NALOXONE_ANSWERS = ("yes", "no", "unsure")


@dataclass(frozen=True)
class NaloxoneButton:
    answer: str


NALOXONE = Codec("nalox:{answer}", NaloxoneButton, answer=choice(*NALOXONE_ANSWERS))

# ---- messages from the care team ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyButton:
    """The patient's "Reply" under a message from their care team."""

    message_id: int


REPLY = Codec("cmsg:{message_id}:reply", ReplyButton, message_id=ID)


@dataclass(frozen=True)
class ReplyDetails:
    """The counselor's "Show details" under the notice of a patient's reply."""

    reply_id: int


REPLY_DETAILS = Codec("cmr:{reply_id}", ReplyDetails, reply_id=ID)

# ---- what the patient is typing (Patient.onboarding_step, at most 32 characters) ---------------------------

TYPED_FIELDS = ("name", "time", "shot", "supply")


def _moment(text: str) -> datetime:
    return datetime.fromtimestamp(int(text), UTC)  # ten digits at most: before the year 2286


def _seconds(moment: datetime) -> str:
    return str(int(moment.timestamp()))


# When the patient was asked to type: whole seconds since 1970 (UTC), so an old answer can be told apart.
_ASKED_AT: Part[datetime] = Part(r"[0-9]{1,10}", _moment, _seconds)


@dataclass(frozen=True)
class TypingMed:
    """A set-up answer the patient chose to type (the medicine's name, a time, a date), and when it was
    asked."""

    field: str
    asked_at: datetime


@dataclass(frozen=True)
class TypingReply:
    """An answer to a care-team message, and when the patient tapped Reply."""

    message_id: int
    asked_at: datetime


TYPING_MED = Codec(
    "med_{field}@{asked_at}", TypingMed, limit=32, field=choice(*TYPED_FIELDS), asked_at=_ASKED_AT
)
TYPING_REPLY = Codec(
    "reply:{message_id}@{asked_at}", TypingReply, limit=32, message_id=ID, asked_at=_ASKED_AT
)
TYPING: OneOf[TypingMed | TypingReply] = OneOf(TYPING_MED, TYPING_REPLY)
# Written before typed answers had a time (December 2026): read as too old to be an answer.
TYPING_UNTIMED = re.compile(r"med_[a-z]+|reply:[0-9]+")

# ---- outbox keys -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoseKey:
    kind: str  # "dose_prompt", or "dose_again" after "Not yet"
    dose_id: int


DOSE_KINDS = ("dose_prompt", "dose_again")
DOSE_KEY = Codec("{kind}:{dose_id}", DoseKey, limit=None, kind=choice(*DOSE_KINDS), dose_id=ID)


@dataclass(frozen=True)
class SupplyKey:
    """A refill or shot reminder: for the plan, the supply day, and how many days before it."""

    plan_id: int
    day: date
    before: int


SUPPLY_KIND = "supply_due"
SUPPLY_KEY = Codec(
    "supply:{plan_id}:{day}:{before}", SupplyKey, limit=None, plan_id=ID, day=DAY, before=COUNT
)


@dataclass(frozen=True)
class PlanSetKey:
    """The patient told that their counselor set up or stopped their reminders: once per counselor command
    (the update that carried it)."""

    plan_id: int
    update_id: int


PLAN_SET_KIND = "med_set"
PLAN_SET_KEY = Codec("med-set:{plan_id}:{update_id}", PlanSetKey, limit=None, plan_id=ID, update_id=NUMBER)


@dataclass(frozen=True)
class ReplaceKey:
    """After a crisis message about an overdose: the reminder to replace the naloxone, once per alert."""

    escalation_id: int


REPLACE_KIND = "naloxone_replace"
REPLACE_KEY = Codec("nalox-replace:{escalation_id}", ReplaceKey, limit=None, escalation_id=ID)


@dataclass(frozen=True)
class CareMessageKey:
    message_id: int


CARE_MESSAGE_KIND = "care_message"
CARE_MESSAGE_KEY = Codec("cmsg:{message_id}", CareMessageKey, limit=None, message_id=ID)


@dataclass(frozen=True)
class ReplyNoticeKey:
    reply_id: int
    counselor_id: int


REPLY_NOTICE_KIND = "care_reply"
REPLY_NOTICE_KEY = Codec(
    "cmsg-reply:{reply_id}:{counselor_id}", ReplyNoticeKey, limit=None, reply_id=ID, counselor_id=ID
)


# ---- aftercare ---------------------------------------------------------------------------------------------

OFFER_CHOICES = ("yes", "no", "stop")


@dataclass(frozen=True)
class AftercareChoice:
    """The offer at discharge ("yes", "no"), or "stop" under an aftercare check-in."""

    choice: str


AFTERCARE_CHOICE = Codec("after:{choice}", AftercareChoice, choice=choice(*OFFER_CHOICES))

AFTERCARE_FIELDS = ("craving", "mood", "use", "use_what", "use_how", "connected")


@dataclass(frozen=True)
class AftercareAnswer:
    checkin_id: int
    field: str
    value: str  # a number, "yes"/"no", a substance, "alone"/"injected"/"neither", "not_yet"/"help", or "skip"


AFTERCARE_ANSWER = Codec(
    "afc:{checkin_id}:{field}:{value}",
    AftercareAnswer,
    checkin_id=ID,
    field=choice(*AFTERCARE_FIELDS),
    value=word(r"[a-z0-9_]{1,10}"),
)


@dataclass(frozen=True)
class AftercareKey:
    """An aftercare message the bot sends on its own: the check-in's first question, its next question after
    a use question was given up on, or the last word when aftercare ends."""

    kind: str
    ref: int  # the check-in's id, or the patient's when aftercare ends


AFTERCARE_KINDS = ("aftercare_prompt", "aftercare_next", "aftercare_ended")
AFTERCARE_KEY = Codec("{kind}:{ref}", AftercareKey, limit=None, kind=choice(*AFTERCARE_KINDS), ref=ID)


@dataclass(frozen=True)
class OfferKey:
    patient_id: int
    update_id: int  # the discharge's moment in seconds (the CLI has no update)


OFFER_KIND = "aftercare_offer"
OFFER_KEY = Codec(
    "aftercare-offer:{patient_id}:{update_id}", OfferKey, limit=None, patient_id=ID, update_id=NUMBER
)
