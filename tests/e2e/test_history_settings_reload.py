"""/history, /settings and content reloading (by /reload and by the file watcher) through the real bot."""

from __future__ import annotations

import shutil
import struct
from datetime import time as clock
from pathlib import Path

from bot.core.config import Settings
from bot.core.models import CounselorRole
from devtools.simulator import BotMessage
from tests.harness import PATIENCE, BotHarness, until


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_history_is_a_chart_with_a_text_summary(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    empty = await harness.say(user, "/history", harness.part("history.empty", days=14))
    assert [label for label, _ in empty.buttons()] == [harness.text("history.days_30_button")]

    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(user, craving, "5", harness.part("checkin.ask.triggers"))
    for trigger in ("Lonely", "Tired"):  # a tie: the summary names both, as the chart shows both
        await harness.standin.tap(
            user, triggers.message_id, next(d for t, d in triggers.buttons() if t.endswith(trigger))
        )
        await harness.standin.wait_for(user, lambda m, t=trigger: any(b == f"✓ {t}" for b, _ in m.buttons()))
    mood = await harness.tap(
        user, triggers, harness.text("checkin.buttons.done"), harness.part("checkin.ask.mood")
    )
    await harness.tap(user, mood, "3", harness.part("checkin.ask.sleep"))

    chart = await harness.say(user, "/history", harness.part("history.summary", days=14, checkins=1))
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
    month = await harness.tap(
        user,
        chart,
        harness.text("history.days_30_button"),
        harness.part("history.summary", days=30, checkins=1),
    )
    assert month.kind == "photo" and month.file_bytes != chart.file_bytes


async def test_settings_change_time_zone_and_language(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    menu = await harness.say(user, "/settings", harness.part("settings.menu"))
    english = harness.text("language_name")
    assert menu.text == harness.text(
        "settings.menu", zone="America/New_York", checkin_time="20:00", language_name=english
    )
    times = await harness.tap(
        user, menu, harness.text("settings.checkin_time_button"), harness.part("onboarding.ask_checkin_time")
    )
    saved = await harness.tap(user, times, "21:00", harness.part("settings.saved"))
    assert saved.text == harness.text(
        "settings.saved", zone="America/New_York", checkin_time="21:00", language_name=english
    )

    zones = await harness.tap(
        user, menu, harness.text("settings.timezone_button"), harness.part("onboarding.ask_timezone")
    )
    await harness.tap(
        user, zones, harness.text("onboarding.other_zone_button"), harness.part("onboarding.type_timezone")
    )
    await harness.say(user, "Mars/Base", harness.part("onboarding.invalid_timezone"))
    await harness.say(
        user,
        "europe/madrid",
        harness.text("settings.saved", zone="Europe/Madrid", checkin_time="21:00", language_name=english),
    )
    languages = await harness.tap(
        user, menu, harness.text("settings.language_button"), harness.part("onboarding.ask_language")
    )
    await harness.tap(
        user, languages, harness.text("language_name", "es"), harness.part("settings.saved", "es")
    )
    patient = await harness.patient(user)
    assert patient is not None
    assert (patient.checkin_time, patient.timezone, patient.language) == (clock(21, 0), "Europe/Madrid", "es")
    assert patient.onboarding_step is None


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
        (admin, _), (counselor, _) = (
            await harness.link_counselor("Ari", CounselorRole.ADMIN),
            await harness.link_counselor("Ari", CounselorRole.COUNSELOR),
        )
        patient = harness.new_user_id()
        await harness.enroll(patient)

        shown = harness.part("help.patient_active")  # the line the edits below break, then change
        common.write_text(original.replace(shown, "Here is what I do {{ oops"), "utf-8")
        refused = await _reload(harness, admin, harness.part("content.reload_failed"))
        assert f"{common}:" in (refused.text or "") and "template error" in (refused.text or "")
        await harness.say(patient, "/help", shown)  # the last good content

        await harness.say(counselor, "/reload", harness.part("input.not_for_role"))
        common.write_text(original.replace(shown, "Here is what I can do:"), "utf-8")
        await _reload(harness, admin, harness.part("content.reloaded"))
        await harness.say(patient, "/help", "Here is what I can do:\n")


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
        await until(
            lambda: harness.runtime.refused_fingerprint is not None, PATIENCE, "the broken edit looked at"
        )
        menu = await harness.say(user, "/cope", harness.part("coping.menu"))
        breathing = await harness.tap(
            user, menu, harness.text("coping.categories.breathing"), harness.part("coping.category_intro")
        )
        box = harness.runtime.modules.get("box_breathing", "en")
        assert box is not None
        shipped = harness.text("coping.module_button", title=box.title, minutes=box.minutes)
        assert next(label for label, _ in breathing.buttons()) == shipped

        good = harness.runtime.content
        module.write_text(
            original.replace(f"title: {box.title}", "title: Square breathing"), encoding="utf-8"
        )
        await until(lambda: harness.runtime.content is not good, PATIENCE, "the fixed edit served")
        breathing = await harness.tap(
            user, menu, harness.text("coping.categories.breathing"), harness.part("coping.category_intro")
        )
        edited = harness.text("coping.module_button", title="Square breathing", minutes=box.minutes)
        assert next(label for label, _ in breathing.buttons()) == edited
