"""Screen one message: lexicon matches, then context rules that lower or reroute them.

Context rules (negation, the distant past, someone else's story, hyperbole, a joke) lower a moderate or high
match to nothing. They never silence an imminent one: it becomes a question instead (the C-SSRS screener
for suicide, "are you safe right now?" otherwise), so a crisis written as a joke or a denial is still asked
about, even when it is someone else's emergency that reads as over or told from a story ("my cousin overdosed
last week, he's stable", an overdose on the news): the rules cannot tell those from one happening now surely.

Every layer (lexicon phrases, context rules, the model) reads the normaliser's clauses, never the raw text:
an invisible character or a look-alike letter inside a word ("k<zero-width space>ill", "kіll" with a
Cyrillic і) is dealt with once, before any of them (bot.risk.normalize).

Then the semantic layer (bot.risk.semantic) reads the meaning of what the rules did not page as imminent. It
only ever raises: to imminent (a page) when it is confident, or to "are you safe right now?" (a question)
when it worries; it never lowers a rule's level nor drops a rule's question (`_raise`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.risk.levels import Category, Context, FollowUp, RiskLevel
from bot.risk.lexicon import CompiledEntry, Lexicon, Phrase
from bot.risk.semantic import MIN_WORDS, Layer, RulesSaid, Verdict, word_count
from bot.risk.use import UseReader

CLAUSE_MARK = "."  # between sentences in the text phrases are matched against; no phrase contains it
NEGATION_WINDOW = 4  # words before a match in which a "not" negates it (not counting `negation_reach` words)
NEGATION_REACH_MAX = 10  # and never further than this many words
OTHERS_WINDOW = 8  # words before a match in which a third-person subject makes it someone else's story
# A joke does not soften talk of using: "relapsed lol" is still a relapse.
SUBSTANCE = frozenset({Category.RELAPSE, Category.USE_PLAN, Category.CRAVING})
# Turning an offer down ("said no") denies using, not wanting to: a craving stays one.
USING = frozenset({Category.RELAPSE, Category.USE_PLAN})
# Nor a self-harm disclosure: "carved his name into my thigh lol" is a laugh to cover it, not a joke. (Kitchen
# accidents told with a laugh are `benign:` idioms: "cut my finger chopping onions lol".)
NOT_A_JOKE = SUBSTANCE | {Category.SELF_HARM}


@dataclass(frozen=True)
class Match:
    category: Category
    lexicon_level: RiskLevel
    level: RiskLevel
    phrase: str  # the words matched, normalised
    pattern: str  # the lexicon phrase that matched
    where: str = ""  # where the phrase is written (path:line)
    context: tuple[Context, ...] = ()
    follow_up: FollowUp | None = None

    def describe(self) -> str:
        why = f" ({', '.join(self.context)})" if self.context else ""
        return f"{self.category}/{self.lexicon_level.label}: {self.phrase!r} ~ {self.pattern!r}{why}"


@dataclass(frozen=True)
class Screening:
    level: RiskLevel
    categories: tuple[Category, ...] = ()
    matches: tuple[Match, ...] = ()
    follow_up: FollowUp | None = None
    semantic: Verdict | None = None  # what the semantic layer read, when it was asked

    @property
    def matched(self) -> list[str]:
        found = [m.describe() for m in self.matches]
        if self.semantic is not None and self.semantic.raises is not None:
            found.append(f"{self.semantic.describe()}: {self.semantic.raises}")
        return found

    @property
    def semantic_question(self) -> bool:
        """The semantic layer, and nothing else, asks "are you safe right now?"."""
        return self.semantic is not None and self.semantic.raises == "ask"

    def as_question(self) -> Screening:
        """The same signal, to be asked about rather than paged: where the words may be meant otherwise
        (a safety plan names warning signs in crisis words). High and imminent become moderate plus "are
        you safe right now?"; nothing is dropped."""
        if self.level < RiskLevel.HIGH:
            return self
        return Screening(RiskLevel.MODERATE, self.categories, self.matches, FollowUp.SAFETY_CHECK)

    def rules_only(self) -> Screening:
        """What the rules alone found, without anything the semantic layer raised."""
        return self if self.semantic is None else _summarise(list(self.matches))

    def without_question(self) -> Screening:
        """Without the semantic layer's question, if it asked one (its page stays): what is answered at once.
        The question is asked after everything else the message answers (`bot.handlers.text`), and not
        while a patient's "I'm safe" is recent (the cool-down)."""
        return self.rules_only() if self.semantic_question else self


