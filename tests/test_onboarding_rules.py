from __future__ import annotations

from datetime import time

import pytest

from bot.enrollment.onboarding import COMMON_TIMEZONES, parse_clock, parse_timezone
from tests.harness import SHIPPED_CONTENT, load_content_once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20:00", time(20, 0)),
        ("8pm", time(20, 0)),
        ("8:30 pm", time(20, 30)),
        ("8.15 P.M.", time(20, 15)),
        ("12am", time(0, 0)),
        ("12 pm", time(12, 0)),
        ("7", time(7, 0)),
        ("20h30", time(20, 30)),
        (" 07:05 ", time(7, 5)),
        ("8:30 p. m.", time(20, 30)),  # Spanish style
        ("7 a. m.", time(7, 0)),
        ("20h", time(20, 0)),
    ],
)
def test_clock_times_people_type(text: str, expected: time) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize(
    "text", ["", "25:00", "13pm", "0am", "7:60", "evening", "8:3", "-3", "1" * 500, "8 pmm", "h", "8 m"]
)
def test_not_a_time(text: str) -> None:
    assert parse_clock(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("America/Denver", "America/Denver"),
        ("america/los angeles", "America/Los_Angeles"),
        ("  EUROPE/MADRID ", "Europe/Madrid"),
        ("UTC", "UTC"),
        ("chicago", "America/Chicago"),  # the city alone, as the buttons show it
        ("New York", "America/New_York"),
        ("puerto rico", "America/Puerto_Rico"),
        ("madrid", "Europe/Madrid"),
        ("Bogotá", "America/Bogota"),
    ],
)
def test_timezone_names(text: str, expected: str) -> None:
    assert parse_timezone(text) == expected


@pytest.mark.parametrize("text", ["", "Mars/Olympus", "Eastern", "../../etc/passwd", "America/" + "x" * 100])
def test_not_a_timezone(text: str) -> None:
    assert parse_timezone(text) is None


def test_a_time_zone_button_label_typed_is_read_as_its_zone() -> None:
    catalog = load_content_once(SHIPPED_CONTENT).catalog
    for zone in COMMON_TIMEZONES:
        label = catalog.render(f"onboarding.zones.{zone.rsplit('/', 1)[1].lower()}", "en")
        assert parse_timezone(label) == zone, label
        assert parse_timezone(label.lower()) == zone, label
