"""The promise a patient reads when their care team has been told (`bot.risk.promise` decides which)."""

from __future__ import annotations

from bot.core.models import Patient, utcnow
from bot.handlers.base import Turn
from bot.risk import promise as rules


async def promise(t: Turn, patient: Patient, escalation_id: int | None = None) -> str:
    """What the care team will do about the alert (`escalation_id`, else the patient's latest open one), in
    words the clinic can keep now."""
    now = utcnow()
    if escalation_id is None:
        escalation_id = await rules.latest_open(t.session, patient.id)
    kept = await rules.promise_for(t.session, t.runtime.settings, now, escalation_id)
    return rules.render(t.runtime, kept, patient.timezone, t.language, now)


def unshared(t: Turn, patient: Patient, why: rules.Promise = rules.Promise.NOT_SHARED) -> str:
    """For a patient who does not share (stopped, /revoke; or not agreed yet): their care team was not
    told, and whom to call."""
    kept = rules.Kept(why)
    return rules.render(t.runtime, kept, patient.timezone, t.language, utcnow())
