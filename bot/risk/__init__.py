"""Risk signals in what patients write (pure Python, no Telegram).

- `normalize`: what was typed becomes canonical words (case, accents, leetspeak, emoji, misspellings).
- `lexicon`: phrases by category and level from `content/<lang>/risk/lexicon.yaml`, kept by a clinical lead.
- `detector`: matches plus context rules (negation, past, someone else, hyperbole) give a `Screening`.
- `classifier`: a model beside the rules that may only add "are you safe right now?" (`training` fits it).
- `evaluate`: recall and false alarms on labelled messages (`python -m bot risk eval`).
"""

from bot.risk.detector import Detector, Match, Screening
from bot.risk.levels import Category, Context, FollowUp, RiskLevel

__all__ = ["Category", "Context", "Detector", "FollowUp", "Match", "RiskLevel", "Screening"]
