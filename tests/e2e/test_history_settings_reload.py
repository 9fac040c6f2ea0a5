"""/history, /settings and content reloading (by /reload and by the file watcher) through the real bot."""

from __future__ import annotations

import asyncio
import shutil
import struct
import time
from collections.abc import Callable
from datetime import time as clock
from pathlib import Path

from bot.core.config import Settings
from bot.core.models import CounselorRole, InviteKind
from devtools.simulator import BotMessage
from tests.harness import BotHarness


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_history_is_a_chart_with_a_text_summary(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    empty = await harness.say(user, "/history", "no check-ins in the last 14 days")
    assert [label for label, _ in empty.buttons()] == ["Last 30 days"]

    craving = await harness.say(user, "/checkin", "How strong is your craving")
    triggers = await harness.tap(user, craving, "5", "make things harder")
    for trigger in ("Lonely", "Tired"):  # a tie: the summary names both, as the chart shows both
        await harness.standin.tap(
            user, triggers.message_id, next(d for t, d in triggers.buttons() if t.endswith(trigger))
        )
        await harness.standin.wait_for(user, lambda m, t=trigger: any(b == f"✓ {t}" for b, _ in m.buttons()))
    mood = await harness.tap(user, triggers, "Done", "mood")
    await harness.tap(user, mood, "3", "sleep")

    chart = await harness.say(user, "/history", "Last 14 days: 1 check-in.")
    assert chart.kind == "photo" and chart.file_bytes is not None
    assert _png_size(chart.file_bytes) >= (800, 600)
    assert chart.text == harness.runtime.text(
        "history.summary",
        "en",
        days=14,
        checkins=1,
        craving_average=5.0,
        craving_highest=5,
        mood_average=3.0,
        use_days=0,
        top_trigger="Lonely, Tired",
        top_trigger_count=1,
        tied=True,
    )
    month = await harness.tap(user, chart, "Last 30 days", "Last 30 days: 1 check-in")
    assert month.kind == "photo" and month.file_bytes != chart.file_bytes


async def test_settings_change_time_zone_and_language(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    menu = await harness.say(user, "/settings", "What would you like to change")
    assert "Daily check-in time: 20:00" in (menu.text or "")
    times = await harness.tap(user, menu, "Check-in time", "What time each day")
    saved = await harness.tap(user, times, "21:00", "Saved")
    assert "Daily check-in time: 21:00" in (saved.text or "")

    zones = await harness.tap(user, menu, "Time zone", "What time zone")
    await harness.tap(user, zones, "Other time zone", "Please type your time zone")
    await harness.say(user, "Mars/Base", "don't know that time zone")
    await harness.say(user, "europe/madrid", "Time zone: Europe/Madrid")
    languages = await harness.tap(user, menu, "Language", "Which language")
    await harness.tap(user, languages, "Español", "se guardó")
    patient = await harness.patient(user)
    assert patient is not None
    assert (patient.checkin_time, patient.timezone, patient.language) == (clock(21, 0), "Europe/Madrid", "es")
    assert patient.onboarding_step is None


async def _admin(harness: BotHarness, role: CounselorRole = CounselorRole.ADMIN) -> int:
    user = harness.new_user_id()
    code = await harness.invite(InviteKind.COUNSELOR, await harness.add_counselor("Ari", role=role))
    welcome = harness.runtime.text("counselor.welcome", "en", name="Ari", role=role.value)
    await harness.say(user, f"/start {code}", welcome.splitlines()[0])
    return user


async def _reload(harness: BotHarness, admin: int, expect: str) -> BotMessage:
    """/reload answers once the whole content has been checked: seconds on a busy machine, so a longer
    deadline than a reply's."""
    mark = harness.standin.mark(admin)
    await harness.standin.send_text(admin, "/reload")
    return await harness.standin.wait_for(admin, expect, after=mark, timeout=30)


def _copy_content(settings: Settings, tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(settings.content_dir, content)
    return content


async def test_reload_refuses_a_broken_edit_and_keeps_serving(settings: Settings, tmp_path: Path) -> None:
    content = _copy_content(settings, tmp_path)
    common = content / "en" / "common.yaml"
    original = common.read_text(encoding="utf-8")
    async with BotHarness.running(settings.model_copy(update={"content_dir": content})) as harness:
        admin, counselor = await _admin(harness), await _admin(harness, CounselorRole.COUNSELOR)
        patient = harness.new_user_id()
        await harness.enroll(patient)

        common.write_text(
            original.replace("Here is what I can do for you:", "Here is what I do {{ oops"), "utf-8"
        )
        refused = await _reload(harness, admin, "kept the last good version")
        assert f"{common}:" in (refused.text or "") and "template error" in (refused.text or "")
        await harness.say(patient, "/help", "Here is what I can do for you:")  # the last good content

        await harness.say(counselor, "/reload", "not available to you")
        common.write_text(
            original.replace("Here is what I can do for you:", "Here is what I can do:"), "utf-8"
        )
        await _reload(harness, admin, "Content reloaded")
        await harness.say(patient, "/help", "Here is what I can do:\n")


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)


async def test_the_watcher_picks_up_edits_without_a_command(settings: Settings, tmp_path: Path) -> None:
    content = _copy_content(settings, tmp_path)
    module = content / "en" / "modules" / "box_breathing.yaml"
    original = module.read_text(encoding="utf-8")
    watched = settings.model_copy(update={"content_dir": content, "content_watch_seconds": 0.2})
    async with BotHarness.running(watched) as harness:
        user = harness.new_user_id()
        await harness.enroll(user)
        # A module with an unknown category is refused: the old title keeps being shown.
        module.write_text(original.replace("category: breathing", "category: yoga"), encoding="utf-8")
        await _eventually(
            lambda: harness.runtime.refused_fingerprint is not None, "the broken edit looked at", timeout=30
        )
        menu = await harness.say(user, "/cope", "Pick an exercise")
        breathing = await harness.tap(user, menu, "Breathing", "pick one")
        assert next(label for label, _ in breathing.buttons()) == "Box breathing (3 min)"

        good = harness.runtime.content
        module.write_text(
            original.replace("title: Box breathing", "title: Square breathing"), encoding="utf-8"
        )
        await _eventually(lambda: harness.runtime.content is not good, "the fixed edit served", timeout=30)
        breathing = await harness.tap(user, menu, "Breathing", "pick one")
        assert next(label for label, _ in breathing.buttons()) == "Square breathing (3 min)"
