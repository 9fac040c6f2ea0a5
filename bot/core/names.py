"""Names people type (patient aliases, group names): matched without regard to case, and a near miss is
answered with the name that was probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(typed: str, known: Iterable[str]) -> str:
    """`; did you mean 'River'?` for the known name closest to `typed`, or "" when none is close."""
    by_folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(" ".join(typed.split()).casefold(), list(by_folded), n=1, cutoff=0.6)
    return f"; did you mean {by_folded[close[0]]!r}?" if close else ""
