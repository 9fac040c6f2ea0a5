"""README's "Try it for real, locally", as written: its settings load, its CLI commands parse, and its
control-API calls (the `curl` lines) enroll a patient and page the counselor against the real bot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx

from bot.cli import build_parser
from bot.core.config import load_settings
from bot.core.models import InviteKind
from devtools.simulator.__main__ import parse_args
from tests.harness import BotHarness

README = Path(__file__).resolve().parents[2] / "README.md"


def _walkthrough() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Try it for real, locally\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_settings_and_commands_are_real() -> None:
    lines = _walkthrough()
    exports = dict(
        re.match(r"export (\w+)=(\S+)", line).groups()  # type: ignore[union-attr]
        for line in lines
        if line.startswith("export ") and "$(" not in line
    )
    settings = load_settings(_env_file=None, **exports)
    assert settings.telegram_api_base_url == exports["TELEGRAM_API_BASE_URL"]
    standin = parse_args([])  # the stand-in's defaults: the address the README points the bot at
    assert exports["TELEGRAM_API_BASE_URL"] == f"http://{standin.host}:{standin.port}"
    commands = [
        shlex.split(line, comments=True) for line in lines if line.startswith(".venv/bin/python -m bot")
    ]
    assert [c[3] for c in commands] == ["db", "counselor", "invite", "invite", "run"]
    for command in commands:
        build_parser().parse_args(command[3:])
    table = README.read_text(encoding="utf-8")
    assert "| `TELEGRAM_API_BASE_URL` |" in table and 'see "Try it for real, locally"' in table


async def test_the_control_api_calls_enroll_a_patient_and_page_the_counselor(harness: BotHarness) -> None:
    counselor = await harness.add_counselor("Dana Reyes")
    codes = {
        "PATIENT_CODE": await harness.invite(InviteKind.PATIENT, counselor, alias="River"),
        "COUNSELOR_CODE": await harness.invite(InviteKind.COUNSELOR, counselor),
    }
    calls = [line for line in _walkthrough() if line.startswith("curl ")]
    assert len(calls) == 13
    answers = []
    async with httpx.AsyncClient(base_url=f"{harness.standin.base_url}/_sim", timeout=60) as client:
        for line in calls:
            found = re.match(r"curl -s \$sim/(\S+)(?: -d '(.*?)')?(?:\s+#.*)?$", line)
            assert found is not None, line
            path, body = found.groups()
            if body is None:
                answer = await client.get(f"/{path}")
            else:
                for placeholder, code in codes.items():
                    body = body.replace(placeholder, code)
                answer = await client.post(f"/{path}", content=body)
            assert answer.json()["ok"], (line, answer.text)
            answers.append(answer.json()["result"])
    page, transcript = answers[-2:]
    assert page["chat_id"] == 2001
    assert harness.runtime.text("escalation.acknowledge_button", "en") in [
        label for label, _ in page["buttons"]
    ]
    patient = await harness.patient(1001)
    assert patient is not None and patient.alias == "River" and patient.language == "en"
    assert patient.timezone == "America/Chicago" and len(transcript) >= 5
