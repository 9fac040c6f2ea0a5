"""`python -m bot content check`: what a content editor can get wrong, found before a patient sees it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import UndefinedError, nodes
from jinja2.exceptions import SecurityError

from bot.content.catalog import REFERENCE_LANGUAGE, Catalog, ContentError, load_catalog, load_yaml, parse_text
from bot.content.instruments import InstrumentLibrary, load_instruments
from bot.content.modules import ModuleLibrary, load_modules, translation_gaps
from bot.content_check.required import required_keys
from bot.content_check.review import review_status, review_warnings
from bot.core.config import CLINIC_VALUES
from bot.risk.corpus import Example, load_examples
from bot.risk.detector import Detector, self_test
from bot.risk.levels import RiskLevel
from bot.risk.lexicon import Lexicon, load_lexicon
from bot.risk.training import build_layer, enabled

TELEGRAM_TEXT_LIMIT = 4096
BUTTON_LABEL_LIMIT = 64  # bytes; Telegram truncates longer labels on small screens anyway
SAMPLES_FILE = "samples.yaml"


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    catalog: Catalog | None = None
    modules: ModuleLibrary | None = None
    measures: InstrumentLibrary | None = None  # the validated questionnaires
    risk: Detector | None = None


def _is_button(key: str) -> bool:
    return (
        key.endswith("_button")
        or ".buttons." in key
        or key.startswith(("onboarding.zones.", "coping.categories."))
        or key == "language_name"
    )


def _samples(root: Path, report: Report) -> dict[str, Any]:
    path = root / SAMPLES_FILE
    if not path.is_file():
        report.errors.append(f"{path}:1: missing: sample values for every {{{{ variable }}}} the texts use")
        return {}
    data = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        report.errors.append(f"{path}:1: must be a mapping of variable names to sample values")
        return {}
    return data


# Filters that look an attribute up by a name given as a string: `x|attr("__class__")`, `map(attribute=...)`.
ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "sort", "groupby", "selectattr", "rejectattr", "sum", "unique", "min", "max"}
)


@functools.lru_cache(maxsize=8192)
def _underscore_names(source: str) -> tuple[tuple[int, str], ...]:
    """Where a text names an attribute or variable starting with `_` (line in the text, name): the way out of
    a template into Python's insides (`t.__globals__`). The sandbox refuses them at render time anyway;
    refusing the text here says which one, before any patient could be sent it. (Kept per source, as its
    compiled code is: a check of an edited copy looks again only at the texts that changed.)"""
    found: list[tuple[int, str]] = []
    tree = parse_text(source)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter)):
        names: list[str] = []
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node, nodes.Name):
            names.append(node.name)
        elif isinstance(node, nodes.Getitem):
            names.extend(_constant(node.arg))
        elif isinstance(node, nodes.Filter) and node.name in ATTRIBUTE_FILTERS:
            for argument in [*node.args, *(k.value for k in node.kwargs)]:
                names.extend(_constant(argument))
        found.extend((node.lineno, name) for name in names if name.startswith("_"))
    return tuple(found)


def _constant(node: nodes.Node) -> list[str]:
    return [node.value] if isinstance(node, nodes.Const) and isinstance(node.value, str) else []


def _check_underscores(catalog: Catalog, report: Report) -> set[tuple[str, str]]:
    """One error for each text that names something starting with `_` (at the first such line); returns
    the (language, key) pairs refused, which are not rendered."""
    refused: set[tuple[str, str]] = set()
    for language in catalog.languages:
        for key, entry in sorted(catalog.entries[language].items()):
            found = _underscore_names(entry.source)
            if not found:
                continue
            refused.add((language, key))
            line = entry.location.line + min(line for line, _ in found) - 1
            names = ", ".join(repr(name) for name in sorted({name for _, name in found}))
            report.errors.append(
                f"{entry.location.path}:{line}: {key}: uses {names}; "
                "names starting with _ are not allowed in texts"
            )
    return refused


def _check_texts(catalog: Catalog, samples: dict[str, Any], report: Report) -> None:
    refused = _check_underscores(catalog, report)
    # The clinic's values reach every text, included ones too, as they do in the running bot.
    constants = {name: samples[name] for name in CLINIC_VALUES if name in samples}
    for language in catalog.languages:
        for key in catalog.keys(REFERENCE_LANGUAGE):
            entry = catalog.entry(key, language)
            if not catalog.has(key, language):
                # (A file that could not be read, or a text that does not compile, has its error already.)
                unread = language in catalog.unreadable or (language, key) in catalog.broken
                if language != REFERENCE_LANGUAGE and not unread:
                    report.warnings.append(f"{language}: no translation of {key!r}; English is shown instead")
                continue
            if (language, key) in refused:
                continue
            try:
                rendered = catalog.render_with(constants, key, language, **samples)
            except UndefinedError as error:
                report.errors.append(
                    f"{entry.location}: {key}: {error.message} (a typo, or add it to {SAMPLES_FILE})"
                )
                continue
            except SecurityError as error:  # through a text it includes, or a name built at render time
                report.errors.append(f"{entry.location}: {key}: not allowed in a text: {error}")
                continue
            except (KeyError, RecursionError) as error:
                report.errors.append(f"{entry.location}: {key}: {error}")
                continue
            if not rendered:
                report.errors.append(
                    f"{entry.location}: {key}: renders empty; Telegram refuses an empty message"
                )
            if len(rendered) > TELEGRAM_TEXT_LIMIT:
                report.errors.append(
                    f"{entry.location}: {key}: {len(rendered)} characters, "
                    f"over Telegram's {TELEGRAM_TEXT_LIMIT}"
                )
            if _is_button(key) and len(rendered.encode()) > BUTTON_LABEL_LIMIT:
                report.errors.append(
                    f"{entry.location}: {key}: a button label over {BUTTON_LABEL_LIMIT} bytes"
                )
        extra = set(catalog.keys(language)) - set(catalog.keys(REFERENCE_LANGUAGE))
        if REFERENCE_LANGUAGE in catalog.unreadable:
            extra = set()  # the English may be in the file that could not be read
        for key in sorted(extra):
            report.warnings.append(
                f"{catalog.entry(key, language).location}: {key}: not in English; never shown"
            )


def _check_required(catalog: Catalog, report: Report) -> None:
    """Every text the bot uses is in English; those in a file that could not be read count as one error."""
    missing = sorted(
        key
        for key in required_keys() - set(catalog.keys(REFERENCE_LANGUAGE))
        if (REFERENCE_LANGUAGE, key) not in catalog.broken  # its template error is reported
    )
    unreadable = catalog.unreadable.get(REFERENCE_LANGUAGE)
    if unreadable and missing:
        files = ", ".join(path.name for path in unreadable)
        report.errors.append(
            f"{catalog.root / REFERENCE_LANGUAGE}:1: {len(missing)} texts the bot uses are not found; "
            f"they may be in {files}, which is not valid YAML (above)"
        )
        return
    for key in missing:
        report.errors.append(f"{catalog.root / REFERENCE_LANGUAGE}:1: missing text {key!r}: the bot uses it")


def _detector(lexicon: Lexicon, examples: list[Example], report: Report) -> Detector | None:
    """The rules and the semantic layer trained on the labelled corpus (bot.risk.training); the rules alone
    when the layer is switched off or there is nothing to learn from yet."""
    if not enabled() or not examples:
        return Detector(lexicon)
    try:
        built = build_layer(examples, lexicon)
    except (ImportError, OSError, ValueError) as error:
        report.errors.append(f"the semantic risk layer could not be built: {type(error).__name__}: {error}")
        return None
    detector = Detector(lexicon, built.layer)
    # all of them in one encoder call (a call reads all of the encoder's weights once, however many texts)
    screenings = detector.screen_many([text for text, _ in lexicon.safe_examples])
    for (text, where), screened in zip(lexicon.safe_examples, screenings, strict=True):
        if screened.level >= RiskLevel.HIGH and screened.rules_only().level < RiskLevel.HIGH:
            report.warnings.append(f"{where}: safe example {text!r} is paged by the semantic layer")
    return detector


def check_content(root: Path) -> Report:
    report = Report()
    try:
        report.catalog = load_catalog(root, report.errors)
    except ContentError as error:
        report.errors.extend(error.problems)
    report.modules = load_modules(root, report.errors)
    report.warnings.extend(translation_gaps(report.modules))
    report.measures = load_instruments(root, report.errors, report.warnings)
    lexicon = load_lexicon(root, report.errors)
    before = len(report.errors)
    examples = load_examples(root, report.errors)
    examples_ok = len(report.errors) == before
    if lexicon is not None:
        problems = self_test(Detector(lexicon))  # the lexicon's own examples test the rules alone
        report.errors.extend(problems)
        if not problems:
            report.risk = _detector(lexicon, examples if examples_ok else [], report)
    if report.catalog is not None:
        _check_texts(report.catalog, _samples(root, report), report)
        _check_required(report.catalog, report)
    report.warnings.extend(review_warnings(root))  # clinical review status: warnings, never errors
    if report.measures is not None:  # an unreviewed unofficial translation is not offered
        report.measures.unreviewed = frozenset(review_status(root).unreviewed)
    return report
