"""The shipped risk detector (content/*/risk/lexicon.yaml) on the messages it exists for, and on the ones
it must leave alone."""

from __future__ import annotations

import random
import re

import pytest

from bot.content_check.check import Report
from bot.risk import Category, Context, Detector, FollowUp, RiskLevel, Screening

IMMINENT, HIGH, MODERATE, NONE = RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.MODERATE, RiskLevel.NONE
CSSRS = FollowUp.CSSRS


@pytest.fixture(scope="module")
def detector(shipped_report: Report) -> Detector:
    """The rules alone (the lexicon and the context rules): the semantic layer has tests of its own."""
    assert shipped_report.risk is not None, shipped_report.errors
    return Detector(shipped_report.risk.lexicon)


@pytest.fixture(scope="module")
def with_layer(shipped_report: Report) -> Detector:
    assert shipped_report.risk is not None and shipped_report.risk.layer is not None, shipped_report.errors
    return shipped_report.risk


def _explain(result: Screening) -> str:
    return f"{result.level.label} {list(result.categories)} {result.follow_up}: {result.matched}"


# ---- imminent ----------------------------------------------------------------------------------------------

IMMINENT_CASES = [
    # plain intent, and the ways it is typed
    ("I want to kill myself", Category.SUICIDE),
    ("im going to kill myself tonight", Category.SUICIDE),
    ("k1ll myself", Category.SUICIDE),
    ("i want to k1ll myself", Category.SUICIDE),
    ("KILLLL MYSELF", Category.SUICIDE),
    ("sucide tonight", Category.SUICIDE),
    ("su1c1de tonight", Category.SUICIDE),
    ("kill my self", Category.SUICIDE),
    ("I want to kill my self tonight", Category.SUICIDE),
    ("gonna kms", Category.SUICIDE),
    ("i'm going to end it all", Category.SUICIDE),
    # farewells
    ("this is goodbye everyone", Category.SUICIDE),
    ("thank you for everything. goodbye", Category.SUICIDE),
    ("by the time you read this i'll be gone", Category.SUICIDE),
    # giving possessions away
    ("i've been giving my stuff away, won't need it", Category.SUICIDE),
    ("gave away all my stuff", Category.SUICIDE),
    ("who should get my guitar", Category.SUICIDE),
    ("please take care of my dog for me", Category.SUICIDE),
    # means
    ("the rope is ready", Category.SUICIDE),
    ("i bought a rope", Category.SUICIDE),
    ("gun in my lap", Category.SUICIDE),
    ("sitting here with the gun in my lap", Category.SUICIDE),
    ("🔫 in my lap", Category.SUICIDE),
    # pill counts
    ("took 30 xanax", Category.OVERDOSE),
    ("just took 30 xanax", Category.OVERDOSE),
    ("popped 20 percs", Category.OVERDOSE),
    ("took like 15 pills", Category.OVERDOSE),
    # an overdose happening to someone else is still an emergency
    ("my friend isn't breathing", Category.OVERDOSE),
    ("my friend isnt breathing after using", Category.OVERDOSE),
    ("my brother is not breathing", Category.OVERDOSE),
    ("his lips are turning blue", Category.OVERDOSE),
    # intent to harm someone
    ("i'm going to stab him when he gets home", Category.HARM_OTHERS),
    ("gonna kill my ex tonight", Category.HARM_OTHERS),
    ("i'm going to hurt him", Category.HARM_OTHERS),
    # Spanish
    ("quiero matarme", Category.SUICIDE),
    ("quiero matarme esta noche", Category.SUICIDE),
    ("me voy a suicidar", Category.SUICIDE),
    ("esta es mi despedida", Category.SUICIDE),
    ("me tomé todas las pastillas", Category.OVERDOSE),
    ("ME TOME TODAS LAS PASTILLAS", Category.OVERDOSE),
    ("mi amigo no respira", Category.OVERDOSE),
    ("lo voy a matar", Category.HARM_OTHERS),
]


@pytest.mark.parametrize(("text", "category"), IMMINENT_CASES, ids=[c[0] for c in IMMINENT_CASES])
def test_imminent(detector: Detector, text: str, category: Category) -> None:
    result = detector.screen(text)
    assert result.level is IMMINENT, _explain(result)
    assert category in result.categories, _explain(result)


