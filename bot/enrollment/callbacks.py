"""Button data of consent ("consent:..."), /revoke ("revoke:..."), set-up ("tz:...", "time:...", "lang:...")
and /settings ("set:..."). Written and read only here (see bot.core.callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.callbacks import Codec, OneOf, Part, choice, word
from bot.enrollment.onboarding import Step

ConsentChoice = Literal["accept", "decline", "review"]
RevokeChoice = Literal["confirm", "cancel"]
SHORT = {Step.TIMEZONE: "tz", Step.CHECKIN_TIME: "time", Step.LANGUAGE: "lang"}  # a step in button data
_STEP_OF = {short: step for step, short in SHORT.items()}
OTHER = "other"  # the value of "Other time zone" / "Other time": the patient types it instead

_STEP: Part[Step] = Part("|".join(SHORT.values()), _STEP_OF.get, SHORT.__getitem__)
_VALUE = word(r"[A-Za-z0-9_/+:-]{1,60}")  # a zone, a clock time, a language code, or OTHER


@dataclass(frozen=True)
class ConsentButton:
    choice: ConsentChoice


CONSENT = Codec("consent:{choice}", ConsentButton, choice=choice("accept", "decline", "review"))


@dataclass(frozen=True)
class RevokeButton:
    choice: RevokeChoice


REVOKE = Codec("revoke:{choice}", RevokeButton, choice=choice("confirm", "cancel"))


@dataclass(frozen=True)
class SetupAnswer:
    """An answer to a set-up question (or OTHER)."""

    step: Step
    value: str


SETUP = Codec("{step}:{value}", SetupAnswer, step=_STEP, value=_VALUE)


@dataclass(frozen=True)
class SettingChosen:
    """/settings: which setting to change."""

    step: Step


@dataclass(frozen=True)
class SettingAnswer:
    """/settings: the new value (or OTHER), with the same choices as set-up."""

    step: Step
    value: str


SETTING_CHOSEN = Codec("set:{step}", SettingChosen, step=_STEP)
SETTING_ANSWER = Codec("set:{step}:{value}", SettingAnswer, step=_STEP, value=_VALUE)
SETTINGS: OneOf[SettingChosen | SettingAnswer] = OneOf(SETTING_CHOSEN, SETTING_ANSWER)
