"""Validated questionnaires over Telegram: the answer buttons (one question a message), /measure for the
care team, and the results shown in /patient and /caseload. Rules are in bot/measures/.

A safety item answered above its lowest option (PHQ-9 item 9) ends the questionnaire there and starts the
C-SSRS screener at once, whatever the total: nothing else is asked over it, and no other questionnaire follows
it (crisis first). The care team is told (a flag), as it is of a score at its flag threshold or risen a lot.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.content.instruments import Instrument, plain_name
from bot.core import audit
from bot.core.models import (
    Counselor,
    Measure,
    MeasureSource,
    Patient,
    PatientStatus,
    Priority,
    utcnow,
)
from bot.handlers import screener
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import counselor_only, patient_button
from bot.measures import chart, prompts, rules, scoring
from bot.measures.callbacks import DONE_KEY, MEASURE, DoneKey, MeasureButton
from bot.outbox import store as outbox
from bot.risk import cssrs
from bot.workspace import caseload as caseload_rules
from bot.workspace import rules as workspace

log = logging.getLogger(__name__)

OFF_WORDS = frozenset({"off", "never", "stop", "none"})
DEFAULT_WORDS = frozenset({"default", "reset"})
MAX_EVERY_DAYS = 365


# ---- the patient answers -----------------------------------------------------------------------------------


async def _ask(t: Turn, measure: Measure, intro: str | None = None) -> None:
    text, buttons = prompts.question(t.runtime, t.language, measure, intro=intro)
    await t.send(text, buttons=buttons)


@patient_button(MEASURE)
async def on_button(t: Turn, patient: Patient, button: MeasureButton) -> None:
    measure = await t.session.get(Measure, button.measure_id, with_for_update=True)
    reference = t.runtime.measures.reference(measure.instrument) if measure is not None else None
    if measure is None or measure.patient_id != patient.id or reference is None:
        answer_expired_button(t)
        return
    try:
        done = rules.answer(measure, reference, button.item, button.value, utcnow())
    except rules.Closed:
        t.answer(t.text("measures.closed"))
        t.clear_buttons()
        return
    except rules.Invalid:
        if button.item == measure.step:
            answer_expired_button(t)  # forged data for the question being asked: its buttons stay
        else:
            t.answer(t.text("measures.stale"))  # an earlier question, answered already
            t.clear_buttons()
        return
    t.clear_buttons()
    log.info(
        "event=measure.answered patient_id=%s measure_id=%s item=%s", patient.id, measure.id, button.item
    )
    if done.safety:
        await _safety_item(t, patient, measure)
    elif not done.completed:
        await _ask(t, measure)
    else:
        log.info("event=measure.completed patient_id=%s measure_id=%s", patient.id, measure.id)
        await _after_scores(t, patient, measure)
        if not await _carry_on(t, patient, measure):
            await t.reply("measures.thanks")


async def _safety_item(t: Turn, patient: Patient, measure: Measure) -> None:
    """PHQ-9 item 9 above "not at all": the questionnaire ends, the care team is told, and the screener's
    permission question comes at once, even if a screener was finished a moment ago."""
    log.info("event=measure.safety_item patient_id=%s measure_id=%s", patient.id, measure.id)
    if await tell_care_team(t.runtime, t.session, patient, FlagKind.MEASURE_SAFETY):
        t.wake_outbox()
    await _after_scores(t, patient, measure)
    await screener.offer(t, patient, cssrs.Trigger.MEASURE, None, always=True)


async def _after_scores(t: Turn, patient: Patient, measure: Measure) -> None:
    """A complete questionnaire: flag a score that needs a look, and tell the counselor who sent it."""
    reference = t.runtime.measures.reference(measure.instrument)
    if reference is None:
        return
    before = await rules.previous(t.session, measure)
    flagged = scoring.flags(reference, measure.scores or {}, before.scores if before else None)
    if flagged:
        log.info("event=measure.flagged patient_id=%s measure_id=%s", patient.id, measure.id)
        if await tell_care_team(t.runtime, t.session, patient, FlagKind.MEASURE_FLAGGED):
            t.wake_outbox()
    if measure.source is MeasureSource.COUNSELOR and measure.requested_by is not None:
        sender = await t.session.get(Counselor, measure.requested_by)
        if sender is not None and sender.chat_id is not None and sender.active:
            shown = t.runtime.measures.get(measure.instrument, sender.language) or reference
            notice = outbox.Planned(
                key=DONE_KEY.pack(DoneKey(measure.id)),
                kind="notice",
                chat_id=sender.chat_id,
                text=t.runtime.text(
                    "measures_team.done_notice", sender.language, alias=patient.alias, name=shown.name
                ),
                due_at=utcnow(),
                priority=Priority.NORMAL,
                subject_patient_id=patient.id,
            )
            if await outbox.enqueue(t.session, [notice]):
                t.wake_outbox()


async def _carry_on(t: Turn, patient: Patient, finished: Measure) -> bool:
    """Ask the next questionnaire left open, if any (and no screener is open); whether one was asked."""
    if await cssrs.open_screen(t.session, patient.id) is not None:
        return False
    waiting = [m for m in await rules.open_measures(t.session, patient.id) if m.id != finished.id]
    if not waiting:
        return False
    following = waiting[0]
    intro_key = "measures.next" if following.answers == {} else "measures.resumed"
    if following.answers == {}:
        intro = prompts.opening(t.runtime, t.language, following, intro_key)
    else:
        intro = t.text(intro_key)
    await _ask(t, following, intro)
    return True


# ---- /measure ALIAS [phq9|gad7|bam [every N|off|default]] -------------------------------------------------


@counselor_only
async def measure_command(t: Turn, counselor: Counselor) -> None:
    if not t.args:
        await t.reply("measures_team.usage", alias="P-1234", names=_names(t))
        return
    named = await workspace.patient_and_rest(t.session, counselor, t.args)
    patient = named.patient
    # Only the patient's own care team sends questionnaires or changes their schedule.
    if patient is None or not await caseload_rules.is_on_caseload(t.session, counselor.id, patient.id):
        log.info("event=workspace.refused counselor_id=%s", counselor.id)
        await t.reply("caseload.not_found", alias=named.alias[:64])
        return
    words = named.rest.split()
    if not words:
        await _show_schedule(t, patient)
        return
    instrument_id = t.runtime.measures.by_name().get(plain_name(words[0]))
    if instrument_id is None:
        await t.reply("measures_team.unknown", name=words[0][:20], names=_names(t))
        return
    if len(words) == 1:
        await _send_now(t, counselor, patient, instrument_id)
    else:
        await _change_schedule(t, counselor, patient, instrument_id, words[1:])


def _names(t: Turn) -> str:
    known = t.runtime.measures.ids()
    return ", ".join(_name(t, i) for i in rules.order(t.runtime.settings.measures, known) if i in known)


def _name(t: Turn, instrument_id: str, language: str | None = None) -> str:
    found = t.runtime.measures.get(instrument_id, language or t.language)
    return found.name if found is not None else instrument_id


async def _send_now(t: Turn, counselor: Counselor, patient: Patient, instrument_id: str) -> None:
    name = _name(t, instrument_id)
    if patient.status is not PatientStatus.ACTIVE:
        await t.reply("measures_team.not_active", alias=patient.alias)
        return
    if not t.runtime.measures.offered_in(instrument_id, patient.language):
        # An unofficial translation no clinician has reviewed: held back, as the scheduler holds it back.
        log.info("event=measure.held_back patient_id=%s counselor_id=%s", patient.id, counselor.id)
        await t.reply(
            "measures_team.not_offered",
            alias=patient.alias,
            name=name,
            patient_language=patient.language,
            instrument=instrument_id,
        )
        return
    already = await rules.open_of(t.session, patient.id, instrument_id)
    if already is not None:
        await t.reply(
            "measures_team.already_open",
            alias=patient.alias,
            name=name,
            when=_day(already.started_at, counselor),
        )
        return
    reference = t.runtime.measures.reference(instrument_id)
    assert reference is not None
    waiting = bool(await rules.open_measures(t.session, patient.id))
    waiting = waiting or await cssrs.open_screen(t.session, patient.id) is not None
    measure = await rules.start(
        t.session,
        patient,
        reference,
        utcnow(),
        expiry=timedelta(days=t.runtime.settings.measure_expiry_days),
        source=MeasureSource.COUNSELOR,
        requested_by=counselor.id,
    )
    assert measure is not None  # only scheduled ones can meet another process's
    audit.record(
        t.session,
        "measure.sent",
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="patient",
        subject_id=patient.id,
        instrument=instrument_id,
        measure_id=measure.id,
    )
    log.info(
        "event=measure.started patient_id=%s measure_id=%s instrument=%s source=counselor",
        patient.id,
        measure.id,
        instrument_id,
    )
    if not waiting:  # else it follows the questionnaire they have open (or waits for the screener)
        first_name = counselor.name.split()[0] if counselor.name.split() else counselor.name
        intro = prompts.opening(
            t.runtime, patient.language, measure, "measures.intro_counselor", counselor=first_name
        )
        await outbox.enqueue(t.session, [prompts.planned(t.runtime, patient, measure, "measure_sent", intro)])
        t.wake_outbox()
    await t.reply("measures_team.sent", alias=patient.alias, name=name, waiting=waiting)


def _read_every(words: list[str]) -> int | str | None:
    """ "every 14", "14", "14d", "14 days" -> 14; "off" -> None; "default" -> "default"; else "" (unread)."""
    text = " ".join(w.lower() for w in words)
    if text in OFF_WORDS:
        return None
    if text in DEFAULT_WORDS:
        return "default"
    for prefix in ("every ",):
        text = text.removeprefix(prefix)
    for suffix in (" days", " day", "days", "d"):
        text = text.removesuffix(suffix)
    text = text.strip()
    if text.isdecimal() and 1 <= int(text) <= MAX_EVERY_DAYS:
        return int(text)
    return ""


async def _change_schedule(
    t: Turn, counselor: Counselor, patient: Patient, instrument_id: str, words: list[str]
) -> None:
    every = _read_every(words)
    name = _name(t, instrument_id)
    if every == "":
        await t.reply("measures_team.bad_schedule", alias=patient.alias, name=instrument_id)
        return
    if every == "default":
        await rules.clear_schedule(t.session, patient.id, instrument_id)
    else:
        assert every is None or isinstance(every, int)
        await rules.set_schedule(t.session, patient.id, instrument_id, every, counselor.id)
    audit.record(
        t.session,
        "measure.schedule_set",
        actor_type="counselor",
        actor_id=counselor.id,
        subject_type="patient",
        subject_id=patient.id,
        instrument=instrument_id,
        every=every if isinstance(every, int) else (every or "off"),
    )
    log.info("event=measure.schedule_set counselor_id=%s patient_id=%s", counselor.id, patient.id)
    await _show_schedule(t, patient, changed=name)


async def _show_schedule(t: Turn, patient: Patient, changed: str | None = None) -> None:
    settings = t.runtime.settings
    chosen = (await rules.overrides(t.session, [patient.id])).get(patient.id, {})
    started = (await rules.last_started(t.session, {patient.id: patient.timezone})).get(patient.id, {})
    default = dict(settings.measures)
    lines = []
    for instrument_id in rules.order(settings.measures, t.runtime.measures.ids()):
        if t.runtime.measures.reference(instrument_id) is None:
            continue
        every = chosen[instrument_id] if instrument_id in chosen else default.get(instrument_id)
        last = started.get(instrument_id)
        lines.append(
            t.text(
                "measures_team.schedule_line",
                name=_name(t, instrument_id),
                days=every,
                custom=instrument_id in chosen,
                last=last.isoformat() if last else None,
            )
        )
    await t.reply(
        "measures_team.schedule",
        alias=patient.alias,
        lines="\n".join(lines),
        changed=changed,
        names=_names(t),
    )


# ---- /patient and /caseload -------------------------------------------------------------------------------


def _day(moment: datetime, counselor: Counselor) -> str:
    try:
        zone = ZoneInfo(counselor.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).date().isoformat()


async def show_results(t: Turn, counselor: Counselor, patient: Patient) -> None:
    """/patient's questionnaires: each one's latest scores with their band and the change since the one
    before, PHQ-9 item 9 when it was above "not at all", those still open, and a small trend chart."""
    library = t.runtime.measures
    found = await rules.results(t.session, patient.id)
    lines: list[str] = []
    panels: list[chart.Panel] = []
    for instrument_id in rules.order(t.runtime.settings.measures, library.ids()):
        results = found.get(instrument_id)
        shown, reference = library.get(instrument_id, t.language), library.reference(instrument_id)
        if not results or shown is None or reference is None:
            continue
        latest, before = results[-1], (results[-2] if len(results) > 1 else None)
        lines.append(_result_line(t, counselor, shown, latest, before))
        answered_in = library.get(instrument_id, latest.language)
        if answered_in is not None and not answered_in.official:
            lines.append(t.text("measures_team.unofficial", name=shown.name, answered_in=latest.language))
        if latest.safety_positive:
            lines.append(_safety_line(t, counselor, shown, latest))
        panels.append(_panel(shown, results, counselor))
    for instrument_id in rules.order(t.runtime.settings.measures, library.ids()):
        if not library.offered_in(instrument_id, patient.language):  # an unreviewed unofficial translation
            lines.append(
                t.text(
                    "measures_team.held_back", name=_name(t, instrument_id), patient_language=patient.language
                )
            )
    for measure in await rules.open_measures(t.session, patient.id):
        lines.append(
            t.text(
                "measures_team.open_line",
                name=_name(t, measure.instrument),
                when=_day(measure.started_at, counselor),
                answered=len(measure.answers),
            )
        )
    if not lines:
        await t.reply("measures_team.none")
        return
    if panels:
        title = t.text("measures_team.chart_title", alias=patient.alias)
        photo = await asyncio.to_thread(chart.render, panels, title, t.text("history.date_format"))
        t.send_photo(photo, title)
    await t.reply("measures_team.results", lines="\n".join(lines))


def _result_line(
    t: Turn, counselor: Counselor, shown: Instrument, latest: rules.Result, before: rules.Result | None
) -> str:
    reference = t.runtime.measures.reference(shown.id) or shown
    flagged = {f.score_id for f in scoring.flags(reference, latest.scores, before.scores if before else None)}
    parts = []
    for score in shown.scores:
        value = latest.scores.get(score.id)
        if value is None:
            continue
        band = scoring.band(score, value)
        delta = scoring.change(latest.scores, before.scores if before else None, score.id)
        parts.append(
            t.text(
                "measures_team.score",
                label=score.name if len(shown.scores) > 1 else "",
                value=value,
                top=shown.range_of(score)[1],
                band=band.label if band else "",
                change=f"{delta:+d}" if delta is not None else "",
                flagged=score.id in flagged,
            )
        )
    return t.text(
        "measures_team.result",
        name=shown.name,
        when=_day(latest.finished_at, counselor),
        scores="; ".join(parts),
        since=_day(before.finished_at, counselor) if before else "",
    )


def _safety_line(t: Turn, counselor: Counselor, shown: Instrument, latest: rules.Result) -> str:
    item = next(i for i in shown.items if i.safety)
    value = latest.answers.get(item.id)
    label = next((o.label for o in shown.options_of(item) if o.value == value), str(value))
    return t.text(
        "measures_team.safety_line",
        name=shown.name,
        item=item.id,
        answer=label,
        when=_day(latest.finished_at, counselor),
    )


def _panel(shown: Instrument, results: list[rules.Result], counselor: Counselor) -> chart.Panel:
    zone = ZoneInfo(counselor.timezone) if counselor.timezone else ZoneInfo("UTC")
    lines = [
        chart.Line(
            score.name,
            [
                (r.finished_at.astimezone(zone).date(), r.scores[score.id])
                for r in results
                if score.id in r.scores
            ],
        )
        for score in shown.scores
    ]
    top = max(shown.range_of(score)[1] for score in shown.scores)
    marks = [band.min for score in shown.scores for band in score.bands] if len(shown.scores) == 1 else []
    return chart.Panel(shown.name, top, lines, marks)


def caseload_marks(t: Turn, flagged: tuple[rules.Flagged, ...]) -> str:
    """What /caseload's line says of flagged questionnaire scores, e.g. "PHQ-9 21, GAD-7 9 (+6)"."""
    parts = []
    order = rules.order(t.runtime.settings.measures, t.runtime.measures.ids())
    for found in sorted(
        flagged, key=lambda f: order.index(f.instrument) if f.instrument in order else len(order)
    ):
        shown = t.runtime.measures.get(found.instrument, t.language)
        if shown is None:
            continue
        score = next((s for s in shown.scores if s.id == found.flag.score_id), None)
        parts.append(
            t.text(
                "measures_team.caseload_flag",
                name=shown.name,
                label=score.name if score is not None and len(shown.scores) > 1 else "",
                value=found.flag.value,
                change=f"{found.flag.change:+d}" if found.flag.change is not None else "",
            )
        )
    return ", ".join(parts)
