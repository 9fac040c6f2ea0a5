"""How a message that raises no risk sounds: a greeting, or a feeling put into words ("I'm so sad today").

The rules that page and send crisis lines are the lexicon's (`bot.risk.lexicon`); these only choose a kind
reply instead of "I didn't understand that" once the risk screen found nothing. The words are content
(`tone.greetings`, `tone.feelings`: comma-separated phrases, in each language), folded like everything the
risk screen reads (case, accents, look-alike letters), and matched as whole words.
"""

from __future__ import annotations

import enum
import re

from bot.risk.normalize import fold

_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc")  # "I'm", "I’m": one word, "im"
GREETING_MOST_WORDS = 5  # "hi", "good morning!", "hey there how are you": longer is more than a greeting


class Tone(enum.Enum):
    GREETING = "greeting"
    FEELING = "feeling"
    OTHER = "other"


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text).translate(_APOSTROPHES))


def phrases(listing: str) -> list[tuple[str, ...]]:
    """A comma-separated list of phrases from content, each as its words."""
    return [found for part in listing.split(",") if (found := tuple(words(part)))]


def _contains(said: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(said[i : i + size]) == phrase for i in range(len(said) - size + 1))


def tone_of(text: str, greetings: list[tuple[str, ...]], feelings: list[tuple[str, ...]]) -> Tone:
    """A feeling wins over a greeting ("hi, I feel so alone"); a greeting is a short message that has one."""
    said = words(text)
    if any(_contains(said, phrase) for phrase in feelings):
        return Tone.FEELING
    if len(said) <= GREETING_MOST_WORDS and any(_contains(said, phrase) for phrase in greetings):
        return Tone.GREETING
    return Tone.OTHER
