"""The normaliser: the many ways a message is typed become one set of canonical words."""

from __future__ import annotations

import pytest

from bot.risk.normalize import FUZZY_MIN, Normalizer, fold, squeeze, unleet

EMOJI = {"💊": "pill", "🔫": "gun", "😂": "lol"}
REWRITES = {
    "kms": "kill myself",
    "dont": "do not",
    "wanna": "want to",
    "im": "i am",
    "my self": "myself",
    "over dosed": "overdosed",
    "kill my elf": "kill myself",
}


def _normalizer(fuzzy: tuple[str, ...] = (), not_fuzzy: tuple[str, ...] = ()) -> Normalizer:
    """Built the way load_lexicon builds it: known words first, then the fuzzy targets."""
    normalizer = Normalizer.build(EMOJI, REWRITES)
    normalizer.know(t for w in not_fuzzy for c in normalizer.clauses(w) for t in c)
    normalizer.learn(t for w in fuzzy for c in normalizer.clauses(w) for t in c)
    return normalizer


def _words(normalizer: Normalizer, text: str) -> list[str]:
    return [t for clause in normalizer.clauses(text) for t in clause]


@pytest.fixture
def normalizer() -> Normalizer:
    return _normalizer(fuzzy=("suicide", "overdose", "fentanyl"), not_fuzzy=("overdone", "fentanil"))


# ---- fold --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("KILL", "kill"),
        ("ＫＩＬＬ", "kill"),  # fullwidth
        ("Mátame", "matame"),
        ("ÉCOLE", "ecole"),
        ("recaí", "recai"),
        ("Straße", "strasse"),
        ("ｋ１ｌｌ", "k1ll"),  # fullwidth digits become ASCII digits
        ("plain words", "plain words"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_folding_happens_in_clauses(normalizer: Normalizer) -> None:
    assert normalizer.clauses("ＫＩＬＬ MYSELF") == normalizer.clauses("kill myself")
    assert normalizer.clauses("Me TOMÉ todas") == [["me", "tome", "todas"]]


# ---- invisible characters and look-alike letters (issue 17) -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("k\u200bill", "kill"),  # zero-width space
        ("ki\u2060ll my\u00adself", "kill myself"),  # word joiner, soft hyphen
        ("k\u200c\u200di\ufeffll", "kill"),  # zero-width non-joiner and joiner, BOM
        ("\u202bkill\u202c \u200emyself\u200f", "kill myself"),  # bidi embedding and marks
        ("k\u034fi\ufe0fll", "kill"),  # combining grapheme joiner, variation selector
        ("𝐤𝐢𝐥𝐥 𝓂𝓎𝓈𝑒𝓁𝒻", "kill myself"),  # mathematical alphanumerics
        ("ᴋɪʟʟ", "kill"),  # small capitals
        ("kіll myself", "kill myself"),  # Cyrillic і
        ("КILL", "kill"),  # Cyrillic К
        ("fеntаnуl", "fentanyl"),  # Cyrillic е, а, у
        ("хanax", "xanax"),  # Cyrillic х
        ("ΚΙLL ΜΥSELF", "kill myself"),  # Greek Κ, Ι, Μ, Υ
        ("οverdοse", "overdose"),  # Greek ο
        ("к1ll", "k1ll"),  # a digit inside does not hide the mix
        ("і wаnt tо dіе", "i want to die"),  # "і" alone is all look-alike, in a Latin text
        ("mátаme", "matame"),  # Cyrillic а beside a Spanish accent
        ("rеcаí", "recai"),
    ],
)
def test_fold_reads_invisible_and_look_alike_letters(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("в соке", "в соке"),  # Russian "in juice": mapped it would read "b coke"
        ("Кто здесь", "кто здесь"),
        ("Καλημέρα, τι κάνεις", "καλημερα, τι κανεισ"),  # Greek keeps its letters (case-folded, so ς is σ)
        ("в соке ok", "в соке ok"),  # a Latin word does not make a Russian text Latin
        ("Ёжик", "ежик"),
    ],
)
def test_text_written_in_cyrillic_or_greek_is_left_as_it_is(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_invisible_and_look_alike_letters_meet_the_plain_words(normalizer: Normalizer) -> None:
    assert normalizer.clauses("k\u200bill my\u2060self") == normalizer.clauses("kill myself")
    assert normalizer.clauses("took fеntаnуl") == [["tok", "fentanyl"]]
    assert normalizer.clauses("took fеntаnl") == [["tok", "fentanyl"]]  # then snapped like any typo


# ---- leetspeak ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "plain"),
    [
        ("k1ll", "kill"),
        ("su1c1de", "suicide"),
        ("$uicide", "suicide"),
        ("k!ll", "kill"),
        ("h3ll0", "hello"),
        ("@lone", "alone"),
    ],
)
def test_unleet_reads_digits_as_letters(word: str, plain: str) -> None:
    assert unleet(word) == plain


