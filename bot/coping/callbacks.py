"""Button data of the coping toolbox: the menu ("cope:menu", "cope:cat:...", "cope:mod:...") and an exercise
under way ("cs:RUN:..."). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.content.modules import MAX_ID_LENGTH, Category
from bot.core.callbacks import ID, NUMBER, Codec, OneOf, choice, member, word

RunAction = Literal["before", "after", "next", "stop"]
StrongAction = Literal["support", "delay", "better", "strong"]


@dataclass(frozen=True)
class MenuButton:
    """Back to the whole menu."""


@dataclass(frozen=True)
class CategoryButton:
    category: Category


@dataclass(frozen=True)
class ModuleButton:
    module_id: str


MENU = Codec("cope:menu", MenuButton)
CATEGORY = Codec("cope:cat:{category}", CategoryButton, category=member(Category))
MODULE = Codec("cope:mod:{module_id}", ModuleButton, module_id=word(rf"[a-z0-9_]{{1,{MAX_ID_LENGTH}}}"))
MENU_BUTTONS: OneOf[MenuButton | CategoryButton | ModuleButton] = OneOf(MENU, CATEGORY, MODULE)
MENU_DATA = MENU.pack(MenuButton())  # "Other exercises", "Try an exercise"


@dataclass(frozen=True)
class RunButton:
    """A tap during an exercise: a rating before or after (a number or "skip"), or Next / Stop at a step
    (its index)."""

    run_id: int
    action: RunAction
    argument: str


RUN = Codec(
    "cs:{run_id}:{action}:{argument}",
    RunButton,
    run_id=ID,
    action=choice("before", "after", "next", "stop"),
    argument=word(r"[a-z0-9]{1,8}"),
)


@dataclass(frozen=True)
class StrongButton:
    """At a strong craving: reach my support person, or wait 15 minutes and be checked on; then, at the
    check-back, "better" or "still strong"."""

    action: StrongAction


STRONG = Codec("cope:now:{action}", StrongButton, action=choice("support", "delay", "better", "strong"))


@dataclass(frozen=True)
class CheckBackKey:
    """The outbox key of "checking on you, like you asked", once per patient and request (ms)."""

    patient_id: int
    stamp: int


CHECK_BACK_KEY = Codec(
    "check_back:{patient_id}:{stamp}",
    CheckBackKey,
    limit=None,
    patient_id=ID,
    stamp=NUMBER,
)
