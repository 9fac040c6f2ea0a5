"""/safetyplan over Telegram: build the plan step by step, show it, change a step (rules: bot.risk).

Step 5 (professionals) always starts with the clinic's own numbers (CLINIC_PHONE, AFTER_HOURS_PHONE) and the
nearest emergency room: rendered from the settings each time it is shown, never stored in the patient's words,
so a changed clinic number is never out of date in anyone's plan. The care team is told, by alias only, when a
plan is made or changed (once per sitting), never what it says.
"""

from __future__ import annotations

import logging

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.coping.callbacks import MENU_DATA
from bot.core.models import Patient, SafetyPlan, utcnow
from bot.handlers.base import Turn
from bot.handlers.guards import in_care_only, patient_button
from bot.outbox.markup import Button, Rows
from bot.risk import safety_plan as rules
from bot.risk.callbacks import PLAN, PLAN_BUTTONS, PLAN_STEP, PlanAction, PlanButton, PlanStepButton

log = logging.getLogger(__name__)


def _data(action: PlanAction) -> str:
    return PLAN.pack(PlanButton(action))


SHOW = _data("show")


@in_care_only
async def safety_plan_command(t: Turn, patient: Patient) -> None:
    plan = await rules.plan_of(t.session, patient.id)
    if plan is not None:
        rules.stop(plan)
    if not rules.filled(plan):
        await t.reply(
            "plan.intro",
            buttons=[
                [(t.text("plan.start_button"), _data("start"))],
                [(t.text("plan.not_now_button"), _data("later"))],
            ],
        )
        return
    await show(t, plan)


async def crisis_contacts(t: Turn, patient: Patient) -> str:
    """The patient's own people and professionals from their plan, for a crisis message ("" if none)."""
    return rules.crisis_contacts(await rules.plan_of(t.session, patient.id)) or ""


async def reason_for_living(t: Turn, patient: Patient) -> str:
    """The one thing most important to the patient, from their plan, shown back in a crisis ("" if none)."""
    return rules.reason_for_living(await rules.plan_of(t.session, patient.id)) or ""


def support_rows(t: Turn) -> Rows:
    """After a worrying answer: the safety plan, or an exercise."""
    return [
        [(t.text("crisis.safety_plan_button"), SHOW)],
        [(t.text("crisis.try_exercise_button"), MENU_DATA)],
    ]


def clinic_lines(t: Turn) -> str:
    """What step 5 holds before the patient writes anything: the clinic's numbers and the nearest ER."""
    settings = t.runtime.settings
    return t.text(
        "plan.clinic_lines",
        program=settings.program_name or "",
        clinic_phone=settings.clinic_phone or "",
        after_hours_phone=settings.after_hours_phone or "",
    )


def sections(t: Turn, plan: SafetyPlan | None) -> str:
    """Every step with its title, in the plan's order; steps not written yet say so."""
    parts = []
    for step in rules.STEPS:
        text = rules.text_of(plan, step) if plan is not None else None
        if step is rules.Step.PROFESSIONALS:
            text = "\n".join(part for part in (clinic_lines(t), text) if part)
        parts.append(f"{t.text(f'plan.steps.{step.value}.title')}\n{text or t.text('plan.empty_step')}")
    return "\n\n".join(parts)


async def show(t: Turn, plan: SafetyPlan | None) -> None:
    await t.reply(
        "plan.view",
        sections=sections(t, plan),
        buttons=[[(t.text("plan.edit_button"), _data("edit")), (t.text("plan.done_button"), _data("stop"))]],
    )


async def _ask(t: Turn, plan: SafetyPlan, step: rules.Step) -> None:
    text = rules.text_of(plan, step)
    rows: list[list[Button]] = [
        [
            (
                t.text("plan.keep_button" if text else "plan.skip_button"),
                PLAN_STEP.pack(PlanStepButton("keep" if text else "skip", step)),
            )
        ],
        [(t.text("plan.stop_button"), _data("stop"))],
    ]
    await t.reply(
        "plan.ask",
        title=t.text(f"plan.steps.{step.value}.title"),
        prompt=t.text(f"plan.steps.{step.value}.prompt", prefilled=clinic_lines(t)),
        text=text or "",
        buttons=rows,
    )


@patient_button(PLAN_BUTTONS, crisis_path=True)  # offered on the crisis path
async def on_button(t: Turn, patient: Patient, button: PlanButton | PlanStepButton) -> None:
    action = button.action
    if action == "later":
        t.clear_buttons()
        await t.reply("plan.not_now")
        return
    if action == "show":
        await show(t, await rules.plan_of(t.session, patient.id))
        return
    plan = await rules.plan_for_editing(t.session, patient.id)
    if action in ("start", "edit", "step"):
        t.clear_buttons()
        if action == "edit":
            rows = [
                [(t.text(f"plan.steps.{step.value}.title"), PLAN_STEP.pack(PlanStepButton("step", step)))]
                for step in rules.STEPS
            ]
            await t.reply("plan.edit_which", buttons=rows)
            return
        chosen = button.step if isinstance(button, PlanStepButton) else None
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
    if current is None or not isinstance(button, PlanStepButton) or button.step is not current:
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
    was_empty = not rules.filled(plan)
    before = rules.text_of(plan, step)
    following = rules.save(plan, step, text)
    log.info("event=safety_plan.saved patient_id=%s step=%s", patient.id, step)
    if rules.text_of(plan, step) != before:
        await _tell_care_team(t, patient, rules.change_to_tell(was_empty))
    if following is not None:
        await _ask(t, plan, following)
        return
    await show(t, plan)


async def _tell_care_team(t: Turn, patient: Patient, kind: FlagKind) -> None:
    """Alias and "made/changed their safety plan", once per sitting; the plan's words stay in the plan."""
    if await rules.care_team_told_lately(t.session, patient.id, utcnow()):
        return
    if await tell_care_team(t.runtime, t.session, patient, kind):
        t.wake_outbox()
    log.info("event=safety_plan.care_team_told patient_id=%s kind=%s", patient.id, kind)
