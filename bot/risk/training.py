"""The semantic layer for today's lexicon and labelled corpus: from the cache, or trained now.

`python -m bot risk train` calls `build_layer(..., retrain=True)`; `content check` (and so every bot start)
calls it without: the head trained for the same examples, lexicon and encoder is read from the cache folder
(or this process) in milliseconds, and trained (tens of seconds on two cores) only when there is none.
The key covers the lexicon too, because the thresholds are chosen on what the layer adds to the rules.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.risk import semantic
from bot.risk.corpus import EVERYDAY, Example
from bot.risk.detector import Detector, rules_said
from bot.risk.levels import RiskLevel
from bot.risk.lexicon import Lexicon

log = logging.getLogger(__name__)

SAFE_EXAMPLE = "lexicon_safe"  # the category of a safe example learnt as a harmless message
SWITCH_ENV = "RISK_SEMANTIC_LAYER"  # `off`: the rules alone (to measure the layer's cost and worth)


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class Built:
    layer: semantic.Layer
    trained: bool  # False: read from the cache
    seconds: float


def key_of(examples: Sequence[Example], lexicon: Lexicon) -> str:
    rows = [(e.level.label, e.category, e.text) for e in examples]
    return semantic.fingerprint([*rows, ("lexicon", "", lexicon.source_digest)])


def safe_rows(lexicon: Lexicon) -> list[Example]:
    """The lexicon's `safe_examples` (messages that must never page), learnt as harmless messages. They are
    written against the rules' edge cases, not to the labelling guide, so they count in no budget and no
    figure: without them the layer paged 5 of the 71 on the new corpus (7 before it), with them 2 ("chest is
    tight from my cold and I'm sleepy": the corpus has imminent overdoses in those words; "not coming back to
    the city till monday": farewells), at 0.008 fewer imminent messages paged on the folds."""
    return [
        Example(
            0, RiskLevel.NONE, SAFE_EXAMPLE, text, language=Path(where.rsplit(":", 1)[0]).parent.parent.name
        )
        for text, where in lexicon.safe_examples
    ]


def build_layer(
    examples: Sequence[Example],
    lexicon: Lexicon,
    *,
    retrain: bool = False,
    encoder: semantic.Encoder | None = None,
) -> Built:
    started = time.perf_counter()
    encoder = encoder or semantic.default_encoder()
    key = key_of(examples, lexicon)
    head = None if retrain else semantic.cached_head(key, encoder.name)
    trained = head is None
    if head is None:
        rows = [*examples, *safe_rows(lexicon)]
        log.info("event=risk.semantic_training examples=%s", len(rows))
        rules = Detector(lexicon)
        head = semantic.train_head(
            [lexicon.normalizer.clauses(e.text) for e in rows],
            [semantic.class_of(e.level, e.category) for e in rows],
            [e.hard_negative for e in rows],
            [rules_said(rules.screen(e.text)) for e in rows],
            semantic.EmbeddingStore(encoder),
            key,
            everyday=[e.level is RiskLevel.NONE and e.category == EVERYDAY for e in rows],
            languages=[e.language for e in rows],
        )
        semantic.remember(head)
    seconds = time.perf_counter() - started
    if trained:
        log.info("event=risk.semantic_trained seconds=%.1f", seconds)
    return Built(semantic.Layer(encoder, head), trained, seconds)
