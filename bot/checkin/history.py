"""A patient's recent check-ins as a picture and a few numbers, for the /history command.

Seeing a fortnight at once lets a patient notice patterns (cravings rising on lonely evenings, mood lifting
after a good week) that single check-ins hide. This module is pure: it takes days already read from the
database and labels already translated from the content files, and returns PNG bytes and a `Summary`.
It contains no patient-facing words, so the chart is as bilingual as the content files are.

The chart is drawn with matplotlib's object API (a `Figure`, never pyplot), so it touches no global state and
can run in a worker thread (`asyncio.to_thread`). matplotlib is imported only when a chart is drawn, which
keeps importing this module cheap.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import fmean
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

CRAVING_MIN, CRAVING_MAX = 0, 10
MOOD_MIN, MOOD_MAX = 1, 5

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies; the two lines also differ
# in line style and marker, so the chart still reads in greyscale.
_CRAVING_COLOUR = "#0072B2"  # blue
_MOOD_COLOUR = "#D55E00"  # vermillion
_USE_COLOUR = "#CBC3E3"  # soft lavender: visible, but deliberately not an alarm colour
_BAR_COLOUR = "#56B4E9"  # sky blue
_TEXT_COLOUR = "#333333"
_GRID_COLOUR = "#DDDDDD"

# 1000 x 900 px: a little wider than tall, so it fills a phone's width in a chat without scrolling.
_FIG_SIZE = (8.0, 7.2)
_DPI = 125
_MAX_TICK_LABELS = 8


@dataclass(frozen=True)
class Day:
    """One local calendar day of the patient. Values are None when not answered / no check-in that day."""

    day: date
    craving: int | None  # 0-10
    mood: int | None  # 1-5
    used: bool  # the patient reported alcohol/drug use that day
    triggers: tuple[str, ...] = ()  # trigger keys, e.g. ("stress", "lonely")
    checked_in: bool = False  # a check-in (complete or partial) exists for that day


@dataclass(frozen=True)
class ChartLabels:
    title: str  # e.g. "Your last 14 days"
    craving: str  # legend/axis label, e.g. "Craving (0-10)"
    mood: str  # e.g. "Mood (1-5)"
    use: str  # legend label for days with use, e.g. "Use reported"
    triggers: str  # title of the trigger-count panel, e.g. "Triggers"
    no_triggers: str  # shown in the trigger panel when there are none
    trigger_names: Mapping[str, str]  # trigger key -> display name (fall back to the key if missing)
    date_format: str = "%b %d"  # strftime for x tick labels (caller may pass a locale-neutral "%d/%m")


@dataclass(frozen=True)
class Summary:
    days: int  # length of the window
    checkins: int  # days with checked_in
    craving_average: float | None  # mean over days with a craving value, rounded to 1 decimal
    craving_highest: int | None
    craving_highest_day: date | None  # the most recent day with the highest craving
    mood_average: float | None  # rounded to 1 decimal
    use_days: int
    top_triggers: tuple[str, ...]  # keys of the most frequent triggers, all of those tied, alphabetical
    top_trigger_count: int


def trigger_counts(days: Sequence[Day]) -> list[tuple[str, int]]:
    """(key, number of days it was named), most frequent first, ties alphabetical.

    A trigger named twice on the same day counts once: the question is "on how many days".
    """
    counts: Counter[str] = Counter()
    for d in days:
        counts.update(set(d.triggers))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def summarize(days: Sequence[Day]) -> Summary:
    cravings = [(d.craving, d.day) for d in days if d.craving is not None]
    moods = [d.mood for d in days if d.mood is not None]
    highest = max(cravings) if cravings else None  # (value, day): ties go to the most recent day
    triggers = trigger_counts(days)
    return Summary(
        days=len(days),
        checkins=sum(1 for d in days if d.checked_in),
        craving_average=round(fmean(c for c, _ in cravings), 1) if cravings else None,
        craving_highest=highest[0] if highest else None,
        craving_highest_day=highest[1] if highest else None,
        mood_average=round(fmean(moods), 1) if moods else None,
        use_days=sum(1 for d in days if d.used),
        top_triggers=tuple(key for key, count in triggers if count == triggers[0][1]),
        top_trigger_count=triggers[0][1] if triggers else 0,
    )


def fill_window(end: date, length: int, found: Mapping[date, Day]) -> list[Day]:
    """`length` consecutive days ending at `end` (inclusive), oldest first.

    Days missing from `found` are empty: Day(day, None, None, False). Entries of `found` outside the window
    are ignored.
    """
    if length < 0:
        raise ValueError(f"length must not be negative, got {length}")
    window = [end - timedelta(days=offset) for offset in range(length - 1, -1, -1)]
    return [found.get(d) or Day(d, None, None, False) for d in window]


def render_chart(days: Sequence[Day], labels: ChartLabels) -> bytes:
    """A PNG (bytes starting with b'\\x89PNG'), readable on a phone: 1000x900 px, a bit wider than tall.

    Top: craving (0-10, left axis) and mood (1-5, right axis) per day, with days of reported use shaded.
    Bottom: on how many days each trigger was named.
    """
    # Lazy: importing matplotlib costs a few hundred milliseconds.
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    layout = ConstrainedLayoutEngine(hspace=0.06)  # room between the date labels and the trigger title
    fig = Figure(figsize=_FIG_SIZE, dpi=_DPI, layout=layout, facecolor="white")
    trend_ax, trigger_ax = fig.subplots(2, 1, height_ratios=(2.2, 1.0))
    _draw_trend(trend_ax, days, labels)
    _draw_triggers(trigger_ax, days, labels)
    fig.suptitle(labels.title, fontsize=18, fontweight="bold", color=_TEXT_COLOUR)

    buffer = io.BytesIO()
    # No "Software" text chunk: the bytes then depend only on the data and the matplotlib version.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _values(values: Sequence[int | None]) -> list[float]:
    """None becomes NaN, which matplotlib leaves as a gap instead of joining the neighbours."""
    return [math.nan if v is None else float(v) for v in values]


def _tick_positions(count: int) -> list[int]:
    """At most _MAX_TICK_LABELS evenly spaced positions, always including the last (most recent) day."""
    step = max(1, math.ceil(count / _MAX_TICK_LABELS))
    return list(range(count - 1, -1, -step))[::-1]


def _draw_trend(ax: Axes, days: Sequence[Day], labels: ChartLabels) -> None:
    from matplotlib.patches import Patch

    xs = list(range(len(days)))
    ax.set_xlim(-0.5, max(len(days), 1) - 0.5)
    ax.set_ylim(CRAVING_MIN - 0.5, CRAVING_MAX + 0.5)
    ax.set_yticks(range(CRAVING_MIN, CRAVING_MAX + 1, 2))
    ax.grid(axis="y", color=_GRID_COLOUR, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_ylabel(labels.craving, color=_CRAVING_COLOUR, fontsize=13)
    ax.tick_params(axis="y", colors=_CRAVING_COLOUR, labelsize=12)
    ax.tick_params(axis="x", colors=_TEXT_COLOUR, labelsize=12)
    ticks = _tick_positions(len(days))
    ax.set_xticks(ticks, [days[i].day.strftime(labels.date_format) for i in ticks])
    ax.spines["top"].set_visible(False)

    use_days = [x for x, d in zip(xs, days, strict=True) if d.used]
    for x in use_days:
        ax.axvspan(x - 0.5, x + 0.5, facecolor=_USE_COLOUR, edgecolor="none", alpha=0.6, zorder=0)

    (craving_line,) = ax.plot(
        xs,
        _values([d.craving for d in days]),
        color=_CRAVING_COLOUR,
        linestyle="-",
        linewidth=2.5,
        marker="o",
        markersize=8,
        label=labels.craving,
        zorder=3,
    )

    mood_ax = ax.twinx()
    mood_ax.set_ylim(MOOD_MIN - 0.5, MOOD_MAX + 0.5)
    mood_ax.set_yticks(range(MOOD_MIN, MOOD_MAX + 1))
    mood_ax.set_ylabel(labels.mood, color=_MOOD_COLOUR, fontsize=13)
    mood_ax.tick_params(axis="y", colors=_MOOD_COLOUR, labelsize=12)
    mood_ax.spines["top"].set_visible(False)
    (mood_line,) = mood_ax.plot(
        xs,
        _values([d.mood for d in days]),
        color=_MOOD_COLOUR,
        linestyle="--",
        linewidth=2.5,
        marker="s",
        markersize=7,
        label=labels.mood,
        zorder=3,
    )

    handles: list[Line2D | Patch] = [craving_line, mood_line]
    if use_days:
        handles.append(Patch(facecolor=_USE_COLOUR, alpha=0.6, label=labels.use))
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=len(handles),
        frameon=False,
        fontsize=12,
        labelcolor=_TEXT_COLOUR,
    )


def _draw_triggers(ax: Axes, days: Sequence[Day], labels: ChartLabels) -> None:
    ax.set_title(labels.triggers, fontsize=14, color=_TEXT_COLOUR, loc="left")
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    counts = trigger_counts(days)
    if not counts:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            labels.no_triggers,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=13,
            color=_TEXT_COLOUR,
            wrap=True,
        )
        return

    names = [labels.trigger_names.get(key, key) for key, _ in counts]
    values = [n for _, n in counts]
    bars = ax.barh(range(len(counts)), values, color=_BAR_COLOUR, height=0.6)
    ax.set_yticks(range(len(counts)), names)
    # Most frequent on top; at least four slots, so one or two triggers don't become giant bars.
    ax.set_ylim(max(len(counts), 4) - 0.5, -0.5)
    ax.bar_label(bars, padding=4, fontsize=12, color=_TEXT_COLOUR)
    ax.set_xlim(0, max(values) * 1.15)
    # Each bar carries its count, so an x axis would only add clutter.
    ax.xaxis.set_visible(False)
    ax.spines["bottom"].set_visible(False)
    ax.tick_params(axis="y", labelsize=12, colors=_TEXT_COLOUR, length=0)
