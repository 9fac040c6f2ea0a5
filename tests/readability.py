"""Reading level of patient texts, measured without extra packages (textstat is not installed).

English: Flesch-Kincaid grade level. Spanish: Fernández Huerta reading ease (Flesch adapted to Spanish;
70-80 is "fairly easy", about a 6th grade reader; higher is easier). Syllables are counted by rule (vowel
groups), which is close enough to compare texts and catch a hard one, not a linguist's count. Each line
(a bullet) counts as a sentence; numbers, phone numbers and web addresses count as one short word each.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\s]+")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_STRONG = set("aeoáéíóú")
_VOWELS = set("aeiouáéíóúü")


def _words(text: str) -> list[str]:
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if any(c.isdigit() for c in token) or "/" in token or ".org" in token or ".net" in token:
            words.append("a")  # a number or an address: one short word
            continue
        word = re.sub(r"[^A-Za-zÀ-ÿ'-]", "", token).strip("'-")
        if word:
            words.append(word.lower())
    return words


def _sentences(text: str) -> int:
    count = 0
    for line in text.splitlines():
        line = line.strip().lstrip("•-").strip()
        if not _words(line):
            continue
        count += max(1, len(_SENTENCE_END.findall(line)) + (0 if _SENTENCE_END.search(line[-1:]) else 1) - 1)
    return max(1, count)


def english_syllables(word: str) -> int:
    word = word.lower().replace("'", "")
    groups = re.findall(r"[aeiouy]+", word)
    count = len(groups)
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1  # a silent final e: "breathe", "side"
    return max(1, count)


def spanish_syllables(word: str) -> int:
    word = word.lower()
    if word.endswith("y") and len(word) > 1:  # "hoy", "muy": a final y sounds as a vowel
        word = word[:-1] + "i"
    count = 0
    previous = ""
    for c in word:
        if c in _VOWELS:
            if not previous or (previous in _STRONG and c in _STRONG):
                count += 1  # a new vowel group, or two strong vowels in a row (hiatus: "le-er")
            previous = c
        else:
            previous = ""
    return max(1, count)


def flesch_kincaid_grade(text: str) -> float:
    words = _words(text)
    syllables = sum(english_syllables(w) for w in words)
    return 0.39 * len(words) / _sentences(text) + 11.8 * syllables / len(words) - 15.59


def fernandez_huerta(text: str) -> float:
    words = _words(text)
    syllables = sum(spanish_syllables(w) for w in words)
    per_100_syllables = 100 * syllables / len(words)
    per_100_sentences = 100 * _sentences(text) / len(words)
    return 206.84 - 0.60 * per_100_syllables - 1.02 * per_100_sentences
