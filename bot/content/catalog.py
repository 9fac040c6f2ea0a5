"""The text catalogue: `content/<lang>/*.yaml`, nested mappings of Jinja2 templates, addressed by dotted keys.

English (`en`) is the reference language: a key missing in another language falls back to English.
Every template is compiled at load time with StrictUndefined, so a typo in a variable fails at render time
loudly instead of showing a patient an empty gap; a syntax error fails the whole load, and a running bot
keeps its last good catalogue.

Texts are data an editor writes, not code: they render in Jinja2's sandbox, where a template cannot reach a
Python object's insides (`t.__globals__`, and from there settings, keys or a shell); `content check` refuses
any text that even names an attribute or variable starting with `_` (bot.content_check.check).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

REFERENCE_LANGUAGE = "en"


@dataclass(frozen=True)
class Location:
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class ContentError(Exception):
    """Problems found in content files, each as `path:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Entry:
    source: str
    template: Template
    location: Location


@dataclass
class Catalog:
    root: Path
    # language -> key -> entry. Left out of the repr: over a thousand texts made every repr of anything that
    # holds the content (a Runtime, an asyncio task that returned one) cost about 10 ms.
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict, repr=False)
    # What could not be read (with a problem reported for each): files that are not valid YAML, by language,
    # and texts whose template does not compile, as (language, key).
    unreadable: dict[str, list[Path]] = field(default_factory=dict)
    broken: set[tuple[str, str]] = field(default_factory=set)

    @property
    def languages(self) -> list[str]:
        return sorted(self.entries)

    def has(self, key: str, language: str = REFERENCE_LANGUAGE) -> bool:
        return key in self.entries.get(language, {})

    def entry(self, key: str, language: str) -> Entry:
        found = self.entries.get(language, {}).get(key)
        if found is None:
            found = self.entries[REFERENCE_LANGUAGE].get(key)
        if found is None:
            raise KeyError(f"no content for {key!r}")
        return found

    def render(self, key: str, language: str, **variables: Any) -> str:
        """Render a text; inside it, `{{ t("other.key") }}` includes another text in the same language."""
        return self.render_with({}, key, language, **variables)

    def render_with(self, constants: Mapping[str, object], key: str, language: str, **variables: Any) -> str:
        """`render`, with `constants` (values any text may use, such as the clinic's name and phone numbers)
        given to this text and to every text it includes; `variables` are for this text only."""

        def t(other: str) -> str:
            return self.render_with(constants, other, language)

        return self.entry(key, language).template.render(t=t, **{**constants, **variables}).strip()

    def keys(self, language: str = REFERENCE_LANGUAGE) -> list[str]:
        return sorted(self.entries.get(language, {}))


# libyaml reads the content about ten times faster than PyYAML's pure-Python parser (content is read at every
# start, every reload and every `content check`); its error messages are terser, so a document it refuses is
# read again by the pure-Python parser, which then reports the problem as it always has.
_LIBYAML: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def compose_yaml(text: str) -> yaml.Node | None:
    """`yaml.compose` (the node tree, for line numbers), with libyaml when PyYAML was built with it."""
    if _LIBYAML is not None:
        try:
            return yaml.compose(text, Loader=_LIBYAML)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, with libyaml when PyYAML was built with it."""
    if _LIBYAML is not None:
        try:
            return yaml.load(text, Loader=_LIBYAML)  # noqa: S506 (CSafeLoader is the safe loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def yaml_problem(path: Path, error: yaml.YAMLError) -> str:
    """A YAML syntax error as `path:line: not valid YAML: ...`."""
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    return f"{path}:{line}: not valid YAML: {getattr(error, 'problem', error)}"


LONGEST_PRODUCT = 4096  # characters (Telegram's limit for a message): "ab" * 3 is fine, "x" * 10**8 is not


class ContentSandbox(SandboxedEnvironment):
    """Jinja's sandbox, with `*` and `**` bounded. The sandbox stops a text from reading or calling what it
    should not; it does not stop `{{ "x" * 300000000 }}` from taking the memory, or `{{ 9 ** 999999999 }}`
    from holding the event loop (crisis replies included) for minutes. A power is not needed in a text; a
    product may make at most LONGEST_PRODUCT characters or items, or a number of at most 64 bits."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("powers (**) are not allowed in texts")
        for sequence, times in ((left, right), (right, left)):
            repeated = isinstance(sequence, (str, list, tuple)) and isinstance(times, int)
            if repeated and len(sequence) * max(times, 0) > LONGEST_PRODUCT:
                raise SecurityError(f"a product longer than {LONGEST_PRODUCT} is not allowed in texts")
        if isinstance(left, int) and isinstance(right, int) and (left * right).bit_length() > 64:
            raise SecurityError("a number that large is not allowed in texts")
        return super().call_binop(context, operator, left, right)


def _environment() -> Environment:
    """Where texts are compiled and rendered: the sandbox (plain text, so no HTML escaping)."""
    return ContentSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


_COMPILER = _environment()


@functools.lru_cache(maxsize=8192)
def _compiled(source: str) -> CodeType:
    """A text's template compiled to Python code: most of the time a content load takes (over a thousand
    texts). A load reuses the code of every text compiled before in this process, so a reload after an edit,
    or `content check` of a copy, compiles only what changed. The code depends on nothing but the source and
    the environment's settings, which are the same for every catalogue (`_environment`); a text that does not
    compile raises TemplateSyntaxError every time (errors are not kept)."""
    return _COMPILER.compile(source)


def _template(environment: Environment, source: str) -> Template:
    """`environment.from_string(source)`, with the compiled code reused (`_compiled`)."""
    return environment.template_class.from_code(
        environment, _compiled(source), environment.make_globals(None)
    )


def parse_text(source: str) -> nodes.Template:
    """A text's syntax tree, as its template is compiled from it."""
    return _COMPILER.parse(source)


def _flatten(
    node: yaml.Node, prefix: str, path: Path, out: dict[str, tuple[str, Location]], problems: list[str]
) -> None:
    here = Location(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if not key.replace("_", "").isalnum():
                problems.append(
                    f"{Location(path, key_node.start_mark.line + 1)}: "
                    f"key {key!r} may use only letters, digits and _"
                )
                continue
            dotted = f"{prefix}.{key}" if prefix else key
            if dotted in out:
                problems.append(
                    f"{Location(path, key_node.start_mark.line + 1)}: "
                    f"duplicate key {dotted!r} (first at {out[dotted][1]})"
                )
                continue
            _flatten(value_node, dotted, path, out, problems)
    elif isinstance(node, yaml.ScalarNode):
        if node.style in ("|", ">"):  # a block text starts on the line after its key
            here = Location(path, here.line + 1)
        if not prefix:
            problems.append(f"{here}: a text file must be a mapping of keys to texts")
        else:
            out[prefix] = (str(node.value), here)
    else:
        problems.append(f"{here}: {prefix or 'file'}: expected text or a mapping, found a list")


def _load_language(
    directory: Path, environment: Environment, problems: list[str], catalog: Catalog
) -> dict[str, Entry]:
    sources: dict[str, tuple[str, Location]] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            node = compose_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            problems.append(yaml_problem(path, error))
            catalog.unreadable.setdefault(directory.name, []).append(path)
            continue
        if node is not None:
            _flatten(node, "", path, sources, problems)
    entries: dict[str, Entry] = {}
    for key, (source, location) in sources.items():
        try:
            entries[key] = Entry(source, _template(environment, source), location)
        except TemplateSyntaxError as error:
            catalog.broken.add((directory.name, key))
            problems.append(
                f"{location.path}:{location.line + (error.lineno or 1) - 1}: "
                f"template error in {key!r}: {error.message}"
            )
    return entries


def language_dirs(root: Path) -> list[Path]:
    """The folders under `root` that hold a language's texts (`en`, `es`, ...)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_catalog(root: Path, problems: list[str] | None = None) -> Catalog:
    """Load every language under `root`; raise ContentError listing all problems found. With `problems`,
    append them there instead and return what could be read (`content check` goes on checking the rest:
    one file that is not valid YAML must not hide the others' mistakes)."""
    if not (root / REFERENCE_LANGUAGE).is_dir():
        raise ContentError([f"{root}: no {REFERENCE_LANGUAGE}/ folder with the reference texts"])
    environment = _environment()
    found: list[str] = []
    catalog = Catalog(root)
    for directory in language_dirs(root):
        catalog.entries[directory.name] = _load_language(directory, environment, found, catalog)
    if problems is not None:
        problems.extend(found)
    elif found:
        raise ContentError(found)
    return catalog
