"""The coping toolbox over Telegram: /cope, its menu, the step runner and the before/after ratings.

Rules are in bot/coping/rules.py. A step is shown by `show`, both after a tap and when a pause ends (the
scheduler calls it), so the two paths cannot drift apart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from telegram import Bot

from bot.checkin.rules import CRAVING_RANGE, read_number
from bot.content.modules import Category, Module
from bot.coping import rules as coping
from bot.coping.callbacks import (
    CATEGORY,
    CHECK_BACK_KEY,
    MENU_BUTTONS,
    MENU_DATA,
    MODULE,
    RUN,
    STRONG,
    CategoryButton,
    CheckBackKey,
    MenuButton,
    ModuleButton,
    RunAction,
    RunButton,
    StrongAction,
    StrongButton,
)
from bot.core.db import transaction
from bot.core.models import CopingSession, CopingStatus, Patient, PatientStatus, Priority, utcnow
from bot.handlers.base import Outgoing, Turn, remove_markup, send
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button, patient_only
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows, scale_rows
from bot.risk import safety_plan as plan_rules

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

FOR_YOU = 3  # modules shown under "what works for you"


@patient_only
async def cope_command(t: Turn, patient: Patient) -> None:
    await show_menu(t, patient)


def _module_data(module_id: str) -> str:
    return MODULE.pack(ModuleButton(module_id))


def _run_data(run_id: int, action: RunAction, argument: str | int) -> str:
    return RUN.pack(RunButton(run_id, action, str(argument)))


async def show_menu(t: Turn, patient: Patient) -> None:
    library = t.runtime.modules
    top = coping.helped(await coping.ranking(t.session, patient.id), library.ids())[:FOR_YOU]
    rows: list[list[Button]] = []
    for score in top:
        module = library.get(score.module_id, t.language)
        if module is not None:
            rows.append([(t.text("coping.for_you_button", title=module.title), _module_data(module.id))])
    present = {m.category for m in library.in_language(t.language)}
    categories = [
        (t.text(f"coping.categories.{c.value}"), CATEGORY.pack(CategoryButton(c)))
        for c in Category
        if c in present
    ]
    rows.extend(categories[i : i + 2] for i in range(0, len(categories), 2))
    await t.reply("coping.menu_for_you" if top else "coping.menu", buttons=rows)


def _category_rows(t: Turn, category: Category) -> list[list[Button]]:
    modules = [m for m in t.runtime.modules.in_language(t.language) if m.category is category]
    rows: list[list[Button]] = [
        [(t.text("coping.module_button", title=m.title, minutes=m.minutes), _module_data(m.id))]
        for m in sorted(modules, key=lambda m: m.minutes)
    ]
    return [*rows, [(t.text("coping.back_button"), MENU_DATA)]]


@patient_button(MENU_BUTTONS, crisis_path=True)  # offered on the crisis path: open in set-up and aftercare
async def on_menu_button(
    t: Turn, patient: Patient, button: MenuButton | CategoryButton | ModuleButton
) -> None:
    if isinstance(button, MenuButton):
        await show_menu(t, patient)
    elif isinstance(button, CategoryButton):
        await t.reply(
            "coping.category_intro",
            category=t.text(f"coping.categories.{button.category.value}"),
            buttons=_category_rows(t, button.category),
        )
    else:
        module = t.runtime.modules.get(button.module_id, t.language)
        if module is None:
            t.answer(t.text("coping.unavailable"))
            return
        await begin(t, patient, module)


async def begin(t: Turn, patient: Patient, module: Module) -> None:
    run = await coping.begin(t.session, patient.id, module, utcnow())
    log.info("event=coping.started patient_id=%s run_id=%s module=%s", patient.id, run.id, module.id)
    await t.reply(
        "coping.rate_before",
        title=module.title,
        summary=module.summary,
        buttons=scale_rows(
            lambda rating: _run_data(run.id, "before", rating), *CRAVING_RANGE, t.text("coping.skip_button")
        ),
    )


@patient_button(RUN, crisis_path=True)  # offered on the crisis path: open in set-up and aftercare
async def on_run_button(t: Turn, patient: Patient, button: RunButton) -> None:
    run = await t.session.get(CopingSession, button.run_id)
    if run is None or run.patient_id != patient.id:
        answer_expired_button(t)
        return
    try:
        if await _too_strong_for(t, run, button.action, button.argument):
            return
        await _apply(t, run, button.action, button.argument)
    except (coping.Stale, ValueError):
        t.answer(t.text("coping.stale"))
        return
    t.clear_buttons()


async def _too_strong_for(t: Turn, run: CopingSession, action: RunAction, argument: str) -> bool:
    """A craving rated above what the module is for ("play the tape forward" at 8 or more): the run is not
    started, and one that suits it is offered instead. True if so."""
    module = t.runtime.modules.get(run.module_id, t.language)
    if action != "before" or argument == "skip" or module is None:
        return False
    craving = int(argument)
    if module.suits(craving) or run.status is not CopingStatus.RATING_BEFORE:
        return False
    coping.abandon(run, utcnow())
    t.clear_buttons()
    library = t.runtime.modules
    suited = [m.id for m in library.in_language(t.language) if m.suits(craving)]
    instead = coping.best_for_craving(await coping.ranking(t.session, run.patient_id), suited)
    other = library.get(instead, t.language) if instead else None
    rows: list[list[Button]] = []
    if other is not None:
        rows.append([(t.text("checkin.start_button", title=other.title), _module_data(other.id))])
    rows.append([(t.text("checkin.other_exercises_button"), MENU_DATA)])
    log.info("event=coping.too_strong patient_id=%s run_id=%s module=%s", run.patient_id, run.id, module.id)
    await t.reply("coping.too_strong", title=module.title, buttons=rows)
    return True


async def _apply(t: Turn, run: CopingSession, action: RunAction, argument: str) -> None:
    now = utcnow()
    rating = None if argument == "skip" else int(argument)
    if action == "before":
        coping.rate_before(run, rating)
        _show_after_commit(t, run.id)
    elif action == "after":
        coping.rate_after(run, rating, now)
        await _finish(t, run)
    elif action == "next":
        await coping.advance(t.session, run, int(argument), now)
        _show_after_commit(t, run.id)
    else:
        await coping.stop(t.session, run, now)
        _show_after_commit(t, run.id)


def _show_after_commit(t: Turn, run_id: int) -> None:
    runtime, bot = t.runtime, t.update.get_bot()
    t.then(lambda: show(runtime, bot, run_id))


async def _finish(t: Turn, run: CopingSession) -> None:
    before, after = run.craving_before, run.craving_after
    log.info("event=coping.finished run_id=%s rated=%s", run.id, before is not None and after is not None)
    if before is None or after is None:
        await t.reply("coping.done_unrated")
    elif after < before:
        await t.reply("coping.done_lower", before=before, after=after)
    elif after == before:
        await t.reply("coping.done_same", after=after)
    else:
        await t.reply("coping.done_higher", after=after)


def _step_message(runtime: Runtime, language: str, run: CopingSession, module: Module) -> tuple[str, Rows]:
    text = runtime.text(
        "coping.step",
        language,
        title=module.title,
        number=run.step_index + 1,
        total=len(module.steps),
        text=module.steps[run.step_index].text,
    )
    buttons: Rows = [
        [
            (runtime.text("coping.next_button", language), _run_data(run.id, "next", run.step_index)),
            (runtime.text("coping.stop_button", language), _run_data(run.id, "stop", run.step_index)),
        ]
    ]
    return text, buttons


async def show(runtime: Runtime, bot: Bot, run_id: int) -> None:
    """Send what the run needs now (its current step, then the "after" question when the steps are done)
    and take the buttons off the message before it."""
    messages: list[Outgoing] = []
    async with transaction(runtime.sessions) as session:
        run = await session.get(CopingSession, run_id)
        patient = await session.get(Patient, run.patient_id) if run else None
        if run is None or patient is None:
            return
        if patient.status is not PatientStatus.ACTIVE:  # withdrew consent or was discharged mid-exercise
            run.status, run.next_step_at, run.finished_at = CopingStatus.ABANDONED, None, utcnow()
            return
        language = patient.language
        module = runtime.modules.get(run.module_id, language)
        if run.status is CopingStatus.RUNNING and module is not None:
            last = coping.showing(run, module, utcnow())
            text, buttons = _step_message(runtime, language, run, module)
            messages.append(Outgoing(patient.chat_id, text, None if last else buttons))
        elif run.status is CopingStatus.RUNNING:
            # The module was removed from the content mid-run: go straight to the closing question.
            run.status, run.next_step_at = CopingStatus.RATING_AFTER, None
        if run.status is CopingStatus.RATING_AFTER:
            skip = runtime.text("coping.skip_button", language)
            run_id = run.id
            rating = scale_rows(lambda value: _run_data(run_id, "after", value), *CRAVING_RANGE, skip)
            messages.append(Outgoing(patient.chat_id, runtime.text("coping.rate_after", language), rating))
        previous, step, status = run.message_id, run.step_index, run.status
    if previous is not None:
        await remove_markup(bot, patient.chat_id, previous, runtime.keyring)
    sent = None
    for message in messages:
        sent = await send(bot, message)
    if sent is None:
        return
    async with transaction(runtime.sessions) as session:
        await session.execute(
            update(CopingSession)
            .where(
                CopingSession.id == run_id, CopingSession.step_index == step, CopingSession.status == status
            )
            .values(message_id=sent)
        )


async def pause_over(runtime: Runtime, bot: Bot, run_id: int, step: int) -> None:
    """The pause after `step` has ended: go on to the next step (unless a tap got there first)."""
    async with transaction(runtime.sessions) as session:
        run = await session.get(CopingSession, run_id)
        if run is None:
            return
        try:
            await coping.advance(session, run, step, utcnow())
        except coping.Stale:
            return
    await show(runtime, bot, run_id)


async def on_typed(t: Turn, run: CopingSession, text: str) -> None:
    """Text typed during an exercise: a rating when one is asked for, else a reminder of where they are."""
    module = t.runtime.modules.get(run.module_id, t.language)
    if run.status in (CopingStatus.RATING_BEFORE, CopingStatus.RATING_AFTER):
        reading = read_number(text, *CRAVING_RANGE)
        if reading.value is None:
            await t.reply("coping.retry_rating")
            return
        action: RunAction = "before" if run.status is CopingStatus.RATING_BEFORE else "after"
        if not await _too_strong_for(t, run, action, str(reading.value)):
            await _apply(t, run, action, str(reading.value))
        return
    if module is None:
        return
    _, buttons = _step_message(t.runtime, t.language, run, module)
    await t.reply(
        "coping.mid_exercise",
        title=module.title,
        number=run.step_index + 1,
        total=len(module.steps),
        buttons=buttons,
    )


# ---- a strong craving: someone to reach, a wait with a check-back, an exercise in two taps ---------------


async def module_for(t: Turn, patient: Patient, craving: int | None) -> tuple[Module | None, bool]:
    """The module that has helped this patient most among those that suit this craving (urge surfing if
    none has yet), and whether it has helped before."""
    scores = await coping.ranking(t.session, patient.id)
    available = [m.id for m in t.runtime.modules.in_language(t.language) if m.suits(craving)]
    module_id = coping.best_for_craving(scores, available)
    module = t.runtime.modules.get(module_id, t.language) if module_id else None
    helped = module is not None and any(s.module_id == module.id for s in coping.helped(scores, available))
    return module, helped


def _strong(t: Turn, action: StrongAction, key: str) -> Button:
    return t.text(key), STRONG.pack(StrongButton(action))


async def offer_at_strong_craving(t: Turn, patient: Patient) -> None:
    """At a craving of 8 or more: a support person from the safety plan and "wait 15 minutes, then check on
    me" first, then an exercise that starts with one tap (and the rating: two)."""
    module, _ = await module_for(t, patient, coping.STRONG_CRAVING)
    rows: list[list[Button]] = [
        [_strong(t, "support", "coping.strong.support_button")],
        [_strong(t, "delay", "coping.strong.delay_button")],
    ]
    if module is not None:
        rows.append([(t.text("checkin.start_button", title=module.title), _module_data(module.id))])
    rows.append([(t.text("checkin.other_exercises_button"), MENU_DATA)])
    log.info("event=coping.strong_offer patient_id=%s module=%s", patient.id, module.id if module else None)
    await t.reply("coping.strong.offer", buttons=rows)