NOTHING = Screening(RiskLevel.NONE)


def rules_said(screening: Screening) -> RulesSaid:
    """What the rules did with a message, for judging what the semantic layer adds to them."""
    return RulesSaid(
        paged=screening.level >= RiskLevel.HIGH,
        imminent=screening.level is RiskLevel.IMMINENT,
        asked=screening.level < RiskLevel.HIGH and screening.follow_up is not None,
        softened=any(m.context for m in screening.matches),
        hints=hints(screening),
    )


def hints(screening: Screening) -> tuple[str, ...]:
    """What the semantic layer's head is told the rules read: their level and each context they saw."""
    seen = sorted({str(c) for m in screening.matches for c in m.context})
    return (f"level:{screening.level.label}", *(f"context:{c}" for c in seen))


class PhraseIndex:
    """Which phrases could match a message, from the words it has: most messages touch few phrases, and
    skipping the rest keeps screening well under a millisecond."""

    def __init__(self, phrases: list[Phrase]) -> None:
        self.phrases = phrases
        self._always: list[int] = []
        self._exact: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        for number, phrase in enumerate(phrases):
            if phrase.anchor is None:
                self._always.append(number)
                continue
            exact, prefixes = phrase.anchor
            for word in exact:
                self._exact.setdefault(word, []).append(number)
            for prefix in prefixes:
                self._prefix.setdefault(prefix, []).append(number)
        self._lengths = sorted({len(p) for p in self._prefix})

    def candidates(self, tokens: set[str]) -> list[Phrase]:
        chosen = set(self._always)
        for token in tokens:
            chosen.update(self._exact.get(token, ()))
            for length in self._lengths:
                if length > len(token):
                    break
                chosen.update(self._prefix.get(token[:length], ()))
        return [self.phrases[n] for n in sorted(chosen)]


@dataclass
class _Text:
    tokens: list[str]
    clause: list[int]
    starts: list[int]
    joined: str
    vocabulary: set[str]  # the distinct words, for picking which phrases could match
    asks: bool = False  # the message has a question mark: a lone "no" after it answers it
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # id(index) -> token spans

    @classmethod
    def of(cls, clauses: list[list[str]], asks: bool = False) -> _Text:
        tokens: list[str] = []
        clause: list[int] = []
        starts: list[int] = []
        offset = 0
        for number, words in enumerate(clauses):
            if number:
                words = [CLAUSE_MARK, *words]
            for word in words:
                tokens.append(word)
                clause.append(number)
                starts.append(offset)
                offset += len(word) + 1
        return cls(tokens, clause, starts, " ".join(tokens), set(tokens), asks)

    def token_span(self, start: int, end: int) -> tuple[int, int]:
        first = bisect_right(self.starts, start) - 1
        last = bisect_right(self.starts, max(start, end - 1)) - 1
        return first, last + 1

    def find(self, index: PhraseIndex) -> list[tuple[int, int]]:
        key = id(index)
        if key not in self.spans:
            self.spans[key] = [
                self.token_span(m.start(), m.end())
                for p in index.candidates(self.vocabulary)
                for m in p.regex.finditer(self.joined)
            ]
        return self.spans[key]


