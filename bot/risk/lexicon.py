"""The risk lexicon: `content/<lang>/risk/lexicon.yaml`, phrases by category and level, kept by clinicians.

A phrase is written as words separated by spaces, with a little syntax (see content/en/risk/README.md):
`a|b` either word, `word*` any word starting so, `(two words|other words)`
a choice between phrases, `<class>` any member of a word class, `#` a number such as
`30` or `20mg` (`#many` 5 or more, `#year` a year), `~` any one word, `...` up to three words in
the same sentence (`...8` up to eight, across sentences), `word?` the word may be missing,
`^` and `$` the start and end of a sentence. Phrases go through
the same normalisation as messages, so "don't" in the lexicon also finds "dont", "do not" and "DONT".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.content.modules import line_of, read_model
from bot.risk.levels import Category, FollowUp, RiskLevel
from bot.risk.normalize import Normalizer

LEXICON_FILE = Path("risk") / "lexicon.yaml"
_NAME = r"[a-z_]+"
_GAP = r"(?: [^ .]+){0,3}"  # words only: a gap never reaches into the next sentence
_ANY = r"[^ .]+"
_NUMBER = r"\d+[a-z]*"
_MANY = r"(?:[5-9]|[1-9]\d+)"  # a count worth worrying about in "took 30 pills"
_YEAR = r"(?:19[5-9]\d|20[0-2]\d)"
_NUMBERS = {"#": _NUMBER, "#many": _MANY, "#year": _YEAR}
_LONG_GAP = re.compile(r"\.\.\.(\d{1,2})")

# The lists of phrases (not single words) under a lexicon's `context:`: the Lexicon's fields of those names.
CONTEXT_PHRASE_LISTS = (
    "not_negation",
    "past",
    "recent",
    "others",
    "reported",
    "denial",
    "refusal",
    "stories",
    "earlier",
    "resolved",
    "hedges",
    "present",
    "offers",
)


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Category
    level: RiskLevel
    follow_up: FollowUp | None = None
    keep_for_others: bool = False
    note: str = ""
    patterns: tuple[str, ...] = Field(min_length=1)
    examples: tuple[str, ...] = ()

    @field_validator("level", mode="before")
    @classmethod
    def _level_by_name(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = RiskLevel.parse(value)
            except KeyError:
                raise ValueError("level must be one of imminent, high, moderate") from None
        if value in (RiskLevel.NONE, 0):
            raise ValueError("level must be one of imminent, high, moderate")
        return value


class Normalisation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    emoji: dict[str, str] = {}
    rewrites: dict[str, str] = {}
    fuzzy: tuple[str, ...] = ()
    not_fuzzy: tuple[str, ...] = ()


class ContextWords(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    negation: tuple[str, ...] = ()
    not_negation: tuple[str, ...] = ()
    past: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    others: tuple[str, ...] = ()
    reported: tuple[str, ...] = ()
    first_person: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    humor: tuple[str, ...] = ()
    # Words a negation reaches across without counting them: "no thoughts of suicide or self harm".
    negation_reach: tuple[str, ...] = ()
    # A whole sentence that answers no ("no", "para nada"): it denies the sentence before it.
    denial: tuple[str, ...] = ()
    # Turning down what was offered, after talk of using: "got offered a bag and said no".
    refusal: tuple[str, ...] = ()
    # Leading words of a sentence that dates the sentence before it: "that was 8 years ago".
    dating: tuple[str, ...] = ()
    # "my" and "our": in someone else's story they say whose person or thing it is ("my sister's husband").
    possessive: tuple[str, ...] = ()
    # Someone else's story told from a book, the news, a show: it holds even for an overdose or a danger.
    stories: tuple[str, ...] = ()
    # Days or weeks back: someone else's overdose then is not an emergency now (for oneself it is recent).
    earlier: tuple[str, ...] = ()
    # Someone else's emergency told with its outcome: "he survived", "ya esta estable".
    resolved: tuple[str, ...] = ()
    # Words that end a negation's reach: "no plan ... except to kill myself tonight".
    negation_stop: tuple[str, ...] = ()
    # Before a resolution, these make it unknown, not told: "i don't know if he survived".
    hedges: tuple[str, ...] = ()
    # Happening now: in the match's sentence, someone else's emergency is neither over nor a story.
    present: tuple[str, ...] = ()
    # What was offered: a refusal counts against using only after an offer ("offered me a bag, said no").
    offers: tuple[str, ...] = ()


class LexiconFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewed: str = Field(min_length=1)
    normalize: Normalisation = Normalisation()
    classes: dict[str, tuple[str, ...]] = {}
    context: ContextWords = ContextWords()
    benign: tuple[str, ...] = ()
    safe_examples: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()


Anchor = tuple[frozenset[str], tuple[str, ...]]  # words one of which must be in the message, or prefixes


@dataclass(frozen=True)
class Phrase:
    """One compiled lexicon phrase and where it was written."""

    source: str
    where: str
    regex: re.Pattern[str]
    anchor: Anchor | None = None  # a message with none of these words cannot match: skip the regex


@dataclass(frozen=True)
class CompiledEntry:
    entry: Entry
    phrases: tuple[Phrase, ...]
    where: str


@dataclass
class Lexicon:
    normalizer: Normalizer
    entries: list[CompiledEntry] = field(default_factory=list)
    benign: list[Phrase] = field(default_factory=list)
    negation: set[str] = field(default_factory=set)
    not_negation: list[Phrase] = field(default_factory=list)
    past: list[Phrase] = field(default_factory=list)
    recent: list[Phrase] = field(default_factory=list)
    others: list[Phrase] = field(default_factory=list)
    reported: list[Phrase] = field(default_factory=list)
    first_person: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)
    humor: set[str] = field(default_factory=set)
    negation_reach: set[str] = field(default_factory=set)
    denial: list[Phrase] = field(default_factory=list)
    refusal: list[Phrase] = field(default_factory=list)
    dating: set[str] = field(default_factory=set)
    possessive: set[str] = field(default_factory=set)
    stories: list[Phrase] = field(default_factory=list)
    earlier: list[Phrase] = field(default_factory=list)
    resolved: list[Phrase] = field(default_factory=list)
    negation_stop: set[str] = field(default_factory=set)
    hedges: list[Phrase] = field(default_factory=list)
    present: list[Phrase] = field(default_factory=list)
    offers: list[Phrase] = field(default_factory=list)
    examples: list[tuple[str, str, Entry]] = field(default_factory=list)  # (text, where, entry)
    safe_examples: list[tuple[str, str]] = field(default_factory=list)  # (text, where)
    source_digest: str = (
        ""  # changes when any lexicon file's content does (a cache key of the semantic layer)
    )


class PatternError(ValueError):
    pass


def _union(anchors: list[Anchor | None]) -> Anchor | None:
    if not anchors or any(a is None for a in anchors):
        return None
    exact = frozenset().union(*(a[0] for a in anchors if a))
    prefixes = tuple(sorted({p for a in anchors if a for p in a[1]}))
    return exact, prefixes


def _cost(anchor: Anchor) -> int:
    return len(anchor[0]) + 5 * len(anchor[1])


@dataclass(frozen=True)
class _Piece:
    body: str
    first: Anchor | None  # what the phrase must start with
    best: Anchor | None  # the most selective word set the phrase cannot match without


@dataclass(frozen=True)
class _Compiled:
    """What compiling every phrase of a lexicon gave, by phrase, and the words the phrases name."""

    phrases: dict[str, tuple[re.Pattern[str], Anchor | None]]
    words: frozenset[str]


# Compiling the phrases is most of loading the content (regular expressions by the thousand). What it gives
# depends only on the lexicon files' data, not on where they are: a reload that changed no lexicon file, or
# `content check` of a copy of the content, reuses the last compile of the same data.
_RECENT_COMPILES: dict[tuple[str, ...], _Compiled] = {}
_RECENT_COMPILES_KEPT = 4


class _Compiler:
    def __init__(
        self, normalizer: Normalizer, classes: dict[str, tuple[str, ...]], done: _Compiled | None = None
    ) -> None:
        self.normalizer = normalizer
        self.classes = classes
        self._class_cache: dict[str, tuple[str, Anchor | None]] = {}
        self._done = done
        self.words: set[str] = set(done.words) if done is not None else set()
        self.compiled: dict[str, tuple[re.Pattern[str], Anchor | None]] = {}

    def _tokens(self, text: str) -> list[str]:
        tokens = [t for clause in self.normalizer.clauses(text) for t in clause]
        if not tokens:
            raise PatternError(f"{text!r} has no words left after normalisation")
        self.words.update(tokens)
        return tokens

    def _class(self, name: str, seen: tuple[str, ...]) -> tuple[str, Anchor | None]:
        if name in seen:
            raise PatternError(f"word class <{name}> refers to itself")
        if name not in self._class_cache:
            members = self.classes.get(name)
            if not members:
                raise PatternError(f"unknown word class <{name}>")
            pieces = [self.phrase(m, (*seen, name)) for m in members]
            self._class_cache[name] = ("|".join(p.body for p in pieces), _union([p.first for p in pieces]))
        return self._class_cache[name]

    def _alternative(self, word: str, seen: tuple[str, ...]) -> tuple[str, Anchor | None]:
        if word in _NUMBERS:
            return _NUMBERS[word], None
        if word == "~":
            return _ANY, None
        if match := re.fullmatch(rf"<({_NAME})>", word):
            body, anchor = self._class(match.group(1), seen)
            return f"(?:{body})", anchor
        if word.endswith("*") and len(word) > 1:
            stem = word[:-1]
            if "*" in stem or len(stem) < 3:
                raise PatternError(f"{word!r}: a prefix needs at least 3 letters before '*'")
            tokens = self._tokens(stem)
            prefix: Anchor = (frozenset(tokens[:1]), ()) if len(tokens) > 1 else (frozenset(), (tokens[0],))
            return " ".join(re.escape(t) for t in tokens) + r"[^ ]*", prefix
        if any(c in word for c in "*<>#~.?^$"):
            raise PatternError(f"{word!r}: stray syntax character")
        tokens = self._tokens(word)
        return " ".join(re.escape(t) for t in tokens), (frozenset(tokens[:1]), ())

    def phrase(self, source: str, seen: tuple[str, ...] = ()) -> _Piece:
        """The regex body for a phrase (over canonical tokens joined by single spaces)."""
        if any(c in source for c in ',;:!"[]{}'):
            raise PatternError("punctuation is not part of a phrase; write words only")
        slots = _slots(source)
        start = end = ""
        if slots and slots[0] == "^":
            start, slots = r"(?:^|(?<=\. ))", slots[1:]
        if slots and slots[-1] == "$":
            end, slots = r"(?= \.|$)", slots[:-1]
        if not slots:
            raise PatternError("empty phrase")
        gaps = [slot == "..." or bool(_LONG_GAP.fullmatch(slot)) for slot in slots]
        if gaps[0] or gaps[-1] or slots[0].endswith("?"):
            raise PatternError("a phrase cannot start or end with '...' or start with an optional word")
        pieces: list[str] = []
        anchors: list[Anchor | None] = []
        for index, slot in enumerate(slots):
            if gaps[index]:
                long_gap = _LONG_GAP.fullmatch(slot)
                width = 3 if long_gap is None else int(long_gap.group(1))
                word = "[^ ]" if width > 3 else "[^ .]"  # only long gaps reach across sentences
                pieces.append(rf"(?: {word}+){{0,{width}}}")
                continue
            optional = slot.endswith("?") and len(slot) > 1
            body = slot[:-1] if optional else slot
            if body.startswith("("):
                groups = (self.phrase(a, seen) for a in _split_group(body[1:-1]))
                choices = [(p.body, p.first) for p in groups]
            else:
                choices = [self._alternative(a, seen) for a in body.split("|") if a]
            if not choices:
                raise PatternError(f"{slot!r}: empty alternative")
            alternatives = "|".join(c[0] for c in choices)
            joined = f"(?:{alternatives})" if index == 0 else f" (?:{alternatives})"
            pieces.append(f"(?:{joined})?" if optional else joined)
            if not optional:
                anchors.append(_union([c[1] for c in choices]))
        known = [a for a in anchors if a is not None]
        best = min(known, key=_cost) if known else None
        return _Piece(start + "".join(pieces) + end, anchors[0], best)

    def compile(self, source: str, where: str) -> Phrase:
        done = self._done.phrases.get(source) if self._done is not None else None
        if done is None:
            piece = self.phrase(source)
            done = re.compile(rf"(?<![^ ]){piece.body}(?![^ ])"), piece.best
            self.compiled[source] = done
        return Phrase(source, where, *done)


def _slots(source: str) -> list[str]:
    """Split a phrase into slots: words (with `|`) and `(several words|others)` groups, maybe with `?`."""
    slots: list[str] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char.isspace():
            index += 1
        elif char == "(":
            depth, end = 0, index
            while end < len(source):
                depth += {"(": 1, ")": -1}.get(source[end], 0)
                if depth == 0:
                    break
                end += 1
            if depth:
                raise PatternError("'(' without its ')'")
            end += 1
            if end < len(source) and source[end] == "?":
                end += 1
            if end < len(source) and not source[end].isspace():
                raise PatternError("a group must be followed by a space")
            slots.append(source[index:end])
            index = end
        elif char == ")":
            raise PatternError("')' without its '('")
        else:
            end = index
            while end < len(source) and not source[end].isspace() and source[end] not in "()":
                end += 1
            if end < len(source) and source[end] in "()":
                raise PatternError("put a space between a word and a group")
            slots.append(source[index:end])
            index = end
    return slots


def _split_group(body: str) -> list[str]:
    parts: list[str] = []
    depth, start = 0, 0
    for position, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(body[start:position])
            start = position + 1
    parts.append(body[start:])
    if any(not p.strip() for p in parts):
        raise PatternError(f"({body}): empty alternative")
    return [p.strip() for p in parts]


def lexicon_files(root: Path) -> list[Path]:
    return sorted(
        d / LEXICON_FILE
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / LEXICON_FILE).is_file()
    )


def load_lexicon(root: Path, problems: list[str]) -> Lexicon | None:
    """Every language's lexicon merged into one (people mix languages); problems appended as path:line."""
    before = len(problems)
    files: list[tuple[Path, LexiconFile, yaml.Node]] = []
    for path in lexicon_files(root):
        read = read_model(path, LexiconFile, problems)
        if read is not None:
            files.append((path, *read))
    if not files:
        if len(problems) == before:
            problems.append(f"{root}: no risk lexicon (expected {LEXICON_FILE} in a language folder)")
        return None
    emoji: dict[str, str] = {}
    rewrites: dict[str, str] = {}
    classes: dict[str, tuple[str, ...]] = {}
    for _, data, _ in files:
        emoji.update(data.normalize.emoji)
        rewrites.update(data.normalize.rewrites)
        for name, members in data.classes.items():
            classes[name] = (*classes.get(name, ()), *members)
    normalizer = Normalizer.build(emoji, rewrites)
    inputs = tuple(data.model_dump_json() for _, data, _ in files)
    done = _RECENT_COMPILES.get(inputs)
    compiler = _Compiler(normalizer, classes, done)
    lexicon = Lexicon(normalizer, source_digest=hashlib.sha256("\n".join(inputs).encode()).hexdigest())

    def compile_all(
        path: Path, node: yaml.Node, key: tuple[str | int, ...], sources: Iterable[str]
    ) -> list[Phrase]:
        out: list[Phrase] = []
        for index, source in enumerate(sources):
            where = f"{path}:{line_of(node, (*key, index))}"
            try:
                out.append(compiler.compile(source, where))
            except (PatternError, re.error) as error:
                problems.append(f"{where}: {source!r}: {error}")
        return out

    seen: dict[str, str] = {}
    for path, data, node in files:
        for index, entry in enumerate(data.entries):
            key = ("entries", index)
            phrases = compile_all(path, node, (*key, "patterns"), entry.patterns)
            for phrase in phrases:
                canonical = phrase.regex.pattern
                if canonical in seen:
                    problems.append(f"{phrase.where}: {phrase.source!r} repeats {seen[canonical]}")
                seen[canonical] = phrase.where
            lexicon.entries.append(CompiledEntry(entry, tuple(phrases), f"{path}:{line_of(node, key)}"))
            for number, example in enumerate(entry.examples):
                where = f"{path}:{line_of(node, (*key, 'examples', number))}"
                lexicon.examples.append((example, where, entry))
        lexicon.benign += compile_all(path, node, ("benign",), data.benign)
        context = data.context
        # Each list of phrases under `context:`, compiled with the place it is written.
        for name in CONTEXT_PHRASE_LISTS:
            getattr(lexicon, name).extend(compile_all(path, node, ("context", name), getattr(context, name)))
        for words, target in (
            (context.negation, lexicon.negation),
            (context.first_person, lexicon.first_person),
            (context.subjects, lexicon.subjects),
            (context.humor, lexicon.humor),
            (context.negation_reach, lexicon.negation_reach),
            (context.negation_stop, lexicon.negation_stop),
            (context.dating, lexicon.dating),
            (context.possessive, lexicon.possessive),
        ):
            for word in words:
                target.update(t for clause in normalizer.clauses(word) for t in clause)
        for number, example in enumerate(data.safe_examples):
            lexicon.safe_examples.append((example, f"{path}:{line_of(node, ('safe_examples', number))}"))
    normalizer.know(compiler.words)
    for _, data, _ in files:
        normalizer.know(t for w in data.normalize.not_fuzzy for c in normalizer.clauses(w) for t in c)
        normalizer.learn(t for w in data.normalize.fuzzy for c in normalizer.clauses(w) for t in c)
    if len(problems) != before:
        return None
    if done is None:
        _RECENT_COMPILES[inputs] = _Compiled(compiler.compiled, frozenset(compiler.words))
        while len(_RECENT_COMPILES) > _RECENT_COMPILES_KEPT:
            del _RECENT_COMPILES[next(iter(_RECENT_COMPILES))]
    return lexicon