@patient_button(STRONG, crisis_path=True)  # offered on the crisis path: open in set-up and aftercare
async def on_strong_button(t: Turn, patient: Patient, button: StrongButton) -> None:
    log.info("event=coping.strong patient_id=%s action=%s", patient.id, button.action)
    if button.action == "strong":  # still strong at the check-back: the same choices again
        t.clear_buttons()
        await offer_at_strong_craving(t, patient)
    elif button.action == "better":
        t.clear_buttons()
        await t.reply("coping.strong.better")
    elif button.action == "support":
        plan = await plan_rules.plan_of(t.session, patient.id)
        people = plan_rules.text_of(plan, plan_rules.Step.HELP_PEOPLE) if plan is not None else None
        if people:
            await t.reply("coping.strong.support", plan_contacts=people)
        else:
            await t.reply("coping.strong.no_support")
    else:
        await _check_back_later(t, patient)


async def _check_back_later(t: Turn, patient: Patient) -> None:
    """ "Wait 15 minutes, then check on me": a message in the outbox, due then, asking how it is now."""
    now = utcnow()
    key = CHECK_BACK_KEY.pack(CheckBackKey(patient.id, int(now.timestamp() * 1000)))
    rows = [
        [_strong(t, "better", "coping.strong.better_button")],
        [_strong(t, "strong", "coping.strong.strong_button")],
    ]
    await outbox.enqueue(
        t.session,
        [
            outbox.Planned(
                key=key,
                kind="check_back",
                chat_id=t.chat_id,
                text=t.text("coping.strong.check_back"),
                buttons=rows,
                due_at=now + coping.CHECK_BACK_AFTER,
                priority=Priority.NORMAL,
                patient_id=patient.id,
            )
        ],
    )
    t.wake_outbox()
    await t.reply("coping.strong.delayed")