@pytest.mark.parametrize("word", ["20mg", "4am", "30", "1234", "2nd", "hello", ""])
def test_unleet_leaves_numbers_and_plain_words_alone(word: str) -> None:
    assert unleet(word) == word


def test_leetspeak_in_a_message(normalizer: Normalizer) -> None:
    assert _words(normalizer, "k1ll") == ["kil"]
    assert _words(normalizer, "at 4am i took 20mg") == ["at", "4am", "i", "tok", "20mg"]


# ---- repeated letters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "squeezed"),
    [("killll", "kil"), ("kill", "kil"), ("kil", "kil"), ("sooo", "so"), ("noooo", "no"), ("abc", "abc")],
)
def test_squeeze(word: str, squeezed: str) -> None:
    assert squeeze(word) == squeezed


def test_repeated_letters_meet_the_single_spelling(normalizer: Normalizer) -> None:
    assert normalizer.clauses("KILLLLL myselfff") == normalizer.clauses("kill myself")
    assert normalizer.clauses("sooo tired") == [["so", "tired"]]


# ---- emoji -------------------------------------------------------------------------------------------------


def test_emoji_become_words(normalizer: Normalizer) -> None:
    assert _words(normalizer, "took 💊💊") == ["tok", "pil", "pil"]
    assert _words(normalizer, "🔫") == ["gun"]
    assert _words(normalizer, "relapsed😂") == ["relapsed", "lol"]


def test_emoji_variation_selectors_and_joiners_are_dropped(normalizer: Normalizer) -> None:
    assert _words(normalizer, "🔫\ufe0f") == ["gun"]
    assert normalizer.clauses("\u200d\ufe0f") == []


def test_unknown_emoji_are_nothing(normalizer: Normalizer) -> None:
    assert normalizer.clauses("🌈🌈") == []


# ---- rewrites and joins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kms", ["kil", "myself"]),
        ("KMS", ["kil", "myself"]),
        ("dont", ["do", "not"]),
        ("don't", ["do", "not"]),
        ("DON’T", ["do", "not"]),
        ("i wanna die", ["i", "want", "to", "die"]),
        ("im done", ["i", "am", "done"]),
    ],
)
def test_single_word_rewrites(normalizer: Normalizer, text: str, words: list[str]) -> None:
    assert _words(normalizer, text) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kill my self", ["kil", "myself"]),
        ("i want to kill my self", ["i", "want", "to", "kil", "myself"]),
        ("i over dosed", ["i", "overdosed"]),
        ("kill my elf", ["kil", "myself"]),  # three words
        ("my selfie", ["my", "selfie"]),
    ],
)
def test_multi_word_joins(normalizer: Normalizer, text: str, words: list[str]) -> None:
    assert _words(normalizer, text) == words


def test_joins_do_not_cross_clauses(normalizer: Normalizer) -> None:
    assert normalizer.clauses("my. self") == [["my"], ["self"]]