@pytest.mark.parametrize(
    "text", ["I want to kill myself", "k1ll myself", "the rope is ready", "quiero matarme"]
)
def test_imminent_suicide_asks_the_cssrs(detector: Detector, text: str) -> None:
    assert detector.screen(text).follow_up is CSSRS


@pytest.mark.parametrize(
    "text", ["my friend isn't breathing", "his lips are turning blue", "mi amigo no respira"]
)
def test_an_overdose_to_someone_else_is_not_softened(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    overdose = [m for m in result.matches if m.category is Category.OVERDOSE]
    assert overdose, _explain(result)
    assert all(m.level is IMMINENT and Context.OTHER_PERSON not in m.context for m in overdose)


# ---- high --------------------------------------------------------------------------------------------------

HIGH_CASES = [
    ("i want to die", Category.SUICIDE, CSSRS),
    ("i wish i was dead", Category.SUICIDE, CSSRS),
    ("i wish i could go to sleep and not wake up", Category.SUICIDE, CSSRS),
    ("everyone would be better off without me", Category.SUICIDE, CSSRS),
    ("i'm just a burden to my family", Category.SUICIDE, CSSRS),
    ("me quiero morir", Category.SUICIDE, CSSRS),
    ("cut myself again last night", Category.SELF_HARM, None),
    ("i've been cutting again", Category.SELF_HARM, None),
    ("i relapsed", Category.RELAPSE, None),
    ("relapsed last night", Category.RELAPSE, None),
    ("i used again", Category.RELAPSE, None),
    ("i drank last night", Category.RELAPSE, None),
    ("recaí anoche", Category.RELAPSE, None),
    ("gonna get high tonight", Category.USE_PLAN, None),
    ("calling my dealer after work", Category.USE_PLAN, None),
    ("i'm going to drink tonight", Category.USE_PLAN, None),
    ("he hit me again", Category.DANGER, None),
    ("he hit me again and i'm scared to go home", Category.DANGER, None),
    ("my husband hit me", Category.DANGER, None),
    ("i don't feel safe at home", Category.DANGER, None),
]


@pytest.mark.parametrize(("text", "category", "follow_up"), HIGH_CASES, ids=[c[0] for c in HIGH_CASES])
def test_high(detector: Detector, text: str, category: Category, follow_up: FollowUp | None) -> None:
    result = detector.screen(text)
    assert result.level is HIGH, _explain(result)
    assert category in result.categories, _explain(result)
    assert result.follow_up is follow_up, _explain(result)


# ---- moderate ----------------------------------------------------------------------------------------------

MODERATE_CASES = [
    ("cravings are insane today", Category.CRAVING, None),
    ("i'm craving so bad", Category.CRAVING, None),
    ("i really want a drink", Category.CRAVING, None),
    ("i'm so triggered right now", Category.CRAVING, None),
    ("tengo muchas ganas de beber", Category.CRAVING, None),
    ("i feel so hopeless", Category.HOPELESS, None),
    ("what's the point of any of this", Category.HOPELESS, None),
    ("I don't see a way forward", Category.HOPELESS, CSSRS),
    ("i can't go on like this", Category.HOPELESS, CSSRS),
    ("no way out", Category.HOPELESS, CSSRS),
]


@pytest.mark.parametrize(
    ("text", "category", "follow_up"), MODERATE_CASES, ids=[c[0] for c in MODERATE_CASES]
)
def test_moderate(detector: Detector, text: str, category: Category, follow_up: FollowUp | None) -> None:
    result = detector.screen(text)
    assert result.level is MODERATE, _explain(result)
    assert category in result.categories, _explain(result)
    assert result.follow_up is follow_up, _explain(result)


# ---- none: the context says it is not a risk ---------------------------------------------------------------

NONE_CASES = [
    ("I have no plan to hurt myself", Context.NEGATED),
    ("I'm not going to drink tonight", Context.NEGATED),
    ("back in 2019 I drank every day", Context.PAST),
    ("i used to cut when i was 15", None),
    ("my cousin relapsed", Context.OTHER_PERSON),
    ("mi primo recayó", None),
    ("this heat is murdering me", None),
    ("I'd kill for a burger", None),
    ("dying to go on vacation", None),
    ("my feet are killing me", None),
    ("took my suboxone as prescribed", None),
    ("took my suboxone as prescribed this morning", None),
    ("had a drink of water", Context.HYPERBOLE),
    ("had a drink of water and went to bed", None),
    ("the steak was overdone", None),
    ("high school reunion is next week", None),
    ("me muero de hambre", None),
]


@pytest.mark.parametrize(("text", "context"), NONE_CASES, ids=[c[0] for c in NONE_CASES])
def test_none(detector: Detector, text: str, context: Context | None) -> None:
    result = detector.screen(text)
    assert result.level is NONE, _explain(result)
    assert result.categories == ()
    assert result.follow_up is None
    if context is not None:  # the lexicon did match: the context rule is what lowered it
        assert result.matches and all(context in m.context for m in result.matches), _explain(result)


# ---- imminent is never silenced ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("I'm not going to kill myself", Context.NEGATED),
        ("i would never kill myself", Context.NEGATED),
        ("gonna kms lol", Context.HUMOR),
        ("gonna kms 😂", Context.HUMOR),
    ],
)
def test_imminent_softened_is_asked_about(detector: Detector, text: str, context: Context) -> None:
    result = detector.screen(text)
    assert result.level is MODERATE, _explain(result)
    assert Category.SUICIDE in result.categories
    assert result.follow_up is CSSRS
    suicide = [m for m in result.matches if m.category is Category.SUICIDE]
    assert suicide and all(m.lexicon_level is IMMINENT for m in suicide)
    assert all(context in m.context and m.level is MODERATE for m in suicide), _explain(result)
    assert any(context.value in line for line in result.matched)


