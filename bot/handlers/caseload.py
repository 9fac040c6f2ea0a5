"""The counselor's workspace on Telegram: /caseload, /patient ALIAS, /note ALIAS TEXT, /digest, and the daily
digest the scheduler sends. Rules (who sees whom, what the numbers are) are in `bot.workspace.caseload` and
`bot.workspace.rules`; every view of patient data is audited."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from datetime import time

from bot.checkin import rules as checkins
from bot.checkin.history import fill_window, render_chart
from bot.core import audit
from bot.core.models import Counselor, CounselorRole, Patient, utcnow
from bot.handlers import measures as measure_handlers
from bot.handlers import medication
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Turn
from bot.handlers.guards import counselor_button, counselor_only
from bot.handlers.history import chart_labels
from bot.risk import safety_plan as plans
from bot.risk.paging import local_time
from bot.workspace import caseload as rules
from bot.workspace import rules as workspace
from bot.workspace.callbacks import CASELOAD_PAGE, CaseloadPage

log = logging.getLogger(__name__)

SUMMARY_DAYS = 14
_TIME = re.compile(r"^([01]?\d|2[0-3])[:.h]([0-5]\d)$")


# ---- /caseload ---------------------------------------------------------------------------------------------


@counselor_only
async def caseload_command(t: Turn, counselor: Counselor) -> None:
    await _show_page(t, counselor, 1)


@counselor_button(CASELOAD_PAGE)
async def on_page_button(t: Turn, counselor: Counselor, button: CaseloadPage) -> None:
    t.clear_buttons()
    await _show_page(t, counselor, button.number)


async def _show_page(t: Turn, counselor: Counselor, number: int) -> None:
    everyone = workspace.whole_program(counselor)
    lines = await rules.caseload(
        t.session,
        counselor.id,
        utcnow(),
        high_craving=t.runtime.settings.high_craving,
        whole_program=everyone,
        instruments=t.runtime.measures,
    )
    if not lines:
        await t.reply("caseload.admin_only" if counselor.role is CounselorRole.ADMIN else "caseload.empty")
        return
    page = rules.page(lines, number)
    audit.record(
        t.session,
        "caseload.viewed",
        actor_type="counselor",
        actor_id=counselor.id,
        page=page.number,
        shown=len(page.items),
        patients=[line.patient_id for line in page.items],
    )
    log.info("event=caseload.viewed counselor_id=%s page=%s", counselor.id, page.number)
    header = t.text(
        "caseload.header_program" if everyone else "caseload.header",
        count=len(lines),
        page=page.number,
        pages=page.pages,
    )
    text = "\n\n".join([header, *(_line(t, line) for line in page.items)])
    row = []
    if page.number > 1:
        row.append((t.text("caseload.previous_button"), CASELOAD_PAGE.pack(CaseloadPage(page.number - 1))))
    if page.number < page.pages:
        row.append((t.text("caseload.next_button"), CASELOAD_PAGE.pack(CaseloadPage(page.number + 1))))
    await t.send(text, buttons=[row] if row else None)


def _line(t: Turn, line: rules.CaseloadLine) -> str:
    level = line.highest_open_level
    return t.text(
        "caseload.line",
        alert=level is not None,
        alias=line.alias,
        checkin_days=line.days_since_checkin,
        craving=line.craving_mean,
        arrow=t.text(f"caseload.arrows.{line.craving_trend}") if line.craving_trend else "",
        use_days=line.use_days,
        coming=line.week.coming,
        expected=line.week.expected,
        declined=line.week.declined,
        open=line.open_escalations,
        level=t.text(f"escalation.levels.{level.label}") if level is not None else "",
        measures=measure_handlers.caseload_marks(t, line.measure_flags),
    )


# ---- /patient ALIAS ----------------------------------------------------------------------------------------


@counselor_only
async def patient_command(t: Turn, counselor: Counselor) -> None:
    if not t.args:
        await t.reply("caseload.patient_usage", alias="P-1234")
        return
    quoted = workspace.unquoted(" ".join(t.args))
    patient = await _visible(t, counselor, quoted[0] if quoted else " ".join(t.args))
    if patient is None:
        return
    await _show_patient(t, counselor, patient)


async def _visible(t: Turn, counselor: Counselor, alias: str) -> Patient | None:
    patient = await workspace.visible_patient(t.session, counselor, alias)
    if patient is None:
        _refused(counselor)
        await t.reply("caseload.not_found", alias=alias[:64])
    return patient


def _refused(counselor: Counselor) -> None:
    log.info("event=workspace.refused counselor_id=%s", counselor.id)


async def _show_patient(t: Turn, counselor: Counselor, patient: Patient) -> None:
    now = utcnow()
    summary = await rules.patient_summary(t.session, patient.id, now, days=SUMMARY_DAYS)
    plan = await plans.plan_of(t.session, patient.id)
    notes = await workspace.recent_notes(t.session, patient.id)
    audit.record(
        t.session,
        "patient.viewed",
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="patient",
        subject_id=patient.id,
    )
    log.info("event=patient.viewed counselor_id=%s patient_id=%s", counselor.id, patient.id)
    totals = summary.totals
    text = t.text(
        "caseload.summary",
        alias=patient.alias,
        days=SUMMARY_DAYS,
        checkins=totals.checkins,
        craving_average=totals.craving_average,
        craving_highest=totals.craving_highest,
        mood_average=totals.mood_average,
        use_days=totals.use_days,
        coming=summary.sessions.coming,
        expected=summary.sessions.expected,
        missed=summary.missed_sessions,
        triggers=", ".join(
            f"{t.text(f'checkin.buttons.triggers.{key}')} ({count})" for key, count in summary.top_triggers
        ),
        helped=", ".join(_module_title(t, score.module_id) for score in summary.helped),
        plan=bool(plans.filled(plan)),
        alerts="; ".join(_alert(t, counselor, item) for item in summary.escalations),
    )
    days_text = "\n".join(
        t.text("caseload.day_line", day=d.day.isoformat(), craving=d.craving, mood=d.mood, used=d.used)
        for d in summary.days
        if d.craving is not None or d.mood is not None or d.used
    )
    found = await checkins.days_between(t.session, patient.id, summary.days[0].day, summary.days[-1].day)
    if found:
        days = fill_window(summary.days[-1].day, SUMMARY_DAYS, found)
        labels = replace(
            chart_labels(t, SUMMARY_DAYS),
            title=t.text("caseload.chart_title", alias=patient.alias, days=SUMMARY_DAYS),
        )
        photo = await asyncio.to_thread(render_chart, days, labels)
        t.send_photo(photo, t.text("caseload.chart_title", alias=patient.alias, days=SUMMARY_DAYS))
    await t.send("\n\n".join(part for part in (text, days_text) if part))
    await t.send(await medication.counselor_view(t, counselor, patient, audit_it=False))  # meds, naloxone
    await measure_handlers.show_results(t, counselor, patient)
    if plans.filled(plan):
        await t.reply("caseload.plan", alias=patient.alias, steps=plan_handlers.sections(t, plan))
    if notes:
        lines = "\n".join(
            t.text(
                "caseload.note_line",
                when=local_time(t.runtime, note.at, counselor),
                author=note.author or t.text("caseload.note_someone"),
                text=note.text,
            )
            for note in notes
        )
        await t.reply("caseload.notes", notes=lines)


def _module_title(t: Turn, module_id: str) -> str:
    module = t.runtime.modules.get(module_id, t.language)
    return module.title if module is not None else module_id


def _alert(t: Turn, counselor: Counselor, item: rules.EscalationItem) -> str:
    return t.text(
        "caseload.alert_item",
        level=t.text(f"escalation.levels.{item.level.label}"),
        category=t.text(f"escalation.categories.{item.category}"),
        status=t.text(f"caseload.statuses.{item.status.value}"),
        when=local_time(t.runtime, item.created_at, counselor),
    )


# ---- /note ALIAS TEXT --------------------------------------------------------------------------------------


@counselor_only
async def note_command(t: Turn, counselor: Counselor) -> None:
    named = await workspace.patient_and_rest(t.session, counselor, t.args)
    if not named.rest:
        await t.reply("caseload.note_usage", alias="P-1234")
        return
    patient = named.patient
    if patient is None:
        _refused(counselor)
        await t.reply("caseload.not_found", alias=named.alias[:64])
        return
    note = await workspace.add_note(t.session, counselor, patient, named.rest)
    audit.record(
        t.session,
        "note.added",
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="patient",
        subject_id=patient.id,
        note_id=note.id,
    )
    await t.reply("caseload.note_saved", alias=patient.alias)


# ---- /digest and the daily digest --------------------------------------------------------------------------


@counselor_only
async def digest_command(t: Turn, counselor: Counselor) -> None:
    if not t.args:
        shown = counselor.digest_time.strftime("%H:%M") if counselor.digest_time else None
        await t.reply("caseload.digest_usage", time=shown)
        return
    value = t.args[0].strip().lower()
    if value in ("off", "no", "none", "apagar", "no"):
        counselor.digest_time = None
        await t.reply("caseload.digest_off")
        return
    match = _TIME.match(value)
    if match is None:
        await t.reply("caseload.digest_bad_time", value=value[:20])
        return
    counselor.digest_time = time(int(match[1]), int(match[2]))
    log.info("event=digest.time_set counselor_id=%s", counselor.id)
    await t.reply("caseload.digest_set", time=counselor.digest_time.strftime("%H:%M"))
