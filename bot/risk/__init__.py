"""Risk signals in what patients write (pure Python, no Telegram).

- `normalize`: what was typed becomes canonical words (case, accents, leetspeak, emoji, misspellings).
- `lexicon`: phrases by category and level from `content/<lang>/risk/lexicon.yaml`, kept by a clinical lead.
- `detector`: matches plus context rules (negation, past, someone else, hyperbole) give a `Screening`.
- `corpus`: the labelled messages (examples.tsv and corpus/*.tsv with their sources) the detector learns from.
- `semantic`: a sentence encoder and a head beside the rules that may raise a message to a page or to "are
  you safe right now?", never lower it (`training` builds it, from the cache or afresh).
- `evaluate`: recall and false alarms on labelled messages (`python -m bot risk eval`).
"""

from bot.risk.detector import Detector, Match, Screening
from bot.risk.levels import Category, Context, FollowUp, RiskLevel

__all__ = ["Category", "Context", "Detector", "FollowUp", "Match", "RiskLevel", "Screening"]