def test_a_longer_phrase_holding_an_idiom_wins(detector: Detector) -> None:
    result = detector.screen("i'd kill for a drink")
    assert result.level is MODERATE, _explain(result)
    assert result.categories == (Category.CRAVING,)
    # the phrase holding the whole idiom is not softened (a shorter one inside it may be)
    assert any(Context.HYPERBOLE not in m.context for m in result.matches if m.category is Category.CRAVING)


def test_kill_for_a_drink_without_the_would_is_a_craving(detector: Detector) -> None:
    result = detector.screen("honestly kill for a drink right now")
    assert result.level is MODERATE, _explain(result)
    assert Category.CRAVING in result.categories


@pytest.mark.parametrize("text", ["relapsed lol", "i relapsed lmao", "relapsed 😂"])
def test_a_joke_does_not_soften_substance_talk(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    assert result.level is HIGH, _explain(result)
    assert result.categories == (Category.RELAPSE,)
    assert all(Context.HUMOR not in m.context for m in result.matches)


def test_a_phrase_does_not_span_two_sentences(detector: Detector) -> None:
    result = detector.screen("fixed the roof, proud of myself")
    assert result.level < HIGH, _explain(result)


# ---- robustness --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", " ", "\n\n", "😂😂😂", "🌈✨🙏", "💊💊💊", "!!!???...", "...", "—", ",;:", "\u200d\ufe0f", "\x00"],
)
def test_nothing_to_screen(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    assert result.level is NONE
    assert result.matched == [] and result.categories == ()


FILLER = "today was a normal day at work and group went fine. "


def test_a_long_text_is_screened_whole(detector: Detector) -> None:
    half = FILLER * (10_000 // len(FILLER))
    text = (half + "i relapsed last night. " + half + FILLER * 3)[:20_000]
    assert len(text) == 20_000
    assert "relapsed" in text
    result = detector.screen(text)
    assert result.level is HIGH, _explain(result)
    assert Category.RELAPSE in result.categories
    assert detector.screen(FILLER * 400).level is NONE


def test_a_long_text_of_one_word(detector: Detector) -> None:
    assert detector.screen("a" * 20_000).level is NONE
    assert detector.screen("k1ll " * 4_000).level is NONE


def test_random_unicode_never_raises(detector: Detector) -> None:
    rng = random.Random(20261123)
    planes = [
        (0x20, 0x7F),
        (0xA0, 0x2FF),
        (0x300, 0x36F),
        (0x590, 0x6FF),
        (0x2000, 0x206F),
        (0x1F300, 0x1FAFF),
    ]
    for _ in range(300):
        chars = []
        for _ in range(rng.randrange(0, 120)):
            low, high = rng.choice(planes)
            chars.append(chr(rng.randrange(low, high)))
        result = detector.screen("".join(chars))
        assert isinstance(result, Screening)
    assert isinstance(detector.screen("".join(chr(c) for c in range(0x20, 0x3000))), Screening)


# ---- the Screening -----------------------------------------------------------------------------------------

DESCRIPTION = re.compile(r"^[a-z_]+/(imminent|high|moderate): '[^']+' ~ '.+'( \([a-z_]+(, [a-z_]+)*\))?$")


@pytest.mark.parametrize(
    "text", ["I want to kill myself", "I'm not going to kill myself", "my cousin relapsed", "took 30 xanax"]
)
def test_matched_is_readable(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    assert result.matched == [m.describe() for m in result.matches]
    assert result.matched
    for line in result.matched:
        assert DESCRIPTION.match(line), line


def test_matched_names_category_level_words_pattern_and_context(detector: Detector) -> None:
    result = detector.screen("I'm not going to kill myself")
    line = next(m for m in result.matched if m.startswith("suicide/"))
    assert line.startswith("suicide/imminent: 'kil myself' ~ '")
    assert line.endswith(" (negated)")


def test_matches_are_ordered_most_serious_first(detector: Detector) -> None:
    result = detector.screen("took 30 xanax")
    levels = [(m.level, m.lexicon_level) for m in result.matches]
    assert levels == sorted(levels, reverse=True)
    assert result.matches[0].category is Category.OVERDOSE


def test_categories_are_those_of_the_top_level_matches(detector: Detector) -> None:
    both = detector.screen("i relapsed last night and i want to die")
    assert both.level is HIGH
    assert set(both.categories) == {Category.SUICIDE, Category.RELAPSE}
    assert both.follow_up is CSSRS

    mixed = detector.screen("i relapsed and the cravings are bad")
    assert mixed.level is HIGH
    assert mixed.categories == (Category.RELAPSE,)  # the moderate craving is a match, not a category
    assert any(m.category is Category.CRAVING for m in mixed.matches)

    for text in ("took 30 xanax", "I want to kill myself", "i want to die", "cravings are insane today"):
        result = detector.screen(text)
        top = {m.category for m in result.matches if m.level == result.level}
        assert set(result.categories) == top, _explain(result)
        assert len(result.categories) == len(set(result.categories))


def test_a_screening_is_repeatable(detector: Detector) -> None:
    assert detector.screen("took 30 xanax") == detector.screen("took 30 xanax")


@pytest.mark.parametrize(
    ("text", "level"),
    [("he estado quemándome los brazos", RiskLevel.HIGH), ("he pensado en matarme", RiskLevel.IMMINENT)],
)
def test_spanish_he_is_i_have_not_english_he(detector: Detector, text: str, level: RiskLevel) -> None:
    """All languages' lexicons screen every message: English "he" must not make Spanish "he" (I have)
    someone else's story."""
    assert detector.screen(text).level is level


def test_english_he_is_still_someone_else(detector: Detector) -> None:
    assert detector.screen("he started cutting again").level is RiskLevel.NONE


# ---- phrase families added from the blind set's misses (new wordings, not its sentences) -------------------

FAMILY_CASES = [
    # suicide: at a high place deciding, fumes in a closed garage, enough to die, a farewell note, a will
    ("been standing on the ledge of the parking garage deciding", IMMINENT, Category.SUICIDE),
    ("pulled over on the overpass, not going back home", IMMINENT, Category.SUICIDE),
    ("truck's running inside the garage, door is shut", IMMINENT, Category.SUICIDE),
    ("got enough dope stashed to not wake up", IMMINENT, Category.SUICIDE),
    ("holding the blade to my wrist", IMMINENT, Category.SUICIDE),
    ("when my mom finds this i love you and i'm sorry", IMMINENT, Category.SUICIDE),
    ("my will is signed and in the drawer", IMMINENT, Category.SUICIDE),
    ("today i'm ending it all", IMMINENT, Category.SUICIDE),
    ("won't be around to take care of him", IMMINENT, Category.SUICIDE),
    ("nighty night forever", IMMINENT, Category.SUICIDE),
    ("ya tengo la soga y las pastillas, adiós", IMMINENT, Category.SUICIDE),
    ("estoy sentada en la azotea decidiendo", IMMINENT, Category.SUICIDE),
    # overdose: voice typing, no answer to a shake, a dose after lost tolerance, a pressed pill
    ("he snot breathing", IMMINENT, Category.OVERDOSE),
    ("her face is turning blew", IMMINENT, Category.OVERDOSE),
    ("he won't respond even when we shake him", IMMINENT, Category.OVERDOSE),
    ("used the same as before like i still had my tolerance", IMMINENT, Category.OVERDOSE),
    ("breathing feels so slow and i'm nodding", IMMINENT, Category.OVERDOSE),
    ("i think they're fent", IMMINENT, Category.OVERDOSE),
    ("tiene los labios azules y no reacciona cuando lo muevo", IMMINENT, Category.OVERDOSE),
    # harm to others: a car, fire, a baby, "end him"
    ("swear i'll run him over with my car", IMMINENT, Category.HARM_OTHERS),
    ("gonna set fire to her trailer", IMMINENT, Category.HARM_OTHERS),
    ("going to torch the house while they're asleep inside", IMMINENT, Category.HARM_OTHERS),
    ("afraid i'm going to shake my newborn", IMMINENT, Category.HARM_OTHERS),
    ("ready to off him", IMMINENT, Category.HARM_OTHERS),
    ("la voy a atropellar", IMMINENT, Category.HARM_OTHERS),
    # passive ideation
    ("why am i even still breathing", HIGH, Category.SUICIDE),
    ("would be so easy to just disappear", NONE, None),  # no "how": a thought, not said as a wish
    ("how easy it would be to just let go", HIGH, Category.SUICIDE),
    ("if i died tonight it wouldn't be so bad", HIGH, Category.SUICIDE),
    ("hoping the booze finishes me", HIGH, Category.SUICIDE),
    ("my kids would be okay without me", HIGH, Category.SUICIDE),
    # self-harm, relapse, plans, danger
    ("slammed my fingers in the drawer because i deserved it", HIGH, Category.SELF_HARM),
    ("scratched his initials into my forearm", HIGH, Category.SELF_HARM),
    ("finished a whole bottle of rum last night", HIGH, Category.RELAPSE),
    ("took a hit off her joint at the party", HIGH, Category.RELAPSE),
    ("been drunk every single night", HIGH, Category.RELAPSE),
    ("gonna by a bag of dope after work", HIGH, Category.USE_PLAN),
    ("my connect is coming by at 9", HIGH, Category.USE_PLAN),
    ("heading to the park to get high", HIGH, Category.USE_PLAN),
    ("ordering a couple xans online", HIGH, Category.USE_PLAN),
    ("he says he'll shoot me if i ever leave", HIGH, Category.DANGER),
    ("my stepdad aimed his rifle at me", HIGH, Category.DANGER),
    ("owe the plug and now they know where my family lives", HIGH, Category.DANGER),
    ("me amenazó que me va a matar si lo denuncio", HIGH, Category.DANGER),
    # moderate: craving cues and hopelessness
    ("walked past my old dealers house and my mouth watered", MODERATE, Category.CRAVING),
    ("the urges keep getting stronger", MODERATE, Category.CRAVING),
    ("my first thought was to get drunk", MODERATE, Category.CRAVING),
    ("they keep passing me beers, hard to say no", MODERATE, Category.CRAVING),
    ("i nearly relapsed", MODERATE, Category.CRAVING),
    ("i have nothing to lose", MODERATE, Category.HOPELESS),
    ("can't see myself ever getting better", MODERATE, Category.HOPELESS),
    ("todo me sale mal", MODERATE, Category.HOPELESS),
]


@pytest.mark.parametrize(("text", "level", "category"), FAMILY_CASES, ids=[c[0] for c in FAMILY_CASES])
def test_phrase_families(detector: Detector, text: str, level: RiskLevel, category: Category | None) -> None:
    result = detector.screen(text)
    assert result.level is level, _explain(result)
    if category is not None:
        assert category in result.categories, _explain(result)


FIXED_FALSE_ALARMS = [
    "nobody would notice if I dyed my hair blue",
    "almost relapsed at the wedding but my sponsor called",
    "the video covered relapse warning signs",
    "does the self harm questionnaire go to my doctor",
    "that overdose awareness walk was great",
    "my run went fine, drank a whole bottle of water after",
    "my daughter is fine without me for one night",
    "we drove over the bridge on the way to the beach, last time we went was june",
    "can you run it over to the clinic for me",
    "he doesn't answer when i call, so annoying",
    "my kid pointed his nerf gun at me",
    "drank a whole bottle of lemonade at the picnic",
    "nadie notaría si me pinto el pelo",
    "hablamos de la prevención del suicidio en el grupo",
]


@pytest.mark.parametrize("text", FIXED_FALSE_ALARMS)
def test_fixed_false_alarms_stay_below_high(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    assert result.level < HIGH, _explain(result)


@pytest.mark.parametrize(
    "text",
    [
        "in group we learned the signs of an overdose: blue lips, gurgling",
        "saying my goodbyes at graduation tomorrow",
    ],
)
def test_lesson_talk_of_an_emergency_is_asked_about_not_dropped(detector: Detector, text: str) -> None:
    """Imminent words in a lesson or a graduation are softened to a question, never silenced."""
    result = detector.screen(text)
    assert result.level is MODERATE, _explain(result)
    assert result.follow_up is not None
    assert any(m.lexicon_level is IMMINENT and Context.HYPERBOLE in m.context for m in result.matches)


@pytest.mark.parametrize("text", ["cut my thigh again last night lol", "burned myself with a lighter 😂"])
def test_a_laugh_does_not_soften_a_self_harm_disclosure(detector: Detector, text: str) -> None:
    result = detector.screen(text)
    assert result.level is HIGH, _explain(result)
    assert Category.SELF_HARM in result.categories
    assert all(Context.HUMOR not in m.context for m in result.matches if m.category is Category.SELF_HARM)


def test_spanish_he_does_not_undo_a_negation(detector: Detector) -> None:
    """In "nunca he pensado en suicidarme" the "he" (I have) after "nunca" is no new subject."""
    result = detector.screen("nunca he pensado en suicidarme")
    assert result.level is MODERATE, _explain(result)  # imminent words, negated: asked about, not paged
    assert all(Context.NEGATED in m.context for m in result.matches)


# ---- invisible characters and look-alike letters (issue 17) -----------------------------------------------

DISGUISED = [
    ("I want to k\u200bill myself", "I want to kill myself"),  # zero-width space
    ("I want to ki\u2060ll my\u00adself", "I want to kill myself"),  # word joiner, soft hyphen
    ("I want to kіll myself", "I want to kill myself"),  # Cyrillic і
    ("I want to 𝐤𝐢𝐥𝐥 myself", "I want to kill myself"),
    ("ΚΙLL ΜΥSELF", "KILL MYSELF"),  # Greek capitals
    ("і wаnt tо dіе", "i want to die"),
    ("just took 30 хanax", "just took 30 xanax"),  # Cyrillic х
    ("i used fеntаnуl today", "i used fentanyl today"),  # Cyrillic е, а, у
    ("used cоkе last night", "used coke last night"),
    ("me quiero ma\u200btar", "me quiero matar"),
    ("quiero mаtаrme", "quiero matarme"),  # Cyrillic а in Spanish
]


@pytest.mark.parametrize(("disguised", "plain"), DISGUISED, ids=[p for _, p in DISGUISED])
def test_invisible_and_look_alike_letters_do_not_lower_a_message(
    detector: Detector, disguised: str, plain: str
) -> None:
    expected = detector.screen(plain)
    assert expected.level >= HIGH, _explain(expected)
    result = detector.screen(disguised)
    assert (result.level, result.categories, result.follow_up) == (
        expected.level,
        expected.categories,
        expected.follow_up,
    ), _explain(result)


def test_the_semantic_layer_reads_the_same_words_too(with_layer: Detector) -> None:
    plain = with_layer.screen("permanent nap tonight 💊💊💊 night yall")
    assert plain.rules_only().level is NONE and plain.semantic is not None, _explain(plain)
    disguised = with_layer.screen("реrmanеnt n\u200bар tоnight 💊💊💊 night yall")
    assert disguised.semantic is not None, _explain(disguised)
    assert disguised.semantic.imminent == pytest.approx(plain.semantic.imminent)
    assert disguised.semantic.risk == pytest.approx(plain.semantic.risk)
    assert (disguised.level, disguised.follow_up) == (plain.level, plain.follow_up)


# ---- context reading: negation, the past, someone else's story (rules' false pages on the corpus) ---------

SOFTENED = [
    # a negation reaches across "any thoughts of ... or ...", and a "not" inside a phrase's gap negates it
    ("no thoughts of suicide or self harm this week", NONE, Context.NEGATED),
    ("i have not had any thoughts of killing myself", MODERATE, Context.NEGATED),
    ("no he tenido pensamientos de hacerme dano", NONE, Context.NEGATED),
    ("didn't use any meth at the party", NONE, Context.NEGATED),
    # a no after the words, or a denial before them
    ("suicidal no, just tired", NONE, Context.NEGATED),
    ("any thoughts of self harm? no", NONE, Context.NEGATED),
    ("para nada quiero matarme", MODERATE, Context.NEGATED),
    # an offer turned down
    ("had a drink offered to me twice and turned it down", NONE, Context.NEGATED),
    # the past: a sentence after that dates it, years in words, Spanish ages and school years
    ("i overdosed in my car. that was 9 years ago", MODERATE, Context.PAST),
    ("hace tres años me tome un frasco de pastillas", MODERATE, Context.PAST),
    ("cuando tenia 17 me cortaba", NONE, Context.PAST),
    # someone's someone, and a "my" that says whose it is
    ("my neighbor's kid relapsed", NONE, Context.OTHER_PERSON),
    ("a guy from my old job relapsed", NONE, Context.OTHER_PERSON),
    # an overdose to someone else that is over, or told from the news: not the patient's, not now, so the
    # rules do not ask "are you safe right now?" (the semantic layer still may)
    ("my uncle overdosed last month, he is stable now", NONE, Context.OTHER_PERSON),
    ("mi primo tuvo una sobredosis la semana pasada, ya esta estable", NONE, Context.OTHER_PERSON),
    ("on the news a man had a seizure at the mall", NONE, Context.OTHER_PERSON),
]


@pytest.mark.parametrize(("text", "level", "context"), SOFTENED, ids=[c[0] for c in SOFTENED])
def test_context_softens(detector: Detector, text: str, level: RiskLevel, context: Context) -> None:
    result = detector.screen(text)
    assert result.level is level, _explain(result)
    assert result.matches and all(context in m.context for m in result.matches), _explain(result)
    if level is MODERATE:  # imminent words are asked about, never dropped
        assert result.follow_up is not None


STILL_PAGED = [
    # someone else's emergency now
    ("my cousin overdosed and isnt breathing", IMMINENT),
    ("my friend overdosed last night", IMMINENT),
    ("we were watching a movie and she stopped breathing", IMMINENT),
    ("mi primo tuvo una sobredosis y no respira", IMMINENT),
    # "last week" is recent for oneself; the earlier days count only for someone else's emergency
    ("i relapsed last week", HIGH),
    # the reach of a negation does not cross other words
    ("never been so close to killing myself", IMMINENT),
    ("nunca he sentido tantas ganas de matarme", IMMINENT),
    # a no before using is no refusal of it; a later sentence that does not date it does not make it past
    ("i said no at first but then i used meth", HIGH),
    ("i relapsed. 2 years of sobriety gone", HIGH),
    # a "not" in the next sentence is no denial of the one before
    ("sleeping in my car tonight. not safe at the house with my brother like this", HIGH),
    # a possessive names a thing, not a person
    ("got dads old shotgun out and loaded it", IMMINENT),
    ("is 40 of my moms sleeping pills enough to kill someone", IMMINENT),
]


@pytest.mark.parametrize(("text", "level"), STILL_PAGED, ids=[c[0] for c in STILL_PAGED])
def test_context_does_not_soften_a_present_risk(detector: Detector, text: str, level: RiskLevel) -> None:
    result = detector.screen(text)
    assert result.level is level, _explain(result)
