"""Turn what someone typed into canonical tokens, so one lexicon phrase matches the many ways it is written.

Steps, in order: emoji become words; Unicode is folded (invisible characters dropped, NFKC, look-alike
letters read as Latin, case, accents); the text is cut into clauses at punctuation; each token loses
leetspeak ("k1ll"), repeated letters ("sooo", "killll") and known misspellings or shorthand ("kms", "wanna",
"dont"); an unknown long token one edit away from a commonly misspelled lexicon word becomes that word.
The lexicon's own phrases go through the same steps, so both sides meet in the middle. Every layer of the
detector (lexicon rules, context rules and the model) reads these clauses, never the raw text.

Folding closes the ways a word can look the same and read differently (issue 17):
- Invisible characters inside a word ("k<zero-width space>ill") are dropped: every format character
  (Unicode category Cf: zero-width space and joiners, word joiner, soft hyphen, bidi marks, BOM, tags) and
  the other default-ignorable ones (combining grapheme joiner, variation selectors, Hangul fillers). A
  zero-width space typed *between* two words joins them, which is the price: nobody types one there.
- NFKC folds compatibility forms: fullwidth "ＫＩＬＬ", mathematical "𝐤𝐢𝐥𝐥", circled, superscript letters.
- Cyrillic and Greek letters that look like Latin ones (LOOKALIKES, a small explicit table; and Latin small
  capitals and dotless i, always) are read as the Latin letter, but only where the text says they stand
  in for Latin: in a word that mixes them with Latin letters ("kіll" with Cyrillic і, "хanax"), or in a word
  made only of look-alikes (the "і" of "і wаnt tо dіе") when the text's Latin letters outnumber those of
  its words written wholly in Cyrillic or Greek. Text written in Russian, Ukrainian or Greek is left as it
  is: mapped, "в соке" ("in juice") would read "b coke", a false alarm.
- Accents go, as before ("Mátame" is "matame"), after the look-alikes are read (Cyrillic "ё" is "e").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

_VARIATION = dict.fromkeys([0xFE0E, 0xFE0F, 0x200D], None)
_CLAUSE_BREAK = re.compile(r"[;?,:\n()\"“”«»¿¡…/]+|\.(?!\d)|!+(?=\s|$)|\s[-–—]+\s|\s+&\s+")
_TOKEN = re.compile(r"[a-z0-9@$!|'’#+%]+")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_SQUEEZE = re.compile(r"([a-z])\1+")
FUZZY_MIN = 6


# Default-ignorable code points that are not format characters (Cf is found by category below).
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement
)
_INVISIBLE: dict[int, None] = {
    code: None
    for code in chain(range(0x20000), range(0xE0000, 0xE1000))  # no Cf lies between
    if unicodedata.category(chr(code)) == "Cf"
}
_INVISIBLE.update((code, None) for low, high in _IGNORABLE_RANGES for code in range(low, high + 1))

# Cyrillic and Greek letters read as the Latin letter they look like, by case ("Н" is H, "н" is h; Greek "Η"
# is H, "η" is n). Only base letters: accents are separate here and dropped later.
LOOKALIKES = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y", "Һ": "H", "Ӏ": "I", "Ԁ": "D", "Ԛ": "Q",
    "Ԝ": "W",
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ь": "b", "ғ": "f", "і": "i", "ј": "j", "ѕ": "s", "ү": "y", "һ": "h",
    "ӏ": "l", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
}  # fmt: skip
# Latin letters NFKC keeps that stand for plain ones: small capitals ("ᴋɪʟʟ") and dotless i. Always read.
LATIN_VARIANTS = dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢıȷɑɡ", "abcdefghijklmnoprstuvwyzijag", strict=True))
_VARIANT_TABLE = str.maketrans(LATIN_VARIANTS)
_SUSPECTS = frozenset(LOOKALIKES) | frozenset(LATIN_VARIANTS)
# A word, with its accents (separate combining marks here): letters and digits ("к1ll" is one word).
_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0483-\u0489\u1dc0-\u1dff])+")


def _is_latin(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z") or unicodedata.name(char, "").startswith("LATIN")


def _is_greek_or_cyrillic(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CYRILLIC", "GREEK"))


def read_lookalikes(text: str) -> str:
    """Cyrillic and Greek look-alikes read as Latin where they stand in for it (see the module's docstring);
    `text` is decomposed (NFD), so accents are separate marks."""
    if _SUSPECTS.isdisjoint(text):
        return text
    text = text.translate(_VARIANT_TABLE)
    words = [m for m in _WORD.finditer(text) if not _SUSPECTS.isdisjoint(m.group())]
    if not words:
        return text
    latin = sum(1 for c in text if c.isalpha() and _is_latin(c))
    foreign = 0  # letters of words written wholly in Cyrillic or Greek
    for match in _WORD.finditer(text):
        letters = [c for c in match.group() if c.isalpha()]
        if letters and not any(_is_latin(c) for c in letters):
            foreign += sum(1 for c in letters if _is_greek_or_cyrillic(c))
    out: list[str] = []
    done = 0
    for match in words:
        word = match.group()
        letters = [c for c in word if c.isalpha()]
        mixed = any(_is_latin(c) for c in letters)
        disguised = all(c in LOOKALIKES for c in letters) and latin > foreign
        if mixed or disguised:
            out.append(text[done : match.start()])
            out.append("".join(LOOKALIKES.get(c, c) for c in word))
            done = match.end()
    out.append(text[done:])
    return "".join(out)


def fold(text: str) -> str:
    """Invisible characters dropped, compatibility forms, look-alike letters read as Latin, lower case and no
    accents: 'ＫＩＬＬ', 'k<zero-width space>ill' and 'kіll' (Cyrillic і) become 'kill'; 'Mátame' 'matame'."""
    if not text.isascii():  # (plain ASCII has none of these: most messages skip them)
        text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
        if not text.isascii():
            text = read_lookalikes(unicodedata.normalize("NFD", text))
    decomposed = unicodedata.normalize("NFD", text.casefold())
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

    def as_typed(self, text: str, tokens: Sequence[str], mark: str) -> str | None:
        """The shortest run of whole words in `text`, as the person typed them, that reads as `tokens` (the
        detector's words, clauses joined by `mark`): 'kil myself' in "I want to KILLL myself!" is
        "KILLL myself!". None if no run does (it cannot happen for tokens read from `text`)."""
        words = [m.span() for m in re.finditer(r"\S+", text)]
        wanted = list(tokens)
        found: str | None = None
        for first, (start, _) in enumerate(words):
            for _, end in words[first:]:
                read = [
                    t
                    for number, c in enumerate(self.clauses(text[start:end]))
                    for t in ([mark] * bool(number)) + c
                ]
                if any(read[i : i + len(wanted)] == wanted for i in range(len(read) - len(wanted) + 1)):
                    if found is None or end - start < len(found):
                        found = text[start:end]
                    break
        return found

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
