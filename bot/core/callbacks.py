"""Button data and outbox keys as typed values, each kind written and read in exactly one place.

A `Codec` stands for one kind of string, laid out by a template such as "ci:{checkin_id}:{field}:{value}":
`pack` writes a typed value (a frozen dataclass whose fields are the template's names) as that string,
`parse` reads a string back into the value, or None when it is malformed or names what no row can be (an id
outside 1..2**31-1: PostgreSQL's integer), and `pattern` is the regular expression its handler is registered
with. The template keeps the strings byte for byte as they always were: buttons on messages patients already
have, and idempotency keys already in the outbox, carry them.

The feature packages keep their codecs (bot/<feature>/callbacks.py); the handlers only use them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from string import Formatter
from typing import Any, Generic, TypeVar

T = TypeVar("T")
D = TypeVar("D")
D_co = TypeVar("D_co", covariant=True)
E = TypeVar("E", bound=Enum)

MAX_ID = 2**31 - 1  # PostgreSQL's integer: no row has a larger id
CALLBACK_DATA_LIMIT = 64  # bytes: Telegram refuses longer callback data


@dataclass(frozen=True)
class Part(Generic[T]):
    """One `{name}` of a template: the text it may be (a regular expression without groups), how that text
    becomes a value (None: no valid value) and how a value is written."""

    pattern: str
    read: Callable[[str], T | None]
    write: Callable[[T], str] = str


def _id(text: str) -> int | None:
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _count(text: str) -> int | None:
    value = int(text)
    return value if value <= MAX_ID else None


ID: Part[int] = Part(r"[0-9]{1,10}", _id)
"""A row's id: 1 to 2**31-1, so a forged one never reaches a query."""

COUNT: Part[int] = Part(r"[0-9]{1,10}", _count)
"""A whole number from 0 that is no id (a stage, minutes, a page)."""


NUMBER: Part[int] = Part(r"[0-9]{1,19}", int)
"""A whole number from 0 that may pass an id's bound, for keys only: an update's id, a time in seconds or
milliseconds since 1970."""


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


DAY: Part[date] = Part(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", _day, date.isoformat)
"""A calendar day, as YYYY-MM-DD."""


def word(pattern: str) -> Part[str]:
    """Text matching `pattern`, kept as it is."""
    return Part(pattern, _same)


def _same(text: str) -> str:
    return text


HEX: Part[str] = Part(r"[0-9a-f]{32}", _same)
"""32 hex digits: a keyed hash (`Keyring.tag`) or a random uuid4's hex."""


def choice(*values: str) -> Part[str]:
    """One of a few fixed words."""
    return word("|".join(re.escape(value) for value in values))


def member(kind: type[E], among: tuple[E, ...] | None = None) -> Part[E]:
    """A member of a string enum (or of `among`), written as its value."""
    members = among if among is not None else tuple(kind)
    by_value = {str(m.value): m for m in members}
    return Part("|".join(re.escape(value) for value in by_value), by_value.get, _value)


def _value(member: Enum) -> str:
    return str(member.value)


class Reads(Generic[D_co]):
    """What a button handler needs: the pattern it is registered with, and the parser of its data."""

    @property
    def pattern(self) -> str:
        raise NotImplementedError

    def parse(self, text: str | None) -> D_co | None:
        raise NotImplementedError


class Codec(Reads[D]):
    """One kind of string: see the module's docstring. `limit` is the most bytes it may take (None: no limit,
    for outbox keys)."""

    def __init__(
        self, template: str, kind: type[D], /, *, limit: int | None = CALLBACK_DATA_LIMIT, **parts: Part[Any]
    ) -> None:
        segments = [(literal, name) for literal, name, _, _ in Formatter().parse(template)]
        names = [name for _, name in segments if name is not None]
        fields = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]
        if names != fields or set(parts) != set(names):
            raise TypeError(f"{template}: the template, {kind.__name__}'s fields and the parts must agree")
        self.template, self.kind, self.limit, self.parts = template, kind, limit, parts
        self._segments = segments
        self._regex = re.compile(self._join(lambda name: f"(?P<{name}>{parts[name].pattern})"))
        self._pattern = f"^{self._join(lambda name: f'(?:{parts[name].pattern})')}$"

    def _join(self, group: Callable[[str], str]) -> str:
        return "".join(re.escape(literal) + (group(name) if name else "") for literal, name in self._segments)

    @property
    def pattern(self) -> str:
        """The regular expression a handler is registered with (matches the form, not the ids' range)."""
        return self._pattern

    def pack(self, value: D) -> str:
        """The string for `value`. ValueError if it could not be parsed back (a value out of its range, an
        id from content that breaks the form) or is too long: a bug to surface, not data to send."""
        text = self.template.format(
            **{name: part.write(getattr(value, name)) for name, part in self.parts.items()}
        )
        if self.parse(text) is None or (self.limit is not None and len(text.encode()) > self.limit):
            raise ValueError(f"{self.template}: not a valid {self.kind.__name__}")
        return text

    def parse(self, text: str | None) -> D | None:
        """The value `text` stands for, or None if it is not one (malformed, forged, an id out of range)."""
        match = self._regex.fullmatch(text) if text is not None else None
        if match is None:
            return None
        values: dict[str, Any] = {}
        for name, part in self.parts.items():
            value = part.read(match[name])
            if value is None:
                return None
            values[name] = value
        return self.kind(**values)

    def prefix(self, **leading: Any) -> str:
        """The start shared by every string whose first parts are `leading` (in the template's order), up to
        the next part: e.g. "page:5:" for all the pages of escalation 5. For matching keys by prefix."""
        given = dict(leading)
        text = []
        for literal, name in self._segments:
            text.append(literal)
            if name is None or name not in given:
                break
            text.append(self.parts[name].write(given.pop(name)))
        if given:
            raise TypeError(f"{self.template}: {', '.join(given)} do not lead the template")
        return "".join(text)


class OneOf(Reads[D]):
    """Several codecs read by one handler (e.g. "esc:5:ack" and "esc:5:out:safe"): the first that parses."""

    def __init__(self, *codecs: Codec[Any]) -> None:
        self.codecs = codecs
        self._pattern = "|".join(f"(?:{codec.pattern})" for codec in codecs)

    @property
    def pattern(self) -> str:
        return self._pattern

    def parse(self, text: str | None) -> D | None:
        for codec in self.codecs:
            value = codec.parse(text)
            if value is not None:
                return value  # type: ignore[no-any-return]
        return None
