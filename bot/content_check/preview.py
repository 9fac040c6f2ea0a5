"""`python -m bot content preview --html DIR`: every coping module, in every language, as a page that shows
the chat a patient sees (the messages in order, with their buttons), so a clinician can review an edit in a
browser without running the bot.

The messages are built from the same texts, in the same order, as bot/handlers/coping.py sends them: the
"before" rating, each step (Next and Stop under all but the last), the "after" rating and a closing message.
The page is a small Jinja2 template rendered in the sandbox with HTML escaping on: texts are data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from bot.checkin.rules import CRAVING_RANGE
from bot.content.catalog import REFERENCE_LANGUAGE, Catalog
from bot.content.modules import Module, ModuleLibrary
from bot.outbox.markup import scale_rows

SAMPLE_BEFORE, SAMPLE_AFTER = 7, 4  # the closing message shown is the one for a craving that went down

_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; background: #c9d9e6; margin: 0; padding: 1em; }
main { max-width: 30em; margin: auto; }
header, nav { background: #fff8; border-radius: 8px; padding: .5em .8em; }
h1 { font-size: 1.2em; margin: 0; }
.message { background: #fff; border-radius: 12px; padding: .5em .8em; margin: .8em 0 0;
  white-space: pre-wrap; }
.keyboard { margin-top: 3px; }
.row { display: flex; gap: 3px; margin-top: 3px; }
.row span { flex: 1; text-align: center; background: #5b7f9c; color: #fff; border-radius: 8px;
  padding: .35em; }
.note { font-size: .85em; color: #345; text-align: center; margin: .4em 0 0; }
"""

_PAGE = (
    """<!doctype html>
<html lang="{{ language }}"><head><meta charset="utf-8">
<title>{{ module.title }} ({{ language }})</title><style>"""
    + _STYLE
    + """</style></head>
<body><main>
<header><h1>{{ module.title }}</h1>
<p>{{ module.id }} · {{ language }} · {{ module.category.value }}, about {{ module.minutes }} min
{%- if fallback %} · not translated: the patient gets the English{% endif %}</p>
<p>{% for other in languages %}<a href="{{ module.id }}.{{ other }}.html">{{ other }}</a> · {% endfor %}
<a href="index.html">all modules</a></p></header>
{% for message in messages %}
<div class="message">{{ message.text }}</div>
{%- if message.rows %}<div class="keyboard">{% for row in message.rows %}<div class="row">
{%- for label in row %}<span>{{ label }}</span>{% endfor %}</div>{% endfor %}</div>{% endif %}
{%- if message.note %}<p class="note">{{ message.note }}</p>{% endif %}
{% endfor %}
</main></body></html>
"""
)

_INDEX = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Coping modules</title><style>"""
    + _STYLE
    + """</style></head>
<body><main><nav><h1>Coping modules as patients see them</h1><ul>
{% for module in modules %}<li>{{ module.title }} ({{ module.id }}):
{%- for language in languages %} <a href="{{ module.id }}.{{ language }}.html">{{ language }}</a>
{%- endfor %}</li>
{% endfor %}</ul></nav></main></body></html>
"""
)


@dataclass(frozen=True)
class Message:
    """One message as the patient sees it: its text, its keyboard's labels by row, and a note for the
    reviewer (what happens next) shown under it, not sent."""

    text: str
    rows: tuple[tuple[str, ...], ...] = ()
    note: str = ""


def module_messages(catalog: Catalog, module: Module, language: str) -> list[Message]:
    """What a run of `module` sends, in order, as bot/handlers/coping.py builds it."""

    def text(key: str, **values: object) -> str:
        return catalog.render(key, language, **values)

    scale = tuple(
        tuple(label for label, _ in row)
        for row in scale_rows(lambda value: value, *CRAVING_RANGE, text("coping.skip_button"))
    )
    messages = [
        Message(text("coping.rate_before", title=module.title, summary=module.summary), scale),
    ]
    next_or_stop = ((text("coping.next_button"), text("coping.stop_button")),)
    total = len(module.steps)
    for number, step in enumerate(module.steps, start=1):
        last = number == total
        note = f"the next step comes after {step.pause} s, or on Next" if step.pause and not last else ""
        body = text("coping.step", title=module.title, number=number, total=total, text=step.text)
        messages.append(Message(body, () if last else next_or_stop, note))
    messages.append(Message(text("coping.rate_after"), scale))
    messages.append(
        Message(
            text("coping.done_lower", before=SAMPLE_BEFORE, after=SAMPLE_AFTER),
            note=f"when the craving went from {SAMPLE_BEFORE} to {SAMPLE_AFTER}",
        )
    )
    return messages


def write_pages(
    catalog: Catalog, library: ModuleLibrary, directory: Path, only: str | None = None
) -> list[Path]:
    """One page per module and language (`<id>.<language>.html`) and an index; returns the pages written."""
    environment = SandboxedEnvironment(autoescape=True)
    page, index = environment.from_string(_PAGE), environment.from_string(_INDEX)
    languages = catalog.languages
    ids = [only] if only else library.ids()
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for module_id in ids:
        for language in languages:
            module = library.get(module_id, language)
            if module is None:
                continue
            fallback = language != REFERENCE_LANGUAGE and module_id not in library.modules.get(language, {})
            path = directory / f"{module_id}.{language}.html"
            path.write_text(
                page.render(
                    module=module,
                    language=language,
                    languages=languages,
                    fallback=fallback,
                    messages=module_messages(catalog, module, language),
                ),
                encoding="utf-8",
            )
            written.append(path)
    modules = [m for m in (library.get(i, REFERENCE_LANGUAGE) for i in ids) if m is not None]
    (directory / "index.html").write_text(
        index.render(modules=modules, languages=languages), encoding="utf-8"
    )
    return written
