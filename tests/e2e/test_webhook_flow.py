"""Webhook mode: the stand-in posts updates to the bot with the secret header, as Telegram does."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import Settings
from devtools.simulator import Fault
from tests.harness import TEST_TOKEN, TEST_WEBHOOK_SECRET, BotHarness, CommandLine, standin_in_thread

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def hooked(settings: Settings, engine: AsyncEngine) -> AsyncIterator[BotHarness]:
    async with BotHarness.running(settings, webhook=True) as running:
        yield running


def _local(harness: BotHarness, path: str) -> str:
    return f"http://127.0.0.1:{harness.settings.webhook_port}{path}"


async def _bot_api(harness: BotHarness, method: str) -> Any:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(f"{harness.standin.base_url}/bot{TEST_TOKEN}/{method}")
    return response.json()


def _update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Forger"}
    message = {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": user_id, "type": "private", "first_name": "Forger"},
        "from": user,
        "text": text,
    }
    return {"update_id": update_id, "message": message}


async def test_updates_come_by_post_and_the_whole_enrolment_works(hooked: BotHarness) -> None:
    info = (await _bot_api(hooked, "getWebhookInfo"))["result"]
    assert info["url"] == hooked.settings.webhook_url
    # Long polling is refused while a webhook is set (Telegram's 409), so every answer below came by POST.
    assert (await _bot_api(hooked, "getUpdates"))["error_code"] == 409

    user = hooked.new_user_id()
    await hooked.enroll(user)
    await hooked.say(user, "/help", "/checkin")
    patient = await hooked.patient(user)
    assert patient is not None and patient.onboarding_step is None


async def test_a_wrong_or_missing_secret_is_refused_and_not_handled(hooked: BotHarness) -> None:
    user = hooked.new_user_id()
    url = hooked.settings.webhook_url
    assert url is not None
    body = json.dumps(_update(900_001, user, "/help"))
    async with httpx.AsyncClient(trust_env=False) as client:
        wrong = await client.post(
            url,
            content=body,
            headers={SECRET_HEADER: "not-the-secret-at-all", "content-type": "application/json"},
        )
        missing = await client.post(url, content=body, headers={"content-type": "application/json"})
        garbage = await client.post(url, content=b"{not json", headers={SECRET_HEADER: TEST_WEBHOOK_SECRET})
        metrics = (await client.get(_local(hooked, "/metrics"))).text
    assert (wrong.status_code, missing.status_code, garbage.status_code) == (403, 403, 400)
    await asyncio.sleep(0.5)
    assert hooked.standin.transcript(user) == []  # none of them reached a handler
    assert 'iop_webhook_refused_total{reason="secret"} 2.0' in metrics
    assert 'iop_webhook_refused_total{reason="body"} 1.0' in metrics


# Bodies that are not an update: none is handled, none is a server error, none leaves a traceback.
NOT_UPDATES = [
    b"[]",
    b"null",
    b"5",
    b'"hello"',
    b'{"message": 5}',
    b'{"update_id": "7"}',
    b'{"update_id": true}',
    b'{"update_id": 7, "message": 5}',
    b'{"update_id": 7, "message": {"text": "private words"}}',
    b'{"update_id": 7, "message": {"message_id": 1, "date": "soon", "chat": [], "text": "private words"}}',
    b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
    b"\xff\xfe private words",
]


async def test_a_body_that_is_not_an_update_is_400_with_one_warning_and_no_traceback(
    hooked: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    url = hooked.settings.webhook_url
    assert url is not None
    headers = {SECRET_HEADER: TEST_WEBHOOK_SECRET, "content-type": "application/json"}
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(trust_env=False) as client:
        answers = [await client.post(url, content=body, headers=headers) for body in NOT_UPDATES]
        metrics = (await client.get(_local(hooked, "/metrics"))).text
    assert [answer.status_code for answer in answers] == [400] * len(NOT_UPDATES)
    assert f'iop_webhook_refused_total{{reason="body"}} {float(len(NOT_UPDATES))}' in metrics
    serving = ("bot.webhook", "uvicorn", "starlette", "telegram")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(serving)]
    assert [r.getMessage() for r in warnings] == ["event=webhook.refused reason=body"] * len(NOT_UPDATES)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "private words" not in caplog.text and "Traceback" not in caplog.text


def _post_chunked(port: int, path: str, parts: Iterator[bytes]) -> tuple[str, bool]:
    """POST `parts` as a chunked body (no Content-Length) on a plain socket, as a sender who keeps sending
    until the bot hangs up would; then read the answer. Returns the status line and whether every part
    went out. (httpx cannot show this: it reads an answer only once the whole body is sent, and loses an
    early one when the server hangs up.)"""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"{SECRET_HEADER}: {TEST_WEBHOOK_SECRET}\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        finished = True
        try:
            for part in parts:
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the bot hung up
            finished = False
        answer = sock.makefile("rb").readline().decode().strip()
    return answer, finished


async def test_a_chunked_body_over_the_limit_is_refused_while_it_comes(hooked: BotHarness) -> None:
    """No Content-Length to refuse up front: the limit holds while reading, and the rest is never read."""
    user = hooked.new_user_id()
    # A real update (were it read whole, /help would be answered) padded far past the limit.
    head = json.dumps(_update(900_002, user, "/help"))[:-1] + ', "padding": "'

    def parts() -> Iterator[bytes]:
        yield head.encode()
        chunk = b"a" * 65_536
        yield from itertools.repeat(chunk, 512)  # 32 MB
        yield b'"}'

    path = urlsplit(hooked.settings.webhook_url or "").path
    answer, finished = await asyncio.to_thread(_post_chunked, hooked.settings.webhook_port, path, parts())
    assert answer.startswith("HTTP/1.1 413")
    assert not finished  # the bot stopped reading and hung up: the sender could not send it all
    async with httpx.AsyncClient(trust_env=False) as client:
        metrics = (await client.get(_local(hooked, "/metrics"))).text
    assert 'iop_webhook_refused_total{reason="too_large"} 1.0' in metrics
    await asyncio.sleep(0.5)
    assert hooked.standin.transcript(user) == []


async def test_health_readiness_and_metrics(hooked: BotHarness, cli: CommandLine) -> None:
    user = hooked.new_user_id()
    await hooked.enroll(user)
    async with httpx.AsyncClient(trust_env=False) as client:
        health = await client.get(_local(hooked, "/healthz"))
        ready = await client.get(_local(hooked, "/readyz"))
        metrics = await client.get(_local(hooked, "/metrics"))
    assert health.status_code == 200 and ready.status_code == 200
    # without STATUS_PORT, `python -m bot health` asks the webhook's port
    port = str(hooked.settings.webhook_port)
    assert (await asyncio.to_thread(cli, "health", WEBHOOK_PORT=port)).returncode == 0
    assert ready.json() == {"status": "ready"}
    text = metrics.text
    handled = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("iop_updates_handled_total{")
    }
    assert handled["message"] >= 1 and handled["callback_query"] >= 2  # /start, then consent and set-up taps
    assert "iop_update_handler_seconds_bucket" in text
    for gauge in (
        "iop_outbox_depth",
        "iop_outbox_oldest_due_seconds",
        "iop_escalations_open",
        "iop_escalation_oldest_unacknowledged_seconds",
    ):
        assert f"\n{gauge} " in text
    assert str(user) not in text  # ids of people never become labels


async def test_stopping_finishes_the_update_under_way(hooked: BotHarness) -> None:
    """SIGTERM's path (serve's stop): the update being handled is answered before the process ends."""
    user = hooked.new_user_id()
    await hooked.enroll(user)
    hooked.standin.inject("sendMessage", Fault.slow(1.5), chat_id=user)
    mark = hooked.standin.mark(user)
    calls = len(hooked.standin.calls)
    await hooked.standin.send_text(user, "/help")
    await hooked.standin.wait_for_call("sendMessage", after=calls, timeout=10)  # the handler is mid-reply
    await hooked.stop()
    assert [m for m in hooked.standin.transcript(user)[mark:] if "/checkin" in m.text]
    # ... and answered 200 once handled: had the request been cut, Telegram would still hold the update.
    assert hooked.standin.pending_updates == 0
    await hooked.start()  # the fixture stops it again


def test_a_taken_port_is_one_clear_error(cli: CommandLine, engine: AsyncEngine) -> None:
    with socket.socket() as taken, standin_in_thread() as tg:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            "run",
            "--webhook",
            BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_BASE_URL=tg.base_url,
            WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
            WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
            WEBHOOK_PORT=str(port),
        )
    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
