"""Coping modules: `content/<lang>/modules/<id>.yaml`, validated against a schema, errors as `path:line`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.content.catalog import REFERENCE_LANGUAGE, compose_yaml, load_yaml, yaml_problem

MAX_STEP_TEXT = 600
M = TypeVar("M", bound=BaseModel)
MAX_ID_LENGTH = 40  # ids travel in callback data (64 bytes) with a prefix


class Category(enum.StrEnum):
    BREATHING = "breathing"
    RELAXATION = "relaxation"
    MINDFULNESS = "mindfulness"
    GROUNDING = "grounding"
    URGE_MANAGEMENT = "urge_management"
    REFLECTION = "reflection"


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=MAX_STEP_TEXT)
    pause: int = Field(default=0, ge=0, le=120)


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1, max_length=30)
    category: Category
    minutes: int = Field(ge=1, le=20)
    summary: str = Field(min_length=1, max_length=120)
    steps: tuple[Step, ...] = Field(min_length=3, max_length=20)
    # Not offered, nor run, when the craving is above this: picturing the use ("play the tape forward") can
    # feed a craving that is already strong.
    max_craving: int | None = Field(default=None, ge=0, le=10)

    def suits(self, craving: int | None) -> bool:
        """Whether to offer or run this module at this craving (None: not known)."""
        return self.max_craving is None or craving is None or craving <= self.max_craving

    @field_validator("title", "summary")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())


@dataclass
class ModuleLibrary:
    # language -> id -> module (left out of the repr, as the catalogue's texts are)
    modules: dict[str, dict[str, Module]] = field(default_factory=dict, repr=False)
    failed: dict[str, set[str]] = field(default_factory=dict)  # language -> ids whose file has errors

    def get(self, module_id: str, language: str) -> Module | None:
        found = self.modules.get(language, {}).get(module_id)
        return found or self.modules.get(REFERENCE_LANGUAGE, {}).get(module_id)

    def ids(self) -> list[str]:
        return sorted(self.modules.get(REFERENCE_LANGUAGE, {}))

    def in_language(self, language: str) -> list[Module]:
        """Every module offered, in `language` where translated (else English), in id order."""
        return [m for m in (self.get(i, language) for i in self.ids()) if m is not None]


def line_of(node: yaml.Node | None, location: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at a pydantic error location (as deep as the document goes)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def read_model(path: Path, model: type[M], problems: list[str]) -> tuple[M, yaml.Node] | None:
    """A YAML file validated against `model`; every problem appended as `path:line: field: message`."""
    text = path.read_text(encoding="utf-8")
    try:
        node = compose_yaml(text)
        data: Any = load_yaml(text)
    except yaml.YAMLError as error:
        problems.append(yaml_problem(path, error))
        return None
    if node is None:
        problems.append(f"{path}:1: the file is empty")
        return None
    try:
        return model.model_validate(data), node
    except ValidationError as error:
        for detail in error.errors():
            where = ".".join(str(p) for p in detail["loc"]) or model.__name__.lower()
            problems.append(f"{path}:{line_of(node, tuple(detail['loc']))}: {where}: {detail['msg']}")
        return None


def _load_file(path: Path, problems: list[str]) -> Module | None:
    read = read_model(path, Module, problems)
    if read is None:
        return None
    module, node = read
    if module.id != path.stem:
        problems.append(
            f"{path}:{line_of(node, ('id',))}: id {module.id!r} must equal the file name {path.stem!r}"
        )
        return None
    return module


def load_modules(root: Path, problems: list[str]) -> ModuleLibrary:
    """Load every language's modules; append problems (path:line: message) instead of raising."""
    library = ModuleLibrary()
    for language_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        language = language_dir.name
        found: dict[str, Module] = {}
        for path in sorted((language_dir / "modules").glob("*.yaml")):
            module = _load_file(path, problems)
            if module is not None:
                found[module.id] = module
            else:
                library.failed.setdefault(language, set()).add(path.stem)
        library.modules[language] = found
    return library


def translation_gaps(library: ModuleLibrary) -> list[str]:
    """Warnings: modules missing in a language, or translated with other steps or pauses."""
    warnings: list[str] = []
    reference = library.modules.get(REFERENCE_LANGUAGE, {})
    # A file with errors has them reported: its module is neither missing nor without an original.
    unread_originals = library.failed.get(REFERENCE_LANGUAGE, set())
    for language, modules in sorted(library.modules.items()):
        if language == REFERENCE_LANGUAGE:
            continue
        unread = library.failed.get(language, set())
        for module_id, original in sorted(reference.items()):
            translated = modules.get(module_id)
            if translated is None and module_id in unread:
                continue
            if translated is None:
                warnings.append(f"{language}/modules/{module_id}.yaml: missing; English is shown instead")
            elif [s.pause for s in translated.steps] != [s.pause for s in original.steps]:
                warnings.append(f"{language}/modules/{module_id}.yaml: steps or pauses differ from English")
        for module_id in sorted(set(modules) - set(reference) - unread_originals):
            warnings.append(f"{language}/modules/{module_id}.yaml: no English original")
    return warnings
