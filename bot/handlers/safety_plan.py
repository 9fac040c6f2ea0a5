"""/safetyplan over Telegram: build the plan step by step, show it, change a step (rules: bot/safety_plan)."""

from __future__ import annotations

import logging

from telegram import Update

from bot.core.models import Patient, SafetyPlan
from bot.handlers.base import Context, Turn, turn
from bot.handlers.fallback import answer_expired_button
from bot.outbox.markup import Button, Rows
from bot.risk import safety_plan as rules

log = logging.getLogger(__name__)

STEP_NAMES = "|".join(step.value for step in rules.STEPS)
PATTERN = rf"^plan:(start|later|show|edit|stop|(step|skip|keep):({STEP_NAMES}))$"
SHOW = "plan:show"


async def safety_plan_command(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        patient = t.active_patient
        if patient is None:
            await t.reply("input.not_for_role")
            return
        plan = await rules.plan_of(t.session, patient.id)
        if plan is not None:
            rules.stop(plan)
        if not rules.filled(plan):
            await t.reply(
                "plan.intro",
                buttons=[
                    [(t.text("plan.start_button"), "plan:start")],
                    [(t.text("plan.not_now_button"), "plan:later")],
                ],
            )
            return
        await show(t, plan)


async def crisis_contacts(t: Turn, patient: Patient) -> str:
    """The patient's own people and professionals from their plan, for a crisis message ("" if none)."""
    return rules.crisis_contacts(await rules.plan_of(t.session, patient.id)) or ""


def support_rows(t: Turn) -> Rows:
    """After a worrying answer: the safety plan, or an exercise."""
    return [
        [(t.text("crisis.safety_plan_button"), SHOW)],
        [(t.text("crisis.try_exercise_button"), "cope:menu")],
    ]


def sections(t: Turn, plan: SafetyPlan | None) -> str:
    """Every step with its title, in the plan's order; steps not written yet say so."""
    parts = []
    for step in rules.STEPS:
        text = rules.text_of(plan, step) if plan is not None else None
        parts.append(f"{t.text(f'plan.steps.{step.value}.title')}\n{text or t.text('plan.empty_step')}")
    return "\n\n".join(parts)


async def show(t: Turn, plan: SafetyPlan | None) -> None:
    await t.reply(
        "plan.view",
        sections=sections(t, plan),
        buttons=[[(t.text("plan.edit_button"), "plan:edit"), (t.text("plan.done_button"), "plan:stop")]],
    )


async def _ask(t: Turn, plan: SafetyPlan, step: rules.Step) -> None:
    text = rules.text_of(plan, step)
    rows: list[list[Button]] = [
        [
            (
                t.text("plan.keep_button" if text else "plan.skip_button"),
                f"plan:{'keep' if text else 'skip'}:{step}",
            )
        ],
        [(t.text("plan.stop_button"), "plan:stop")],
    ]
    await t.reply(
        "plan.ask",
        title=t.text(f"plan.steps.{step.value}.title"),
        prompt=t.text(f"plan.steps.{step.value}.prompt"),
        text=text or "",
        buttons=rows,
    )


async def on_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    action = query.data.removeprefix("plan:")
    async with turn(update, context) as t:
        patient = t.active_patient
        if patient is None:
            await answer_expired_button(t)
            return
        await query.answer()
        if action == "later":
            t.clear_buttons()
            await t.reply("plan.not_now")
            return
        if action == "show":
            await show(t, await rules.plan_of(t.session, patient.id))
            return
        plan = await rules.plan_for_editing(t.session, patient.id)
        if action in ("start", "edit") or action.startswith("step:"):
            t.clear_buttons()
            if action == "edit":
                rows = [
                    [(t.text(f"plan.steps.{step.value}.title"), f"plan:step:{step.value}")]
                    for step in rules.STEPS
                ]
                await t.reply("plan.edit_which", buttons=rows)
                return
            chosen = rules.Step(action.removeprefix("step:")) if action.startswith("step:") else None
            step = rules.begin(plan, chosen)
            log.info("event=safety_plan.editing patient_id=%s step=%s", patient.id, step)
            await _ask(t, plan, step)
            return
        current = rules.editing(plan)
        t.clear_buttons()
        if action == "stop":
            rules.stop(plan)
            if current is not None:
                await t.reply("plan.stopped")
            return
        if current is None or action.partition(":")[2] != current.value:
            await t.reply("input.button_expired")
            return
        await _saved(t, patient, plan, current, None)


async def on_typed(t: Turn, patient: Patient, plan: SafetyPlan, text: str) -> None:
    step = rules.editing(plan)
    assert step is not None
    if len(text.strip()) > rules.MAX_LENGTH:
        await t.reply("plan.too_long", limit=rules.MAX_LENGTH)
        return
    await _saved(t, patient, plan, step, text)


async def _saved(t: Turn, patient: Patient, plan: SafetyPlan, step: rules.Step, text: str | None) -> None:
    following = rules.save(plan, step, text)
    log.info("event=safety_plan.saved patient_id=%s step=%s", patient.id, step)
    if following is not None:
        await _ask(t, plan, following)
        return
    await show(t, plan)
