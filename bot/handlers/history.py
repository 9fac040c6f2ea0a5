"""/history: the last 14 or 30 days as a chart (a photo) with a one-line summary for screen readers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.checkin import rules
from bot.checkin.callbacks import HISTORY, HISTORY_WINDOWS, HistoryButton
from bot.checkin.history import ChartLabels, fill_window, render_chart, summarize
from bot.core.models import Patient, utcnow
from bot.handlers.base import Turn
from bot.handlers.guards import patient_button, patient_only

log = logging.getLogger(__name__)

WINDOWS = HISTORY_WINDOWS


def chart_labels(t: Turn, days: int) -> ChartLabels:
    return ChartLabels(
        title=t.text("history.title", days=days),
        craving=t.text("history.craving_axis"),
        mood=t.text("history.mood_axis"),
        use=t.text("history.use_label"),
        triggers=t.text("history.triggers_title"),
        no_triggers=t.text("history.no_triggers"),
        trigger_names={key: t.text(f"checkin.buttons.triggers.{key}") for key in rules.TRIGGERS},
        date_format=t.text("history.date_format"),
    )


@patient_only
async def history_command(t: Turn, patient: Patient) -> None:
    await _send_history(t, patient, WINDOWS[0])


@patient_button(HISTORY)
async def on_button(t: Turn, patient: Patient, button: HistoryButton) -> None:
    await _send_history(t, patient, button.days)


async def _send_history(t: Turn, patient: Patient, length: int) -> None:
    today = rules.local_now(patient, utcnow()).date()
    found = await rules.days_between(t.session, patient.id, today - timedelta(days=length - 1), today)
    other = WINDOWS[1] if length == WINDOWS[0] else WINDOWS[0]
    buttons = [[(t.text(f"history.days_{other}_button"), HISTORY.pack(HistoryButton(other)))]]
    log.info("event=history.shown patient_id=%s days=%s", patient.id, length)
    if not found:
        await t.reply("history.empty", days=length, buttons=buttons)
        return
    days = fill_window(today, length, found)
    summary = summarize(days)
    trigger = ", ".join(t.text(f"checkin.buttons.triggers.{key}") for key in summary.top_triggers)
    caption = t.text(
        "history.summary",
        days=length,
        checkins=summary.checkins,
        craving_average=summary.craving_average,
        craving_highest=summary.craving_highest,
        mood_average=summary.mood_average,
        use_days=summary.use_days,
        top_trigger=trigger,
        top_trigger_count=summary.top_trigger_count,
        tied=len(summary.top_triggers) > 1,
    )
    # matplotlib is CPU work: keep it off the event loop so other patients are not kept waiting.
    photo = await asyncio.to_thread(render_chart, days, chart_labels(t, length))
    t.send_photo(photo, caption, buttons=buttons)
