"""`python -m bot run` in its own process, configured only by BOT_TOKEN, ENCRYPTION_KEY and
TELEGRAM_API_BASE_URL (and the test database)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from bot.core.models import InviteKind
from devtools.simulator import TelegramStandIn
from tests.harness import PATIENCE, TEST_TOKEN, BotHarness, serving

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "entrypoint.sh"


async def test_run_serves_any_bot_api_server_and_stops_on_sigterm(
    cli_env: dict[str, str], harness: BotHarness
) -> None:
    # The harness's own bot is only used to create people; the process under test talks to its own stand-in.
    counselor_id = await harness.add_counselor()
    code = await harness.invite(InviteKind.PATIENT, counselor_id)
    async with TelegramStandIn(bot_username="clinic_bot", patience=PATIENCE) as other:
        env = {
            **cli_env,
            "BOT_TOKEN": TEST_TOKEN,
            "TELEGRAM_API_BASE_URL": other.base_url,
            "LOG_LEVEL": "INFO",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await other.send_text(7001, f"/start {code}")
            await serving(process, other)
            consent = await other.wait_for(7001, harness.part("consent.screen"))
            await other.tap(7001, consent.message_id, "consent:accept")
            await other.wait_for(7001, harness.part("onboarding.ask_timezone"))
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        log = stderr.decode()
        assert "event=bot.started" in log and "event=bot.stopped" in log
        assert TEST_TOKEN not in log and TEST_TOKEN.split(":")[1] not in log
    patient = await harness.patient(7001)
    assert patient is not None and patient.onboarding_step == "timezone"


async def test_the_container_entrypoint_migrates_then_runs(cli_env: dict[str, str], tmp_path: Path) -> None:
    """deploy/entrypoint.sh (the Dockerfile's entrypoint) on a new database: schema first, then the bot."""
    database = tmp_path / "fresh.sqlite3"
    async with TelegramStandIn(bot_username="clinic_bot", patience=PATIENCE) as other:
        env = {
            **cli_env,
            "PYTHON": sys.executable,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "BOT_TOKEN": TEST_TOKEN,
            "TELEGRAM_API_BASE_URL": other.base_url,
            "LOG_LEVEL": "INFO",
        }
        process = await asyncio.create_subprocess_exec(
            "sh",
            str(ENTRYPOINT),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await other.send_text(7002, "hello")
            await serving(process, other)  # once the migrations are done
            await other.wait_for(7002, lambda message: True)  # a stranger's one polite line
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert "event=bot.stopped" in stderr.decode()
    assert database.is_file()
