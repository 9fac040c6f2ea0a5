"""A hostile content edit, saved while the bot runs: the check refuses it, and strangers keep getting the
last good text, with no secret in it and no command run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.config import Settings
from tests.harness import PATIENCE, TEST_ENCRYPTION_KEY, BotHarness, until
from tests.test_content_check import _plant


async def test_an_edit_reaching_for_secrets_is_refused_and_the_last_good_text_served(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)  # what the edit tries to print
    content = tmp_path / "content"
    shutil.copytree(settings.content_dir, content)
    marker = tmp_path / "marker"
    watched = settings.model_copy(update={"content_dir": content, "content_watch_seconds": 0.2})
    async with BotHarness.running(watched) as harness:
        stranger = harness.new_user_id()
        welcome = harness.runtime.text("stranger.not_enrolled", "en")
        await harness.say(stranger, "hello", welcome)

        _plant(content, marker)  # the reply every stranger gets now reads the key; other texts run `touch`
        await until(lambda: harness.runtime.refused_fingerprint is not None, PATIENCE, "the edit looked at")
        later = harness.new_user_id()  # a stranger is answered once a day: a new one reads the text now
        await harness.say(later, "hello", welcome)

    sent = " ".join(m.text or "" for who in (stranger, later) for m in harness.standin.transcript(who))
    assert TEST_ENCRYPTION_KEY[:8] not in sent
    assert not marker.exists()
