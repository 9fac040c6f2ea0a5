"""`python -m bot demo` as a newcomer uses it: a real subprocess, typed lines, the consent and set-up."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.harness import SHIPPED_CONTENT, STARTUP, load_content_once, part

REPO = Path(__file__).resolve().parents[2]


def _text(key: str, **variables: object) -> str:
    return load_content_once(SHIPPED_CONTENT).catalog.render(key, "en", **variables)


class Session:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen = ""

    async def expect(self, text: str, timeout: float = 60) -> None:
        assert self.process.stdout is not None

        async def read_until() -> None:
            while text not in self.seen:
                chunk = await self.process.stdout.read(4096)  # type: ignore[union-attr]
                if not chunk:
                    raise AssertionError(f"demo ended before {text!r}:\n{self.seen}")
                self.seen += chunk.decode()

        try:
            await asyncio.wait_for(read_until(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {text!r} within {timeout}s:\n{self.seen}") from None
        self.seen = self.seen[self.seen.index(text) + len(text) :]

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()


async def _start(tmp_path: Path) -> Session:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "DATABASE_"))}
    env["PYTHONPATH"] = str(REPO)  # the demo lives in the source checkout (devtools/), not in the package
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "demo",
        "--database",
        str(tmp_path / "demo.sqlite3"),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return Session(process)


async def test_demo_reaches_consent_and_setup_and_switches_chats(tmp_path: Path) -> None:
    demo = await _start(tmp_path)
    await demo.expect(f"[#1] {_text('consent.accept_button')}", STARTUP)
    await demo.type("#1")
    await demo.expect(part("onboarding.ask_timezone"))
    await demo.type("#5")
    await demo.expect(part("onboarding.ask_checkin_time"))
    await demo.type("9pm")
    await demo.expect(part("onboarding.ask_language"))
    await demo.type("!counselor")
    await demo.expect(part("counselor.welcome"))
    await demo.type("!patient")
    await demo.type("#1")
    done = _text("onboarding.done", zone="", checkin_time="21:00", language_name="")
    await demo.expect(next(line for line in done.splitlines() if "21:00" in line))
    await demo.expect(part("schedule.reminder", title="Evening IOP group"))  # the demo group's next session
    await demo.expect(f"[#3] {_text('schedule.buttons.cannot')}")
    await demo.type("#9")
    await demo.expect("no button #9")
    await demo.type("!quit")
    await demo.expect("Demo ended.")
    assert await asyncio.wait_for(demo.process.wait(), 20) == 0
    # The terminal is the chat: log lines go to the file it names, never into the conversation.
    assert " INFO " not in demo.seen and " WARNING " not in demo.seen and "event=" not in demo.seen
    assert "event=bot.started" in (tmp_path / "demo.log").read_text()


async def test_demo_ends_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    demo = await _start(tmp_path)
    await demo.expect(f"[#1] {_text('consent.accept_button')}", STARTUP)
    demo.process.send_signal(signal.SIGINT)
    await demo.expect("Demo ended.")
    assert await asyncio.wait_for(demo.process.wait(), 20) == 0
    assert "Traceback" not in demo.seen


async def test_demo_shows_the_messages_the_bot_edits(tmp_path: Path) -> None:
    """A tapped trigger gets a tick, an edit of the question's buttons: the demo prints it again."""
    demo = await _start(tmp_path)
    await demo.expect(f"[#1] {_text('consent.accept_button')}", STARTUP)
    await demo.type("#1")
    await demo.expect(part("onboarding.ask_timezone"))
    await demo.type("#5")
    await demo.expect(part("onboarding.ask_checkin_time"))
    await demo.type("9pm")
    await demo.expect(part("onboarding.ask_language"))
    await demo.type("#1")
    await demo.expect(
        f"[#3] {_text('schedule.buttons.cannot')}"
    )  # the demo group's reminder: then no message comes unasked
    await demo.type("/checkin")
    await demo.expect(_text("checkin.ask.craving").splitlines()[0])
    await demo.type("#3")
    await demo.expect(_text("checkin.ask.triggers").splitlines()[0])
    lonely = _text("checkin.buttons.triggers.lonely")
    await demo.expect(f"[#3] {lonely}")
    await demo.type("#3")
    await demo.expect("(edited its message):")
    await demo.expect(f"[#3] ✓ {lonely}")
    await demo.type("!quit")
    await demo.expect("Demo ended.")
    assert await asyncio.wait_for(demo.process.wait(), 20) == 0