class Detector:
    def __init__(self, lexicon: Lexicon, layer: Layer | None = None) -> None:
        self.lexicon = lexicon
        self.layer = layer
        self.use = UseReader(lexicon.normalizer)  # tiers a reported use (bot.risk.use)
        self._owner = {id(p): e for e in lexicon.entries for p in e.phrases}
        self._entries = PhraseIndex([p for e in lexicon.entries for p in e.phrases])
        self._benign = PhraseIndex(lexicon.benign)
        self._not_negation = PhraseIndex(lexicon.not_negation)
        self._past = PhraseIndex(lexicon.past)
        self._recent = PhraseIndex(lexicon.recent)
        self._others = PhraseIndex(lexicon.others)
        self._reported = PhraseIndex(lexicon.reported)
        self._denial = PhraseIndex(lexicon.denial)
        self._refusal = PhraseIndex(lexicon.refusal)
        self._stories = PhraseIndex(lexicon.stories)
        self._earlier = PhraseIndex(lexicon.earlier)
        self._resolved = PhraseIndex(lexicon.resolved)
        self._hedges = PhraseIndex(lexicon.hedges)
        self._present = PhraseIndex(lexicon.present)
        self._offers = PhraseIndex(lexicon.offers)
        self._words_of: dict[int, frozenset[str]] = {}

    def screen(self, text: str) -> Screening:
        clauses, result = self._rules(text)
        if not self._reads(clauses, result):
            return result  # nothing to raise, or too short for its meaning to be read
        assert self.layer is not None
        return self._decide(text, result, self.layer.verdict(clauses, hints(result)))

    def rules(self, text: str) -> Screening:
        """What the rules alone say of `text` (the semantic layer neither asked nor raising): cheap, for
        ordering work; `screen` is the decision."""
        return self._rules(text)[1]

    def prime(self, texts: Sequence[str]) -> None:
        """Read several messages ahead, with one encoder call (`screen_many`), before they are screened one
        by one: the layer keeps their embeddings (`Layer.recent`), so `screen` does not encode them again."""
        if self.layer is not None and len(texts) > 1:
            self.screen_many(texts)

    def screen_many(self, texts: Sequence[str]) -> list[Screening]:
        """The same as `screen` for each text, with one call of the semantic layer's encoder for all of
        them: about 1.5 ms of CPU per message in batches of 16 instead of 3.6 to 4 ms one by one (the
        encoder's weights are read from memory once per batch). The decisions are the same; the layer's
        probabilities may differ in the seventh digit (float32 sums in another order)."""
        read = [self._rules(text) for text in texts]
        wanted = [i for i, (clauses, result) in enumerate(read) if self._reads(clauses, result)]
        out = [result for _, result in read]
        if wanted and self.layer is not None:
            verdicts = self.layer.verdicts([(read[i][0], hints(read[i][1])) for i in wanted])
            for index, verdict in zip(wanted, verdicts, strict=True):
                out[index] = self._decide(texts[index], read[index][1], verdict)
        return out

    def _rules(self, text: str) -> tuple[list[list[str]], Screening]:
        clauses = self.lexicon.normalizer.clauses(text)  # the only reading of `text`: every layer uses these
        if not clauses:
            return clauses, NOTHING
        words = _Text.of(clauses, asks="?" in text or "¿" in text)
        matches = [
            self._judge(self._owner[id(phrase)], phrase, words, *words.token_span(found.start(), found.end()))
            for phrase in self._entries.candidates(words.vocabulary)
            for found in phrase.regex.finditer(words.joined)
        ]
        return clauses, _summarise(matches)

    def _reads(self, clauses: list[list[str]], result: Screening) -> bool:
        """Whether the semantic layer reads the message: not when the rules page it as imminent already."""
        return (
            self.layer is not None
            and result.level is not RiskLevel.IMMINENT
            and word_count(clauses) >= MIN_WORDS
        )

    def _decide(self, text: str, result: Screening, verdict: Verdict) -> Screening:
        if verdict.raises is not None and self.use.withdrawal(text) is not None:
            # Withdrawal or a missed dose has advice of its own (medical care and 911 where it can be deadly,
            # the clinic for a dose): the layer's overdose page or question would answer it wrongly.
            verdict = replace(verdict, raises=None)
        return _raise(result, verdict)

    def _judge(self, compiled: CompiledEntry, phrase: Phrase, words: _Text, start: int, end: int) -> Match:
        entry = compiled.entry
        context = self._context(entry.category, entry.keep_for_others, phrase, words, start, end)
        level = entry.level
        if context:
            # an imminent match is never dropped below a question, whatever its context
            level = RiskLevel.MODERATE if level is RiskLevel.IMMINENT else RiskLevel.NONE
        return Match(
            category=entry.category,
            lexicon_level=entry.level,
            level=level,
            phrase=" ".join(words.tokens[start:end]),
            pattern=phrase.source,
            where=phrase.where,
            context=context,
            follow_up=entry.follow_up,
        )

    def _context(
        self, category: Category, keep_for_others: bool, phrase: Phrase, words: _Text, start: int, end: int
    ) -> tuple[Context, ...]:
        found: list[Context] = []
        clause = words.clause[start]
        if (
            self._negated(words, start, clause)
            or self._negated_inside(phrase, words, start, end)
            or self._denied(words, end, clause)
            or (category in USING and self._refused(words, end, clause))
        ):
            found.append(Context.NEGATED)
        if self._in_past(words, start, end, clause):
            found.append(Context.PAST)
        if self._someone_else(words, start, end, clause, keep_for_others):
            found.append(Context.OTHER_PERSON)
        if any(_softens(s, e, start, end) for s, e in words.find(self._benign)):
            found.append(Context.HYPERBOLE)
        if category not in NOT_A_JOKE and any(
            t in self.lexicon.humor and words.clause[i] in (clause, clause + 1)
            for i, t in enumerate(words.tokens)
        ):
            found.append(Context.HUMOR)
        return tuple(found)

    def _negated(self, words: _Text, start: int, clause: int) -> bool:
        """A "not" shortly before the match in its sentence; the words a negation reaches across ("no
        thoughts of suicide or self harm") do not count towards how far it reaches."""
        exempt = self._not_negations(words)
        reach = self.lexicon.negation_reach
        counted = 0
        index = start - 1
        while index >= 0 and words.clause[index] == clause and start - index <= NEGATION_REACH_MAX:
            # "not just cutting I want to die": a new subject after the "not" starts a new statement
            # (Spanish "he" before a participle is "I have": "nunca he pensado en..." is still negated)
            if (
                words.tokens[index] in self.lexicon.negation
                and index not in exempt
                and not self._restarted(words, index + 1, start)
            ):
                return True
            if words.tokens[index] in self.lexicon.negation_stop:
                break  # "no plan or idea except to kill myself": what follows "except" is not denied
            if words.tokens[index] not in reach:
                counted += 1
                if counted >= NEGATION_WINDOW:
                    break
            index -= 1
        # A denial told as a phrase before it: "para nada quiero matarme".
        return any(
            words.clause[s] == clause
            and e <= start
            and start - e < NEGATION_WINDOW
            and s not in exempt
            and not self._restarted(words, e, start)
            for s, e in words.find(self._denial)
        )

    def _restarted(self, words: _Text, first: int, last: int) -> bool:
        return any(
            words.tokens[i] in self.lexicon.subjects and not _spanish_i_have(words.tokens, i, i + 1)
            for i in range(first, last)
        )

    def _not_negations(self, words: _Text) -> set[int]:
        """The tokens of `not_negation` phrases ("no one", "can not stop"): their "not" denies nothing."""
        return {i for s, e in words.find(self._not_negation) for i in range(s, e)}

    def _dates(self, words: _Text) -> list[tuple[int, int]]:
        """The spans that date something as earlier: the distant past's markers and days or weeks back."""
        return words.find(self._earlier) + words.find(self._past)

    def _negated_inside(self, phrase: Phrase, words: _Text, start: int, end: int) -> bool:
        """A "not" the phrase's gap took in, which its author did not write: "did not take the xanax" matched
        by "did ... <substance>". A phrase written with its "not" ("can not go on") is not negated by it."""
        written = self._written(phrase)
        exempt = self._not_negations(words)
        return any(
            words.tokens[i] in self.lexicon.negation
            and words.tokens[i] not in written
            and i not in exempt
            and not self._restarted(words, i + 1, end)
            for i in range(start + 1, end)
            if words.clause[i] == words.clause[start]  # "sleeping in my car tonight. not safe" is no denial
        )

    def _written(self, phrase: Phrase) -> frozenset[str]:
        """The words a phrase is written with, normalised as a message is ("won't" is "will not")."""
        key = id(phrase)
        if key not in self._words_of:
            plain = re.sub(r"[^\w' ]+", " ", phrase.source)
            self._words_of[key] = frozenset(t for c in self.lexicon.normalizer.clauses(plain) for t in c)
        return self._words_of[key]

    def _denied(self, words: _Text, end: int, clause: int) -> bool:
        """Answered no right after: "suicidal no", or a whole next sentence that is a no after a question
        ("self harm? no"; after a statement, "i want to kill myself. no" is no answer to anything)."""
        after = [i for i in range(end, len(words.tokens)) if words.clause[i] == clause]
        if after and len(after) <= 2 and all(words.tokens[i] in self.lexicon.negation for i in after):
            return True
        if not words.asks:
            return False
        following = [i for i in range(end, len(words.tokens)) if words.clause[i] == clause + 1]
        if not following:
            return False
        first, last = following[0], following[-1] + 1
        if words.tokens[first] == CLAUSE_MARK:
            first += 1
        return any(s == first and e == last for s, e in words.find(self._denial))

    def _refused(self, words: _Text, end: int, clause: int) -> bool:
        """Turned down after talk of using, in the same sentence or the next, and only what was offered (an
        offer before the refusal, in its sentence or the match's): "offered a bag and said no". Without an
        offer a refusal is something else turned down ("relapsed today and turned down my dose at the clinic",
        "used last night. i said no to going to group"): it never cancels a use the patient states."""
        offers = words.find(self._offers)
        return any(
            s >= end
            and words.clause[s] in (clause, clause + 1)
            and any(words.clause[o] in (clause, words.clause[s]) and oe <= s for o, oe in offers)
            for s, e in words.find(self._refusal)
        )

    def _in_past(self, words: _Text, start: int, end: int, clause: int) -> bool:
        """The nearest time marker in the clause (or the one before it) says the distant past."""
        return self._nearest_is(words, start, end, clause, (self._past,))

    def _nearest_is(
        self, words: _Text, start: int, end: int, clause: int, earlier: tuple[PhraseIndex, ...]
    ) -> bool:
        """Whether the nearest time marker is one of `earlier`, not a recent one. Markers count in the
        match's sentence and the one before it; and in the one after only when that sentence dates it
        ("that was 8 years ago", "eso fue hace 15 años", a sentence that is only "2010")."""
        best: tuple[int, bool] | None = None  # (distance, is_earlier)
        for phrases, is_earlier in (*((p, True) for p in earlier), (self._recent, False)):
            for s, e in words.find(phrases):
                if words.clause[s] == clause + 1 and is_earlier and self._dates_before(words, s):
                    candidate = (s - end + 100, True)
                elif words.clause[s] not in (clause, clause - 1):
                    continue
                elif s < end and start < e:
                    candidate = (0, is_earlier)
                else:
                    distance = start - e if e <= start else s - end
                    if words.clause[s] != clause:
                        distance += 100
                    candidate = (distance, is_earlier)
                if best is None or candidate[0] < best[0] or (candidate[0] == best[0] and not is_earlier):
                    best = candidate
        return best is not None and best[1]

    def _dates_before(self, words: _Text, marker: int) -> bool:
        index = marker - 1
        while words.tokens[index] != CLAUSE_MARK:
            if words.tokens[index] not in self.lexicon.dating:
                return False
            index -= 1
        # and nothing but the date after it: "el otro dia se salvo" tells another event, not this one's date
        ends = [e for s, e in self._dates(words) if s == marker]
        last = max(ends, default=marker + 1)
        return all(words.clause[i] != words.clause[marker] for i in range(last, len(words.tokens)))

    def _someone_else(self, words: _Text, start: int, end: int, clause: int, keep_for_others: bool) -> bool:
        """A third-person subject shortly before the match and no 'I' or 'me' from it to the match's end;
        or reported speech ("she asked if I..."); or a story (a book, the news). An overdose or a danger
        (`keep_for_others`) is someone else's only in a story, or when it is over: told with days or years
        between ("my cousin overdosed last week") or with its outcome ("he survived")."""
        if keep_for_others and self._now(words, clause):
            return False  # "my son is overdosing right now, last week he survived one"
        if self._in_story(words, start, end, clause):
            return True
        if not self._other_subject(words, start, end, clause):
            return False
        if not keep_for_others:
            return True
        if self._nearest_is(words, start, end, clause, (self._past, self._earlier)):
            return True
        return self._resolved_after(words, end, clause)

    def _now(self, words: _Text, clause: int) -> bool:
        """A present marker in the match's sentence ("right now", "still", "won't wake up"), not one that is
        part of an outcome told ("he is stable now")."""
        outcome = {i for s, e in words.find(self._resolved) for i in range(s, e)}
        return any(
            words.clause[s] == clause and not any(i in outcome for i in range(s, e))
            for s, e in words.find(self._present)
        )

    def _resolved_after(self, words: _Text, end: int, clause: int) -> bool:
        """The outcome told after the match, in its sentence or the next ("took too many of her pills, she's
        ok now"), and not as unknown ("i don't know if he survived", "no se si sobrevivio"). A next sentence
        with a date of its own tells another time ("..., el mes pasado sobrevivio a una sobredosis")."""
        hedges = words.find(self._hedges)
        dated = {words.clause[s] for s, e in self._dates(words)}
        return any(
            s >= end
            and (words.clause[s] == clause or (words.clause[s] == clause + 1 and clause + 1 not in dated))
            and not any(words.clause[h] == words.clause[s] and he <= s and s - he <= 3 for h, he in hedges)
            for s, e in words.find(self._resolved)
        )

    def _in_story(self, words: _Text, start: int, end: int, clause: int) -> bool:
        return any(
            e <= start and words.clause[s] == clause and not self._mine(words, e, start, end)
            for s, e in words.find(self._stories)
        )

    def _mine(self, words: _Text, first: int, start: int, end: int) -> bool:
        """An 'I' or 'me' from `first` to the match's end; a "my" counts only right before or in the match:
        earlier it says whose person or thing it is ("my sister's husband is drinking again")."""
        return any(
            words.tokens[i] in self.lexicon.first_person
            and (words.tokens[i] not in self.lexicon.possessive or i >= start - 1)
            for i in range(max(first, 0), end)
            if words.clause[i] == words.clause[start]
        )

    def _other_subject(self, words: _Text, start: int, end: int, clause: int) -> bool:
        for s, e in words.find(self._reported):
            if e <= start and words.clause[s] == clause:
                return True
        for s, e in words.find(self._others):
            if e > start or start - e > OTHERS_WINDOW or words.clause[s] != clause:
                continue
            if _spanish_i_have(words.tokens, s, e):
                continue
            if not self._mine(words, e, start, end):
                return True
        return False


