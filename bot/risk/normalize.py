"""Turn what someone typed into canonical tokens, so one lexicon phrase matches the many ways it is written.

Steps, in order: emoji become words; Unicode is folded (NFKC, case, accents); the text is cut into clauses at
punctuation; each token loses leetspeak ("k1ll"), repeated letters ("sooo", "killll") and known misspellings
or shorthand ("kms", "wanna", "dont"); an unknown long token one edit away from a commonly misspelled lexicon
word becomes that word.
The lexicon's own phrases go through the same steps, so both sides meet in the middle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_VARIATION = dict.fromkeys([0xFE0E, 0xFE0F, 0x200D], None)
_CLAUSE_BREAK = re.compile(r"[;?,:\n()\"“”«»¿¡…/]+|\.(?!\d)|!+(?=\s|$)|\s[-–—]+\s|\s+&\s+")
_TOKEN = re.compile(r"[a-z0-9@$!|'’#+%]+")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_SQUEEZE = re.compile(r"([a-z])\1+")
FUZZY_MIN = 6


def fold(text: str) -> str:
    """Lower case, compatibility forms and no accents: 'ＫＩＬＬ' and 'Mátame' become 'kill' and 'matame'."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def squeeze(word: str) -> str:
    """Repeated letters count once, on both sides: 'killll', 'kill' and 'kil' are all 'kil'."""
    return _SQUEEZE.sub(r"\1", word)


def unleet(word: str) -> str:
    """'k1ll', 'su1c1de', '$uicide' are words with digits for letters; '20mg' and '4am' are not."""
    if not word or word[0].isdigit() or not any(c.isalpha() for c in word):
        return word
    if not any(c in "0134579@$!" for c in word):
        return word
    return word.translate(_LEET)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass
class Normalizer:
    """Built from the lexicon: emoji names, word rewrites and the words fuzzy matching may snap to."""

    emoji: Mapping[str, str] = field(default_factory=dict)
    rewrites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    joins: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # "my self" -> "myself"
    _fuzzy: dict[str, str] = field(default_factory=dict)
    _known: set[str] = field(default_factory=set)
    _emoji_table: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._emoji_table = {ord(k[0]): f" {v} " for k, v in self.emoji.items() if k}
        self._emoji_table.update(_VARIATION)  # type: ignore[arg-type]

    @classmethod
    def build(cls, emoji: Mapping[str, str], rewrites: Mapping[str, str]) -> Normalizer:
        plain = cls(emoji=emoji)
        table: dict[str, tuple[str, ...]] = {}
        joins: dict[tuple[str, ...], tuple[str, ...]] = {}
        for source, target in rewrites.items():
            words = tuple(t for clause in plain.clauses(source) for t in clause)
            replacement = tuple(t for clause in plain.clauses(target) for t in clause)
            if len(words) == 1:
                table[words[0]] = replacement
            elif words:
                joins[words] = replacement
        return cls(emoji=emoji, rewrites=table, joins=joins)

    def learn(self, words: Iterable[str]) -> None:
        """Words often misspelled ('suicide', 'overdose'): an unknown long token one edit away is read as
        the word."""
        for word in words:
            if not word.isalpha():
                continue
            self._known.add(word)
            if len(word) < FUZZY_MIN:
                continue
            for variant in {word, *_deletions(word)}:
                self._fuzzy.setdefault(variant, word)

    def know(self, words: Iterable[str]) -> None:
        """Ordinary words that must never be snapped to a lexicon word ('skilled' is not 'killed')."""
        self._known.update(w for w in words if w.isalpha())

    def _canonical_token(self, raw: str) -> str:
        token = raw.strip("!|'’")
        token = token.replace("'", "").replace("’", "")
        return squeeze(unleet(token))

    def _snap(self, token: str) -> str:
        if len(token) < FUZZY_MIN - 1 or token in self._known or not token.isalpha():
            return token
        hit = self._fuzzy.get(token)
        if hit is None:
            for variant in _deletions(token):
                hit = self._fuzzy.get(variant)
                if hit is not None:
                    break
        return hit or token

    def clauses(self, text: str) -> list[list[str]]:
        """The text as clauses of canonical tokens."""
        text = fold(text.translate(self._emoji_table))
        result: list[list[str]] = []
        for part in _CLAUSE_BREAK.split(text):
            tokens: list[str] = []
            for raw in _TOKEN.findall(part):
                token = self._canonical_token(raw)
                if not token:
                    continue
                rewritten = self.rewrites.get(token)
                if rewritten is not None:
                    tokens.extend(rewritten)
                else:
                    tokens.append(self._snap(token))
            if tokens:
                result.append(self._join(tokens) if self.joins else tokens)
        return result

    def _join(self, tokens: list[str]) -> list[str]:
        """Words split by voice typing or autocorrect ('kill my self', 'over dosed') become one again."""
        out: list[str] = []
        index = 0
        while index < len(tokens):
            for width in (3, 2):
                replacement = self.joins.get(tuple(tokens[index : index + width]))
                if replacement is not None:
                    out.extend(replacement)
                    index += width
                    break
            else:
                out.append(tokens[index])
                index += 1
        return out
