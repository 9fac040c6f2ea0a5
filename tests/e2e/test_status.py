"""/healthz, /readyz and /metrics on a port of their own (STATUS_PORT), in long polling as in webhook mode;
/metrics behind METRICS_TOKEN; `python -m bot health`, the container's health check."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import Settings
from tests.harness import BotHarness, CommandLine, free_port, until

METRICS_TOKEN = "test-metrics-token-0123456789"


async def _answers(url: str) -> bool:
    async with httpx.AsyncClient(trust_env=False) as client:
        try:
            return (await client.get(url)).status_code == 200
        except httpx.TransportError:
            return False


def _status(harness: BotHarness, path: str) -> str:
    assert harness.settings.status_port is not None
    return f"http://127.0.0.1:{harness.settings.status_port}{path}"


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_the_status_port_serves_health_readiness_and_metrics_in_either_mode(
    settings: Settings, engine: AsyncEngine, cli: CommandLine, webhook: bool
) -> None:
    port = free_port()
    async with BotHarness.running(settings.model_copy(update={"status_port": port}), webhook=webhook) as bot:
        user = bot.new_user_id()
        await bot.enroll(user)
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(_status(bot, "/healthz"))
            ready = await client.get(_status(bot, "/readyz"))
            metrics = await client.get(_status(bot, "/metrics"))  # no METRICS_TOKEN: open, as before
            if webhook:  # the webhook's port serves the webhook alone
                beside = await client.get(f"http://127.0.0.1:{bot.settings.webhook_port}/metrics")
                assert beside.status_code == 404
        assert health.json() == {"status": "ok"} and ready.json() == {"status": "ready"}
        assert metrics.status_code == 200 and "iop_updates_handled_total" in metrics.text

        healthy = await asyncio.to_thread(cli, "health", STATUS_PORT=str(port))
        assert (healthy.returncode, healthy.stdout) == (0, f"healthy: http://127.0.0.1:{port}/healthz\n")

    gone = await asyncio.to_thread(cli, "health", STATUS_PORT=str(port))
    assert gone.returncode == 1
    assert gone.stderr == f"error: unhealthy: no answer from http://127.0.0.1:{port}/healthz (ConnectError)\n"


@pytest.mark.parametrize("own_port", [True, False], ids=["status-port", "beside-the-webhook"])
async def test_metrics_behind_a_token_answer_only_the_right_bearer(
    settings: Settings, engine: AsyncEngine, own_port: bool
) -> None:
    update: dict[str, object] = {"metrics_token": SecretStr(METRICS_TOKEN)}
    if own_port:
        update["status_port"] = free_port()
    async with BotHarness.running(settings.model_copy(update=update), webhook=not own_port) as bot:
        port = bot.settings.status_port if own_port else bot.settings.webhook_port
        url = f"http://127.0.0.1:{port}"
        # long polling: the harness does not wait for start-up
        await until(lambda: _answers(f"{url}/healthz"), timeout=15, what="the bot's /healthz")
        async with httpx.AsyncClient(trust_env=False) as client:
            without = await client.get(f"{url}/metrics")
            wrong = await client.get(f"{url}/metrics", headers={"Authorization": "Bearer not-the-token-0000"})
            basic = await client.get(f"{url}/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
            right = await client.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            health = await client.get(f"{url}/healthz")
    for refused in (without, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "iop_" not in refused.text
    assert right.status_code == 200 and "iop_outbox_depth" in right.text
    assert health.status_code == 200  # the health check needs no token