def test_build_splits_rewrites_into_words_and_joins() -> None:
    normalizer = Normalizer.build({}, {"kms": "kill myself", "my self": "myself"})
    assert normalizer.rewrites == {"kms": ("kil", "myself")}
    assert normalizer.joins == {("my", "self"): ("myself",)}


# ---- clauses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("i am fine. i want to die", [["i", "am", "fine"], ["i", "want", "to", "die"]]),
        ("ok, fine; really? yes! no", [["ok"], ["fine"], ["realy"], ["yes"], ["no"]]),
        ("first\nsecond", [["first"], ["second"]]),
        ("this - that", [["this"], ["that"]]),
        ("this — that", [["this"], ["that"]]),
        ("you & me", [["you"], ["me"]]),
        ("either/or", [["either"], ["or"]]),
        ("wait...what", [["wait"], ["what"]]),
        ('he said "stop" then', [["he", "said"], ["stop"], ["then"]]),
        ("¿qué? ¡no!", [["que"], ["no"]]),
        ("took 2.5 mg", [["tok", "2", "5", "mg"]]),  # a decimal point is not a full stop
        ("well-known", [["wel", "known"]]),  # a hyphen inside a word is not a dash
    ],
)
def test_clauses_split_at_punctuation(normalizer: Normalizer, text: str, clauses: list[list[str]]) -> None:
    assert normalizer.clauses(text) == clauses


@pytest.mark.parametrize("text", ["", "   ", "...", "!!!", "?!?", ", ; :", "—"])
def test_nothing_to_read(normalizer: Normalizer, text: str) -> None:
    assert normalizer.clauses(text) == []


# ---- fuzzy -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typo",
    ["sucide", "suicdie", "suiside", "suicidee", "SUCIDE", "overdse", "ovrdose", "fentanl", "fetanyl"],
)
def test_a_misspelled_long_word_snaps_to_a_fuzzy_target(normalizer: Normalizer, typo: str) -> None:
    snapped = _words(normalizer, typo)
    assert snapped in (["suicide"], ["overdose"], ["fentanyl"]), snapped


def test_not_fuzzy_words_are_never_snapped() -> None:
    plain = _normalizer(fuzzy=("overdose", "fentanyl"))
    assert _words(plain, "overdone") == ["overdose"]  # one edit away: snapped without the exception
    assert _words(plain, "fentanil") == ["fentanyl"]
    guarded = _normalizer(fuzzy=("overdose", "fentanyl"), not_fuzzy=("overdone", "fentanil"))
    assert _words(guarded, "overdone") == ["overdone"]
    assert _words(guarded, "the steak was overdone") == ["the", "steak", "was", "overdone"]
    assert _words(guarded, "fentanil") == ["fentanil"]
    assert _words(guarded, "overdse") == ["overdose"]  # other misspellings still snap


def test_know_guards_lexicon_words_too() -> None:
    normalizer = _normalizer(fuzzy=("relapsed",))
    assert _words(normalizer, "relapses") == ["relapsed"]
    normalizer.know(["relapses"])
    assert _words(normalizer, "relapses") == ["relapses"]


def test_fuzzy_leaves_short_far_and_non_alphabetic_words(normalizer: Normalizer) -> None:
    assert _words(normalizer, "sucid") == ["sucid"]  # too short
    assert _words(normalizer, "suicidal") == ["suicidal"]  # two edits away
    assert _words(normalizer, "sandwich") == ["sandwich"]
    assert _words(normalizer, "overdos3") == ["overdose"]  # leetspeak first, then exact
    assert _words(normalizer, "0verd0se") == ["0verd0se"]  # a leading digit reads as a number, like "4am"


def test_learn_ignores_short_and_non_alphabetic_targets() -> None:
    normalizer = Normalizer.build({}, {})
    normalizer.learn(["heroin", "meth", "m30s", "k2"])
    assert _words(normalizer, "heroine") == ["heroin"]
    assert _words(normalizer, "meths") == ["meths"]  # 'meth' is shorter than FUZZY_MIN
    assert len("meth") < FUZZY_MIN
