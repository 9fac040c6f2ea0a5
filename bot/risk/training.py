"""`python -m bot risk train`: fit the model beside the rules on the labelled examples in content/.

Needs scikit-learn (`pip install -e '.[train]'`); the bot itself only reads the weights this writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.risk.classifier import Classifier, features, fingerprint
from bot.risk.labelled import Labelled
from bot.risk.levels import RiskLevel
from bot.risk.normalize import Normalizer

# Chosen by leaving out one labelled set at a time: C=4 and features seen in at least two messages; the
# threshold keeps questions on harmless messages the rules leave alone near 7% in that cross-validation.
STRENGTH = 4.0
MIN_MESSAGES = 2
THRESHOLD = 0.6


class TrainingUnavailable(RuntimeError):
    pass


def train(
    examples: Sequence[Labelled],
    normalizer: Normalizer,
    *,
    threshold: float = THRESHOLD,
    strength: float = STRENGTH,
    min_messages: int = MIN_MESSAGES,
) -> Classifier:
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise TrainingUnavailable("training needs scikit-learn: pip install -e '.[train]'") from None
    labels = [e.level >= RiskLevel.HIGH for e in examples]
    if len(set(labels)) < 2:
        raise ValueError("the examples need both high or imminent messages and others")
    vectorizer = TfidfVectorizer(
        analyzer=lambda text: features(normalizer.clauses(text)),
        sublinear_tf=True,
        min_df=min_messages,
    )
    matrix = vectorizer.fit_transform([e.text for e in examples])
    model = LogisticRegression(C=strength, class_weight="balanced", max_iter=5000)
    model.fit(matrix, labels)
    weights = {
        str(feature): (float(vectorizer.idf_[column]), float(model.coef_[0][column]))
        for feature, column in vectorizer.vocabulary_.items()
    }
    return Classifier(weights, float(model.intercept_[0]), threshold, fingerprint(examples), len(examples))