SPANISH_PARTICIPLE = re.compile(r"^\w{2,}(ado|ido|ada|ida)$|^(hecho|dicho|visto|puesto|escrito|vuelto|roto)$")


def _spanish_i_have(tokens: Sequence[str], start: int, end: int) -> bool:
    """Spanish "he" before a participle is "I have" ("he estado quemándome"), not English "he": the lexicons
    of all languages are screened together, so the English third-person list meets Spanish text too."""
    return (
        end - start == 1
        and tokens[start] == "he"
        and end < len(tokens)
        and bool(SPANISH_PARTICIPLE.match(tokens[end]))
    )


def _softens(benign_start: int, benign_end: int, start: int, end: int) -> bool:
    """An idiom overlapping a match softens it, unless the match is the longer, more specific phrase
    that holds the whole idiom ("I'd kill for a drink" is a craving, not a joke)."""
    overlaps = benign_start < end and start < benign_end
    holds = start <= benign_start and benign_end <= end and (end - start) > (benign_end - benign_start)
    return overlaps and not holds


def _summarise(matches: list[Match]) -> Screening:
    if not matches:
        return NOTHING
    level = max(m.level for m in matches)
    categories = tuple(dict.fromkeys(m.category for m in matches if m.level == level and level))
    follow_up: FollowUp | None = None
    if any(
        m.level >= RiskLevel.MODERATE and (m.category is Category.SUICIDE or m.follow_up is FollowUp.CSSRS)
        for m in matches
    ):
        follow_up = FollowUp.CSSRS
    elif any(m.lexicon_level is RiskLevel.IMMINENT and m.level < RiskLevel.IMMINENT for m in matches):
        follow_up = FollowUp.SAFETY_CHECK
    ordered = tuple(sorted(matches, key=lambda m: (-m.level, -m.lexicon_level)))
    return Screening(level, categories, ordered, follow_up)


