"""Flags for the care team: things a counselor should know about, raised by rules, never by free text.

A flag names the patient by alias and says what kind of thing happened; the details stay in the record.
The risk and escalation rules (crisis alerts with acknowledgement and re-paging) build on this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import CareFlag, Counselor, Patient
from bot.core.people import care_team


class FlagKind(enum.StrEnum):
    MISSED_CHECKINS = "missed_checkins"
    MISSED_SESSIONS = "missed_sessions"  # "can't make it" to several sessions in a row
    UNREACHABLE = "unreachable"  # Telegram refuses messages to the patient: they blocked the bot
    SCREENER_DECLINED = "screener_declined"  # "Not now" to the C-SSRS questions after a risk signal
    SCREENER_REFERRAL = "screener_referral"  # a low C-SSRS result: a referral, for the next business day
    SAFETY_UNANSWERED = "safety_unanswered"  # "Are you safe right now?" went unanswered
    NOT_SAFE_TO_CALL = "not_safe_to_call"  # danger at home: the patient says a call is not safe now
    SAFE_TO_CALL = "safe_to_call"  # danger at home: the patient says the care team may call
    DELETION_WAITING = "deletion_waiting"  # /deleteme waits until the patient's open alerts are resolved
    SAFETY_PLAN_MADE = "safety_plan_made"  # the patient wrote the first step of their safety plan
    SAFETY_PLAN_CHANGED = "safety_plan_changed"  # ... or changed a plan they had (the words stay in it)
    USE_REPORTED = "use_reported"  # a use that needs no page (bot.risk.use): for the next business day
    DOSE_MISSED = "dose_missed"  # a missed or run-out buprenorphine or methadone dose
    TALK_REQUESTED = "talk_requested"  # "Talk to my care team", offered after a message about feelings
    DOSES_MISSED = "doses_missed"  # "Missed" to the medication reminder two days in a row (bot.medcare)
    MEDICINE_RAN_OUT = "medicine_ran_out"  # "Ran out" to the medication reminder (bot.medcare)
    AFTERCARE_HELP = "aftercare_help"  # in aftercare: "I'd like help" finding ongoing care (bot.medcare)
    MEASURE_FLAGGED = (
        "measure_flagged"  # a questionnaire score at its flag threshold, or risen (bot.measures)
    )
    MEASURE_SAFETY = "measure_safety"  # a questionnaire's safety item (PHQ-9 item 9) above "not at all"


@dataclass(frozen=True)
class Notice:
    """A message for one counselor's chat: which text, about which patient."""

    chat_id: int
    language: str
    kind: FlagKind
    alias: str
    count: int | None = None
    patient_id: int | None = None  # the patient it is about (erasing them deletes the queued notice)


async def raise_flag(
    session: AsyncSession, patient: Patient, kind: FlagKind, now: datetime, **detail: int | str
) -> list[Notice]:
    """Record the flag and return a notice for each linked counselor on the patient's care team."""
    flag = CareFlag(patient_id=patient.id, kind=kind.value, created_at=now, detail=detail or None)
    session.add(flag)
    await session.flush()
    audit.record(
        session,
        "care_flag.raised",
        actor_type="system",
        subject_type="patient",
        subject_id=patient.id,
        kind=kind.value,
        flag_id=flag.id,
    )
    team: list[Counselor] = await care_team(session, patient.id)
    count = detail.get("count")
    return [
        Notice(
            c.chat_id,
            c.language,
            kind,
            patient.alias,
            count if isinstance(count, int) else None,
            patient_id=patient.id,
        )
        for c in team
        if c.chat_id is not None
    ]
