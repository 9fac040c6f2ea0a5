"""A reported use, tiered: what decides whether the care team is paged now or flagged for the next business
day, and which harm-reduction advice fits (issue 18, items 9 and 10).

High (a page): opioids or fentanyl, using alone, injecting, or mixing with benzodiazepines or alcohol. Any
other use is a next-business-day flag. When it is not known whether opioids were involved (nothing named, "I
relapsed", unknown pills, "more than one"), it counts as high: a missed overdose costs more than a page.

Words are matched after the risk normaliser (case, accents, repeated letters, shorthand), English and
Spanish together, as the lexicon is. Nothing here knows about Telegram.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.risk.normalize import Normalizer


class Substance(enum.StrEnum):
    OPIOID = "opioid"
    ALCOHOL = "alcohol"
    BENZO = "benzo"
    STIMULANT = "stimulant"
    CANNABIS = "cannabis"
    OTHER = "other"
    SEVERAL = "several"  # "more than one", not said which
    UNKNOWN_PILLS = "pills"  # pills of unknown kind: may be pressed with fentanyl


# The check-in's "What did you use?" buttons, in order (each a Substance; a typed answer is read instead).
CHOICES = (
    Substance.OPIOID,
    Substance.ALCOHOL,
    Substance.BENZO,
    Substance.STIMULANT,
    Substance.CANNABIS,
    Substance.SEVERAL,
    Substance.OTHER,
)
# Reading these alone cannot rule opioids out.
UNSURE = frozenset({Substance.OPIOID, Substance.SEVERAL, Substance.UNKNOWN_PILLS})
MIXING_RISK = frozenset({Substance.ALCOHOL, Substance.BENZO})


class Tier(enum.StrEnum):
    HIGH = "high"  # paged now
    FLAG = "flag"  # a care-team flag for the next business day


@dataclass(frozen=True)
class UseReport:
    substances: frozenset[Substance] = frozenset()
    alone: bool = False
    injected: bool = False

    @property
    def tier(self) -> Tier:
        if not self.substances or self.substances & UNSURE or self.alone or self.injected:
            return Tier.HIGH
        if len(self.substances) > 1 and self.substances & MIXING_RISK:
            return Tier.HIGH
        return Tier.FLAG

    @property
    def needs_how(self) -> bool:
        """Whether asking "alone? injected?" could still change the tier (it is a flag so far)."""
        return self.tier is Tier.FLAG

    def as_json(self) -> dict[str, object]:
        return {
            "substances": sorted(self.substances),
            "alone": self.alone,
            "injected": self.injected,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> UseReport | None:
        if not data:
            return None
        raw = data.get("substances")
        names = [str(s) for s in raw] if isinstance(raw, list) else []
        known = {s.value for s in Substance}
        return cls(
            frozenset(Substance(n) for n in names if n in known),
            alone=bool(data.get("alone")),
            injected=bool(data.get("injected")),
        )


def asks_how(used: bool | None, report: UseReport | None) -> bool:
    """Whether "Were you alone, or did you inject?" follows "What did you use?": a use was reported, what was
    used is known, and the answer could still raise the tier (daily and aftercare check-ins)."""
    return used is True and report is not None and report.needs_how


class Advice(enum.StrEnum):
    """Harm-reduction paragraphs (content keys `use.advice.<name>`), in the order they are shown."""

    TOLERANCE = "tolerance"  # after time without using, the old amount can kill
    NOT_ALONE = "not_alone"  # don't use alone; Never Use Alone
    NALOXONE = "naloxone"  # carry naloxone; over the counter
    TEST_STRIPS = "test_strips"  # fentanyl test strips
    WITHDRAWAL = "withdrawal"  # alcohol or benzodiazepines: stopping can be dangerous


DEPRESSANTS = frozenset({Substance.OPIOID, Substance.ALCOHOL, Substance.BENZO}) | UNSURE
DRUGS = frozenset({Substance.OPIOID, Substance.BENZO, Substance.STIMULANT, Substance.OTHER}) | UNSURE


def advice_for(report: UseReport) -> list[Advice]:
    """What to tell the patient, by what was used. Nothing named counts as anything (unsure)."""
    used = report.substances or frozenset(UNSURE)
    chosen: list[Advice] = []
    if used & DEPRESSANTS:
        chosen.append(Advice.TOLERANCE)
    if used & (DRUGS - {Substance.OTHER}) or report.alone or report.injected:
        chosen.append(Advice.NOT_ALONE)
    if used & (DRUGS - {Substance.OTHER}):
        chosen.append(Advice.NALOXONE)
    if used & DRUGS:
        chosen.append(Advice.TEST_STRIPS)
    if used & {Substance.ALCOHOL, Substance.BENZO}:
        chosen.append(Advice.WITHDRAWAL)
    return chosen


# ---- reading typed words ---------------------------------------------------------------------------------

WORDS: dict[Substance, tuple[str, ...]] = {
    Substance.OPIOID: (
        "heroin", "dope", "smack", "fent", "fentanyl", "fetty", "fenty", "oxy", "oxys", "oxies",
        "oxycodone", "oxycontin", "perc", "percs", "percocet", "percocets", "vicodin", "hydros",
        "hydrocodone", "norco", "norcos", "roxy", "roxys", "roxies", "roxi", "blues", "m30", "m30s",
        "dilaudid", "opana", "tramadol", "codeine", "morphine", "lean", "methadone", "suboxone", "subs",
        "bupe", "buprenorphine", "opioid", "opioids", "opiate", "opiates", "pain pills", "painkillers",
        "pressies", "pressed", "kratom", "nodding", "nodding out", "the nod", "tranq", "xylazine",
        # Spanish
        "heroina", "chiva", "tecata", "fentanilo", "fenta", "opioides", "opiaceos", "oxicodona",
        "morfina", "metadona", "codeina", "pastillas para el dolor", "calmantes",
    ),
    Substance.ALCOHOL: (
        "alcohol", "booze", "liquor", "beer", "beers", "wine", "vodka", "whiskey", "tequila", "rum", "gin",
        "drink", "drinks", "drank", "drinking", "drunk", "shots", "a fifth", "a pint", "a forty", "a 40",
        "hammered", "buzzed", "tipsy", "hungover", "hangover", "12 pack", "six pack", "30 rack", "bottle",
        "cocktail", "cocktails", "margarita", "margaritas", "seltzer", "seltzers", "bender",
        # Spanish
        "cerveza", "cervezas", "chela", "chelas", "cheve", "cheves", "vino", "ron", "licor", "trago",
        "tragos", "copa", "copas", "borracho", "borracha", "emborrache", "bebi", "tome", "pisto", "guaro",
    ),
    Substance.BENZO: (
        "xan", "xans", "xanax", "xanny", "xannies", "benzo", "benzos", "klonopin", "kpin",
        "kpins", "valium", "ativan", "clonazepam", "alprazolam", "lorazepam", "diazepam", "rivotril",
        "benzodiazepine", "benzodiazepines", "benzodiacepinas", "roches",
    ),
    Substance.STIMULANT: (
        "coke", "cocaine", "crack", "meth", "crystal", "tina", "ice", "speed", "adderall", "addy",
        "addies", "molly", "mdma", "ecstasy", "blow", "yay", "uppers", "amphetamine", "amphetamines",
        # Spanish
        "cocaina", "coca", "perico", "cristal", "piedra", "metanfetamina", "tacha", "tachas",
    ),
    Substance.CANNABIS: (
        "weed", "pot", "joint", "joints", "blunt", "blunts", "dab", "dabs", "bong", "bowl", "spliff",
        "edible", "edibles", "thc", "cannabis", "marijuana", "kush", "cart", "carts", "vape pen",
        # Spanish
        "mota", "marihuana", "porro", "porros", "churro", "hierba", "yerba",
    ),
    Substance.OTHER: (
        "acid", "lsd", "shrooms", "mushrooms", "ketamine", "special k", "spice", "k2", "gabapentin",
        "gabbies", "lyrica", "soma", "somas", "poppers", "inhalants", "huffed",
        # Spanish
        "acido", "hongos", "ketamina", "inhalantes",
    ),
    Substance.UNKNOWN_PILLS: (
        "pill", "pills", "tablet", "tablets", "pastilla", "pastillas", "someone elses meds",
    ),
}  # fmt: skip
ALONE = (
    "alone", "by myself", "on my own", "no one around", "nobody around", "no one with me",
    "nobody with me", "no one was there", "nobody was there", "nobody else", "no one else",
    "sola", "a solas", "yo solo", "estaba solo", "estaba sola", "solo en casa", "sola en casa",
    "solito", "solita", "por mi cuenta", "sin nadie",
)  # fmt: skip
INJECTED = (
    "shot up", "shoot up", "shooting up", "inject", "injected", "injecting", "needle", "needles",
    "a rig", "slammed", "slamming", "iv", "banged", "inyecte", "inyecto", "inyectar", "inyectando",
    "inyectado", "inyectada", "jeringa", "jeringas", "aguja", "agujas", "me pique",
)  # fmt: skip
NOT_ALONE = ("not", "never", "no", "nunca", "wasnt")


class Withdrawal(enum.StrEnum):
    """Typed signs after use or after stopping (content keys `use.withdrawal.<name>`)."""

    DANGEROUS = "dangerous"  # alcohol or benzodiazepine withdrawal signs: medical care, 911
    DOPE_SICK = "dope_sick"  # opioid withdrawal: the clinic, medication
    MISSED_DOSE = "missed_dose"  # a missed or run-out buprenorphine or methadone dose: a flag


SIGNS = (
    "shaking", "shakes", "the shakes", "shaky", "tremors", "trembling", "seizure", "seizures", "confused",
    "confusion", "hallucinating", "seeing things", "hearing things", "the dts", "dts", "sweating",
    "temblando", "temblores", "tiemblo", "convulsion", "convulsiones", "confundido", "confundida",
    "alucinando", "sudando",
)  # fmt: skip
STOPPED = (
    "withdrawal", "withdrawals", "withdrawing", "detox", "detoxing", "stopped drinking", "quit drinking",
    "no drink", "not had a drink", "have not had a drink", "not drinking", "without a drink",
    "stopped my benzos", "stopped the benzos", "stopped taking", "off the benzos", "off benzos",
    "coming off", "out of xanax", "out of my xanax", "out of my benzos", "abstinencia", "deje de tomar",
    "deje de beber", "sin tomar", "sin beber", "deje las benzos",
)  # fmt: skip
DOPE_SICK = (
    "dope sick", "dopesick", "sick from withdrawal", "in withdrawal", "withdrawals from", "kicking",
    "kicking dope", "going through withdrawal", "going through withdrawals", "malila", "con la malila",
    "el mono", "con el mono", "enfermo por la droga", "enferma por la droga",
)  # fmt: skip
MEDICATION = (
    "methadone", "suboxone", "subs", "sub", "bupe", "buprenorphine", "strips", "film", "films",
    "dose", "doses", "take homes", "takehomes", "script", "prescription", "metadona", "dosis",
    "buprenorfina", "receta",
)  # fmt: skip
MISSED = (
    "missed my", "ran out of", "run out of", "running out of", "out of my", "lost my", "could not get my",
    "did not get my", "can not get my", "no dose", "no tome mi", "perdi mi", "se me acabo", "se me acabaron",
    "me quede sin", "no me dieron mi",
)  # fmt: skip


class UseReader:
    """Reads what a message says was used, and how. Built once per content load (the normaliser's)."""

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer
        self._substances = {s: self._phrases(words) for s, words in WORDS.items()}
        self._alone = self._phrases(ALONE)
        self._injected = self._phrases(INJECTED)
        self._signs = self._phrases(SIGNS)
        self._stopped = self._phrases(STOPPED)
        self._dope_sick = self._phrases(DOPE_SICK)
        self._medication = self._phrases(MEDICATION)
        self._missed = self._phrases(MISSED)
        self._benzo_or_alcohol = self._substances[Substance.ALCOHOL] | self._substances[Substance.BENZO]
        self._not = frozenset(self._words(" ".join(NOT_ALONE)))

    def _words(self, text: str) -> list[str]:
        return [w for clause in self.normalizer.clauses(text) for w in clause]

    def _phrases(self, phrases: Iterable[str]) -> frozenset[tuple[str, ...]]:
        return frozenset(tuple(self._words(p)) for p in phrases if self._words(p))

    @staticmethod
    def _find(clauses: list[list[str]], phrases: frozenset[tuple[str, ...]]) -> list[tuple[int, int]]:
        """(clause, word) positions where a phrase starts."""
        found: list[tuple[int, int]] = []
        longest = max((len(p) for p in phrases), default=0)
        for c, words in enumerate(clauses):
            for i in range(len(words)):
                for size in range(1, longest + 1):
                    if tuple(words[i : i + size]) in phrases:
                        found.append((c, i))
                        break
        return found

    def read(self, text: str) -> UseReport:
        clauses = self.normalizer.clauses(text)
        substances = frozenset(s for s, phrases in self._substances.items() if self._find(clauses, phrases))
        alone = any(
            not (set(clauses[c][max(0, i - 2) : i]) & self._not) for c, i in self._find(clauses, self._alone)
        )
        injected = bool(self._find(clauses, self._injected))
        return UseReport(substances, alone=alone, injected=injected)

    def withdrawal(self, text: str) -> Withdrawal | None:
        """Signs of withdrawal or a missed medication dose, most dangerous first."""
        clauses = self.normalizer.clauses(text)

        def has(phrases: frozenset[tuple[str, ...]]) -> bool:
            return bool(self._find(clauses, phrases))

        if has(self._signs) and (has(self._stopped) or has(self._benzo_or_alcohol)):
            return Withdrawal.DANGEROUS
        if has(self._missed) and has(self._medication):
            return Withdrawal.MISSED_DOSE
        if has(self._dope_sick):
            return Withdrawal.DOPE_SICK
        return None
