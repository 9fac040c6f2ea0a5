"""Fixtures for the Telegram stand-in tests: a running stand-in, a real PTB Bot, a raw httpx client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
from standin_helpers import make_bot

from devtools.simulator import TelegramStandIn


@pytest.fixture
async def standin() -> AsyncIterator[TelegramStandIn]:
    sim = TelegramStandIn()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
    # nothing of the stand-in may outlive stop()
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leftovers, leftovers


@pytest.fixture
async def bot(standin: TelegramStandIn) -> AsyncIterator[telegram.Bot]:
    async with make_bot(standin) as ptb_bot:
        yield ptb_bot


@pytest.fixture
async def http(standin: TelegramStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=standin.base_url, trust_env=False, timeout=10) as client:
        yield client
