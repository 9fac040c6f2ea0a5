"""The stand-in as other processes see it: the CLI, and a bot process that dies mid long poll."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from standin_helpers import USER, api

from devtools.simulator import TelegramStandIn

ROOT = Path(__file__).resolve().parents[2]


def test_cli_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.simulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert "--port" in done.stdout and "--rate-limit" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "devtools.simulator", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert refused.returncode == 2 and b"loopback" in refused.stderr


async def test_cli_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.simulator", "--port", "0", cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            first_line = (await process.stdout.readline()).decode()
        assert first_line.startswith("Telegram stand-in listening on http://127.0.0.1:")
        base_url = first_line.rsplit(" ", 1)[1].strip()
        async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
            sent = await client.post("/_sim/send_text", json={"user_id": USER, "text": "hello"})
            assert sent.json()["result"]["message_id"] == 1
            updates = (await client.post(api("getUpdates"), json={"timeout": 0})).json()["result"]
            assert updates[0]["message"]["text"] == "hello"
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            rest = (await process.stdout.read()).decode()
            assert await process.wait() == 0
        assert "stopped" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_killed_poller_loses_nothing(standin: TelegramStandIn) -> None:
    """A bot process dies mid long poll (connection gone); the next process gets every update."""
    url = standin.base_url + api("getUpdates")
    await standin.send_text(USER, "before the crash")
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        first = (await client.post(url, json={"timeout": 0})).json()["result"]
        assert [u["message"]["text"] for u in first] == ["before the crash"]  # received, never confirmed
        mark = len(standin.calls)
        doomed = asyncio.create_task(client.post(url, json={"timeout": 30}))
        await standin.wait_for_call("getUpdates", after=mark)  # it now waits server-side
    # leaving the client context closed its sockets: the "process" is gone
    doomed.cancel()
    await asyncio.gather(doomed, return_exceptions=True)
    await standin.send_text(USER, "while down")
    async with httpx.AsyncClient(trust_env=False, timeout=30) as restarted:
        again = (await restarted.post(url, json={"timeout": 5})).json()
        assert [u["message"]["text"] for u in again["result"]] == ["before the crash", "while down"]


async def test_restart_keeps_state_like_an_outage() -> None:
    sim = TelegramStandIn()
    await sim.start()
    port = int(sim.base_url.rsplit(":", 1)[1])
    await sim.send_text(USER, "before the outage")
    await sim.stop()
    await sim.start(port=port)
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as client:
            updates = (await client.post(api("getUpdates"), json={"timeout": 0})).json()["result"]
            assert [u["message"]["text"] for u in updates] == ["before the outage"]
    finally:
        await sim.stop()