def _raise(rules: Screening, verdict: Verdict) -> Screening:
    """The decision rule: the layer's page makes the message imminent (with the layer's likeliest imminent
    category, and the C-SSRS screener after a suicide one); its question is asked only when the rules
    neither page nor ask already. Where a rule matched and its context read the words otherwise (negated, the
    past, someone else's, a joke), the layer's page becomes that question: the rules saw the risk words and
    explained them, and a guess does not page over that. Otherwise the rules' screening stands."""
    if verdict.raises == "page" and any(m.context for m in rules.matches):
        verdict = replace(verdict, raises="ask")
    if verdict.raises == "page":
        cssrs = verdict.category is Category.SUICIDE or rules.follow_up is FollowUp.CSSRS
        return Screening(
            RiskLevel.IMMINENT,
            (verdict.category,),
            rules.matches,
            FollowUp.CSSRS if cssrs else None,
            verdict,
        )
    if verdict.raises == "ask" and rules.level < RiskLevel.HIGH and rules.follow_up is None:
        return replace(rules, follow_up=FollowUp.SAFETY_CHECK, semantic=verdict)
    return replace(rules, semantic=replace(verdict, raises=None))


def self_test(detector: Detector) -> list[str]:
    """The lexicon's own examples: each must be found at its entry's level and category, and every safe
    example must stay below high. A clinical lead who adds a phrase adds the messages it is for."""
    problems: list[str] = []
    for text, where, entry in detector.lexicon.examples:
        result = detector.screen(text)
        found = any(m.category is entry.category and m.level >= entry.level for m in result.matches)
        if not found:
            problems.append(
                f"{where}: example {text!r} is not found as {entry.category}/{entry.level.label} "
                f"(screened {result.level.label}: {'; '.join(result.matched) or 'no match'})"
            )
    for text, where in detector.lexicon.safe_examples:
        result = detector.screen(text)
        if result.level >= RiskLevel.HIGH:
            matched = "; ".join(result.matched)
            problems.append(f"{where}: safe example {text!r} is flagged {result.level.label}: {matched}")
    return problems
