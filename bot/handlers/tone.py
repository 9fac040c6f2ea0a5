"""A message that raises no risk and that nothing was waiting for: a greeting gets a greeting, a feeling put
into words a kind reply with choices (an exercise, talk to my care team, the crisis lines), anything else
"I didn't understand". None of them carries the 988/911 footer: that is for where risk is in play."""

from __future__ import annotations

import logging

from bot.careteam.callbacks import CARE, CareButton
from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.coping.callbacks import MENU_DATA
from bot.core.models import Patient
from bot.handlers.base import Turn
from bot.handlers.guards import patient_button
from bot.handlers.promise import promise
from bot.risk.tone import Tone, phrases, tone_of

log = logging.getLogger(__name__)


async def answer_unhandled(t: Turn, patient: Patient, text: str) -> None:
    said = tone_of(text, phrases(t.text("tone.greetings")), phrases(t.text("tone.feelings")))
    log.info("event=tone.answered patient_id=%s", patient.id)
    if said is Tone.GREETING:
        await t.reply("tone.greeting")
    elif said is Tone.FEELING:
        await t.reply(
            "tone.feeling",
            buttons=[
                [(t.text("tone.exercise_button"), MENU_DATA)],
                [(t.text("tone.talk_button"), CARE.pack(CareButton("talk")))],
                [(t.text("tone.lines_button"), CARE.pack(CareButton("lines")))],
            ],
        )
    else:
        await t.reply("input.not_understood")


@patient_button(CARE)
async def on_button(t: Turn, patient: Patient, button: CareButton) -> None:
    """ "Talk to my care team": a flag to the care team (no page: nothing in the message showed risk), and
    what they will do, by the clinic's hours. "Crisis lines": the lines."""
    t.clear_buttons()
    if button.choice == "lines":
        await t.reply("tone.lines")
        return
    if await tell_care_team(t.runtime, t.session, patient, FlagKind.TALK_REQUESTED):
        t.wake_outbox()
    log.info("event=tone.talk_requested patient_id=%s", patient.id)
    await t.reply("tone.talk_told", promise=await promise(t, patient))
