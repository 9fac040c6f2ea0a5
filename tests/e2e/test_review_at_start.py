"""The running bot says at start which patient-facing content files have no clinical review yet: one log
line, the count and the file names, never a text. (REQUIRE_CONTENT_REVIEW's refusal to start is tested in
tests/test_content_review.py.)"""

from __future__ import annotations

import logging

import pytest

from bot.content_check.review import content_files, is_patient_facing
from tests.conftest import REPO
from tests.harness import BotHarness


async def test_the_bot_says_at_start_which_files_are_not_reviewed(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    user = harness.new_user_id()
    await harness.say(user, "hello", harness.part("stranger.not_enrolled"))  # serving: start-up is behind us
    records = caplog.get_records("setup") + caplog.records
    [line] = [r.getMessage() for r in records if "event=content.unreviewed" in r.getMessage()]
    names = [n for n in content_files(REPO / "content") if is_patient_facing(n)]
    assert line == f"event=content.unreviewed count={len(names)} files={','.join(names)}"
    assert [r.levelno for r in records if "event=content.unreviewed" in r.getMessage()] == [logging.WARNING]
