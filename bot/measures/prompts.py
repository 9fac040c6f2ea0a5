"""The messages that ask a questionnaire's questions, one item a message with its options as buttons: for a
reply, or for the outbox (the first question at the check-in time, the current one again on a later day, or
one a counselor sent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.content.instruments import Instrument
from bot.core.models import Measure, Patient, utcnow
from bot.measures import scoring
from bot.measures.callbacks import MEASURE, PROMPT_KEY, MeasureButton, PromptKey
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows

if TYPE_CHECKING:
    from bot.runtime import Runtime

SHORT_LABEL = 12  # options whose labels are all this short go two to a row; longer ones one to a row


def definitions(runtime: Runtime, measure: Measure, language: str) -> tuple[Instrument, Instrument]:
    """(the English definition, which answers are checked and scored against; the one in `language`, whose
    words are shown). KeyError when content no longer has the questionnaire."""
    reference = runtime.measures.reference(measure.instrument)
    shown = runtime.measures.get(measure.instrument, language)
    if reference is None or shown is None:
        raise KeyError(measure.instrument)
    return reference, shown


def question(
    runtime: Runtime, language: str, measure: Measure, *, intro: str | None = None
) -> tuple[str, Rows]:
    """The message asking the questionnaire's current item, with `intro` (already rendered) before it."""
    assert measure.step is not None
    reference, shown = definitions(runtime, measure, language)
    item = shown.item(measure.step)
    number, total = scoring.progress(reference, measure.answers, reference.item(measure.step))
    text = runtime.text(
        "measures.question",
        language,
        name=shown.name,
        number=number,
        total=total,
        stem=item.stem if item.stem is not None else shown.stem,
        item=item.text,
    )
    if intro:
        text = f"{intro}\n\n{text}"
    options: list[Button] = [
        (option.label, MEASURE.pack(MeasureButton(measure.id, item.id, option.value)))
        for option in shown.options_of(item)
    ]
    width = 2 if all(len(label) <= SHORT_LABEL for label, _ in options) else 1
    return text, [options[i : i + width] for i in range(0, len(options), width)]


def opening(runtime: Runtime, language: str, measure: Measure, key: str, **variables: object) -> str:
    """The text before a questionnaire's first question: `key` (why it comes), then its own introduction."""
    _, shown = definitions(runtime, measure, language)
    return f"{runtime.text(key, language, **variables)}\n\n{shown.intro}"


def planned(
    runtime: Runtime, patient: Patient, measure: Measure, kind: str, intro: str, *, day: int = 0
) -> outbox.Planned:
    """The question for the outbox, once per questionnaire and kind (and local day, for a question asked
    again); it expires with the questionnaire."""
    text, buttons = question(runtime, patient.language, measure, intro=intro)
    key = PROMPT_KEY.pack(PromptKey(kind, measure.id, day))
    return outbox.to_patient(
        patient, key, kind, text, buttons=buttons, due_at=utcnow(), expires_at=measure.expires_at
    )
