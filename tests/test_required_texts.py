"""Every text the code names is in the required list, so `content check` refuses content that lacks it."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.content.catalog import load_catalog
from bot.content_check.required import PATIENT_COMMANDS, required_keys

BOT = Path(__file__).resolve().parent.parent / "bot"
CONTENT = BOT.parent / "content"


def _string_constants() -> set[str]:
    found: set[str] = set()
    for path in BOT.rglob("*.py"):
        if "simulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_texts_named_in_the_code_are_required() -> None:
    shipped = set(load_catalog(CONTENT).keys())
    named = _string_constants() & shipped
    assert named - required_keys() == set()


def test_the_shipped_content_has_every_required_text() -> None:
    assert required_keys() - set(load_catalog(CONTENT).keys()) == set()
    assert {f"commands.{name}" for name in PATIENT_COMMANDS} <= required_keys()
