"""A small trend chart of a patient's questionnaire scores, for the care team's /patient view.

Pure, like /history's chart (`bot.checkin.history`): it takes the scores and the labels already translated
and returns PNG bytes; matplotlib's object API only (no pyplot, no global state), so it can run in a worker
thread, and matplotlib is imported only when a chart is drawn. One panel per questionnaire, each score a line,
the severity bands' lower bounds as faint lines.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

# Okabe-Ito colours and distinct markers, so the lines also read in greyscale.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
_MARKERS = ("o", "s", "^", "D")
_TEXT = "#333333"
_GRID = "#DDDDDD"
_MARK = "#AAAAAA"  # a severity band's lower bound
_PANEL_HEIGHT = 2.4  # inches; 8 inches wide at 100 dpi: 800 px, small enough for a chat
_DPI = 100


@dataclass(frozen=True)
class Line:
    label: str  # a score's name, e.g. "Total", "Risk factors"
    points: Sequence[tuple[date, int]]  # oldest first


@dataclass(frozen=True)
class Panel:
    title: str  # the questionnaire's short name, e.g. "PHQ-9"
    top: int  # the highest score possible (the y axis runs 0..top)
    lines: Sequence[Line]
    marks: Sequence[int] = field(default_factory=tuple)  # band lower bounds, drawn as faint lines


def render(panels: Sequence[Panel], title: str, date_format: str = "%b %d") -> bytes:
    """A PNG (b'\\x89PNG...'): one panel per questionnaire, stacked, sharing nothing but the title."""
    from matplotlib.figure import Figure

    count = max(len(panels), 1)
    fig = Figure(
        figsize=(8.0, 0.6 + _PANEL_HEIGHT * count), dpi=_DPI, layout="constrained", facecolor="white"
    )
    axes = fig.subplots(count, 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=False):
        ax.set_title(panel.title, loc="left", fontsize=12, color=_TEXT)
        ax.set_ylim(-0.5, panel.top + 0.5)
        ax.set_axisbelow(True)
        if panel.marks:  # the bands' bounds instead of a grid
            ax.set_yticks(sorted({0, *panel.marks, panel.top}))
            for mark in panel.marks:
                if 0 < mark <= panel.top:
                    ax.axhline(mark, color=_MARK, linestyle="--", linewidth=1.0, zorder=1)
        else:
            ax.grid(axis="y", color=_GRID, linewidth=0.8)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        days = sorted({day for line in panel.lines for day, _ in line.points})
        position = {day: index for index, day in enumerate(days)}
        ax.set_xlim(-0.5, max(len(days), 1) - 0.5)
        ax.set_xticks(range(len(days)), [day.strftime(date_format) for day in days])
        ax.tick_params(colors=_TEXT, labelsize=10)
        for index, line in enumerate(panel.lines):
            xs = [position[day] for day, _ in line.points]
            ys = [value for _, value in line.points]
            ax.plot(
                xs,
                ys,
                color=_COLOURS[index % len(_COLOURS)],
                marker=_MARKERS[index % len(_MARKERS)],
                linewidth=2,
                markersize=6,
                label=line.label,
                zorder=3,
            )
            for x, y in zip(xs, ys, strict=True):
                ax.annotate(
                    str(y), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9
                )
        if len(panel.lines) > 1:
            ax.legend(
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
                fontsize=9,
                frameon=False,
                ncols=len(panel.lines),
            )
    fig.suptitle(title, fontsize=14, fontweight="bold", color=_TEXT)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
