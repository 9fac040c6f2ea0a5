from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.checkin.history import ChartLabels, Day, fill_window, render_chart, summarize

REPO = Path(__file__).resolve().parent.parent
END = date(2026, 11, 23)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SPANISH = ChartLabels(
    title="Tus últimos 14 días",
    craving="Deseo de consumir (0-10)",
    mood="Ánimo (1-5)",
    use="Días con consumo",
    triggers="Desencadenantes",
    no_triggers="Ningún desencadenante anotado: ¡qué bien, señora!",
    trigger_names={"stress": "Estrés", "lonely": "Soledad", "people": "Compañía"},
    date_format="%d/%m",
)
ENGLISH = ChartLabels(
    title="Your last 14 days",
    craving="Craving (0-10)",
    mood="Mood (1-5)",
    use="Use reported",
    triggers="Triggers",
    no_triggers="No triggers noted",
    trigger_names={"stress": "Stress"},
)


def day(
    offset: int,
    craving: int | None = None,
    mood: int | None = None,
    *,
    used: bool = False,
    triggers: tuple[str, ...] = (),
) -> Day:
    """A checked-in day `offset` days before END."""
    return Day(END - timedelta(days=offset), craving, mood, used, triggers, checked_in=True)


def varied_window(length: int) -> list[Day]:
    """Deterministic data with gaps, partial answers, use days and triggers."""
    keys = ("stress", "lonely", "people", "boredom")
    found: dict[date, Day] = {}
    for offset in range(length):
        if offset % 5 == 3:
            continue  # no check-in that day
        found[END - timedelta(days=offset)] = day(
            offset,
            craving=None if offset % 7 == 2 else (offset * 3) % 11,
            mood=None if offset % 4 == 1 else offset % 5 + 1,
            used=offset % 9 == 4,
            triggers=keys[: offset % 3],
        )
    return fill_window(END, length, found)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> bytes:
    """The decompressed pixel stream, to compare images by what they show rather than by metadata."""
    pos, pixels = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            pixels += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(pixels)


# summarize


def test_summarize_averages_round_to_one_decimal_and_skip_unanswered_days() -> None:
    days = [day(3, 4, 2), day(2, 5, None), day(1, None, 3), day(0, 5, 3)]
    summary = summarize(days)
    assert summary.days == 4
    assert summary.checkins == 4
    assert summary.craving_average == 4.7  # 14 / 3 = 4.666...
    assert summary.mood_average == 2.7  # 8 / 3 = 2.666...


def test_summarize_highest_craving_goes_to_the_most_recent_day_on_ties() -> None:
    days = [day(5, 8), day(4, 3), day(2, 8), day(1, 7), day(0, None)]
    summary = summarize(days)
    assert summary.craving_highest == 8
    assert summary.craving_highest_day == END - timedelta(days=2)
    # The order of the input does not matter.
    assert summarize(list(reversed(days))).craving_highest_day == END - timedelta(days=2)


def test_summarize_counts_use_days_and_checkins() -> None:
    days = fill_window(END, 7, {d.day: d for d in [day(6, 2, used=True), day(3, used=True), day(0, 1)]})
    summary = summarize(days)
    assert summary.days == 7
    assert summary.checkins == 3
    assert summary.use_days == 2


def test_summarize_top_triggers_counts_days_and_keeps_every_tie() -> None:
    days = [
        day(3, triggers=("stress", "lonely")),
        day(2, triggers=("lonely", "stress", "stress")),  # named twice on one day counts once
        day(1, triggers=("boredom",)),
        day(0, triggers=("boredom",)),
    ]
    summary = summarize(days)
    assert summary.top_triggers == ("boredom", "lonely", "stress")  # all on 2 days: none is dropped
    assert summary.top_trigger_count == 2

    summary = summarize([*days, day(4, triggers=("stress",))])
    assert (summary.top_triggers, summary.top_trigger_count) == (("stress",), 3)


def test_summarize_empty_window() -> None:
    for days in (fill_window(END, 14, {}), []):
        summary = summarize(days)
        assert summary.days == len(days)
        assert summary.checkins == 0
        assert summary.craving_average is None
        assert summary.craving_highest is None
        assert summary.craving_highest_day is None
        assert summary.mood_average is None
        assert summary.use_days == 0
        assert summary.top_triggers == ()
        assert summary.top_trigger_count == 0


# fill_window


def test_fill_window_is_oldest_first_fills_gaps_and_ignores_days_outside() -> None:
    inside = day(2, 6, 4)
    last = day(0, 1, 5)
    before = day(7, 9, 1)
    after = Day(END + timedelta(days=1), 9, 1, True, checked_in=True)
    window = fill_window(END, 7, {d.day: d for d in (inside, last, before, after)})

    assert [d.day for d in window] == [END - timedelta(days=n) for n in range(6, -1, -1)]
    assert window[4] == inside
    assert window[6] == last
    assert window[0] == Day(END - timedelta(days=6), None, None, False)
    assert not window[0].checked_in and window[0].triggers == ()
    assert before not in window and after not in window
    assert summarize(window).craving_highest == 6


def test_fill_window_lengths() -> None:
    assert fill_window(END, 1, {}) == [Day(END, None, None, False)]
    assert fill_window(END, 0, {}) == []
    assert len(fill_window(END, 30, {})) == 30
    with pytest.raises(ValueError):
        fill_window(END, -1, {})


# render_chart


@pytest.mark.parametrize(
    "days",
    [
        pytest.param(fill_window(END, 14, {}), id="no-data"),
        pytest.param([], id="zero-days"),
        pytest.param([day(0, 4, 3, triggers=("stress",))], id="one-day"),
        pytest.param(varied_window(14), id="14-days"),
        pytest.param(varied_window(30), id="30-days"),
    ],
)
@pytest.mark.parametrize("labels", [SPANISH, ENGLISH], ids=["es", "en"])
def test_render_chart_returns_a_phone_sized_png(days: list[Day], labels: ChartLabels) -> None:
    data = render_chart(days, labels)
    width, height = png_size(data)
    assert 900 <= width <= 1400
    assert 700 <= height <= width * 1.1  # about square, or a bit wider than tall
    assert len(data) < 300_000


def test_importing_the_module_is_cheap_and_drawing_needs_no_pyplot_or_telegram() -> None:
    code = (
        "import sys; import bot.checkin.history as h; "
        "assert 'matplotlib' not in sys.modules and 'telegram' not in sys.modules; "
        "h.render_chart(h.fill_window(h.date(2026, 11, 23), 3, {}), "
        "h.ChartLabels('t', 'c', 'm', 'u', 'tr', 'n', {})); "
        "assert 'matplotlib.pyplot' not in sys.modules and 'telegram' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_render_chart_shows_the_data() -> None:
    base = varied_window(14)
    image = png_pixels(render_chart(base, SPANISH))
    # Same input, same picture.
    assert png_pixels(render_chart(base, SPANISH)) == image

    changed_craving = [*base[:-1], day(0, 10, base[-1].mood)]
    with_use = [*base[:-1], day(0, base[-1].craving, base[-1].mood, used=True)]
    more_triggers = [*base[:-1], day(0, base[-1].craving, base[-1].mood, triggers=("lonely", "stress"))]
    empty = fill_window(END, 14, {})
    others = [changed_craving, with_use, more_triggers, empty]
    assert all(png_pixels(render_chart(days, SPANISH)) != image for days in others)

    # The labels are drawn: other words, other picture.
    assert png_pixels(render_chart(base, ENGLISH)) != image
