"""Handlers in the real python-telegram-bot Application (`bot.app.build_application`), offline: updates are
fed to `process_update`, and every Bot API call is answered by `OfflineRequest`, which records it. No HTTP, no
stand-in: the settings point Telegram at a closed port, so a call that slipped past would fail the test.

The Application is built exactly as the bot builds it; its builder sets timeouts, which PTB does not allow
together with `.request(...)`, so the offline request replaces the bot's two requests after the build.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.content_check.loader import Content
from bot.core import db
from bot.core.config import Settings
from bot.core.models import DoseDay, DoseStatus, Escalation, EscalationStatus, MedicationKind, MedicationPlan
from bot.handlers import medication as medication_handlers
from bot.medcare.callbacks import DOSE, DoseButton
from bot.risk import escalation as escalation_rules
from bot.risk.callbacks import ALERT, AlertButton
from bot.runtime import Runtime
from tests.harness import SHIPPED_CONTENT, load_content_once
from tests.records import add_patient

DATE = 1_764_000_000  # 2025-11-24: any fixed moment will do, nothing here reads it
_ids = itertools.count(1)
# Bot API method names are case-insensitive (the bot spells some in lower case): recorded as documented
_METHODS = {name.lower(): name for name in ("getMe", "sendMessage", "answerCallbackQuery")}


@dataclass(frozen=True)
class Call:
    method: str
    parameters: dict[str, Any]


class OfflineRequest(BaseRequest):
    """Answers the Bot API without a network: getMe, sendMessage and answerCallbackQuery get canned results,
    anything else fails the test."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        name = _METHODS.get(url.rsplit("/", 1)[-1].lower(), url.rsplit("/", 1)[-1])
        parameters = dict(request_data.parameters) if request_data is not None else {}
        result: object
        if name == "getMe":
            result = {"id": 4242, "is_bot": True, "first_name": "IOP", "username": "iop_test_bot"}
        else:
            self.calls.append(Call(name, parameters))
            if name == "sendMessage":
                chat = {"id": parameters["chat_id"], "type": "private"}
                result = {"message_id": next(_ids), "date": DATE, "chat": chat, "text": parameters["text"]}
            elif name == "answerCallbackQuery":
                result = True
            else:
                return 400, json.dumps(
                    {"ok": False, "error_code": 400, "description": f"offline: {name}"}
                ).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()


@pytest.fixture(scope="module")
def content() -> Content:
    """Loaded once for this file (it takes seconds); handlers only read it."""
    return load_content_once(SHIPPED_CONTENT)


@dataclass
class Offline:
    runtime: Runtime
    application: Application  # type: ignore[type-arg]
    request: OfflineRequest

    async def feed(self, data: dict[str, Any]) -> list[Call]:
        """Handle one update as the bot would; the Bot API calls it made."""
        before = len(self.request.calls)
        await self.application.process_update(
            Update.de_json({"update_id": next(_ids), **data}, self.application.bot)
        )
        return self.request.calls[before:]

    def text(self, key: str, language: str = "en", **variables: object) -> str:
        return self.runtime.text(key, language, **variables)


@pytest.fixture
async def offline(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], content: Content
) -> AsyncIterator[Offline]:
    runtime = Runtime(settings, engine, sessions, content)
    application = build_application(runtime)
    request = OfflineRequest()
    application.bot._request = (request, request)  # see the module's docstring
    async with application:  # initialize: getMe, answered offline
        yield Offline(runtime, application, request)


def _user(user_id: int, language: str = "en") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Sam", "language_code": language}


def _message(user_id: int, text: str, language: str = "en") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": DATE,
        "chat": {"id": user_id, "type": "private"},
        "from": _user(user_id, language),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"message": message}


def _tap(user_id: int, data: str) -> dict[str, Any]:
    return {
        "callback_query": {
            "id": str(next(_ids)),
            "chat_instance": "offline",
            "from": _user(user_id),
            "data": data,
            "message": {
                "message_id": next(_ids),
                "date": DATE,
                "chat": {"id": user_id, "type": "private"},
                "text": "an old message",
            },
        }
    }


def _sent(chat_id: int, text: str) -> Call:
    return Call("sendMessage", {"chat_id": chat_id, "text": text})


@pytest.mark.parametrize("language", ["en", "es"])
async def test_help_for_a_stranger_is_the_not_enrolled_line_in_their_language(
    offline: Offline, language: str
) -> None:
    calls = await offline.feed(_message(51_001, "/help", language))
    assert calls == [_sent(51_001, offline.text("stranger.not_enrolled", language))]
    # Once a day: the same stranger asking again gets no second answer.
    assert await offline.feed(_message(51_001, "/help", language)) == []


async def test_start_with_a_bad_invite_code_says_the_code_is_not_valid(offline: Offline) -> None:
    calls = await offline.feed(_message(51_002, "/start NOT-A-REAL-CODE"))
    assert calls == [_sent(51_002, offline.text("start.code_invalid"))]


async def test_an_unknown_command_from_a_patient_says_what_the_bot_knows(offline: Offline) -> None:
    patient = await add_patient(offline.runtime.sessions)
    calls = await offline.feed(_message(patient.telegram_user_id, "/frobnicate"))
    assert calls == [_sent(patient.chat_id, offline.text("input.unknown_command"))]


async def test_a_button_no_handler_knows_is_answered_as_expired(offline: Offline) -> None:
    patient = await add_patient(offline.runtime.sessions)
    calls = await offline.feed(_tap(patient.telegram_user_id, "forged:button:1"))
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert calls[0].parameters["text"] == offline.text("input.button_expired")


async def test_a_forged_alert_button_from_a_patient_is_refused_and_changes_nothing(offline: Offline) -> None:
    sessions = offline.runtime.sessions
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        escalation = Escalation(patient_id=patient.id, level="imminent", category="suicide", source="message")
        session.add(escalation)
        await session.flush()
        forged = ALERT.pack(AlertButton(escalation.id, "ack", escalation_rules.seen(escalation)))
    calls = await offline.feed(_tap(patient.telegram_user_id, forged))
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert calls[0].parameters["text"] == offline.text("escalation.refused")
    async with sessions() as session:
        stored = await session.get(Escalation, escalation.id)
        assert stored is not None
        assert (stored.status, stored.acknowledged_by) == (EscalationStatus.OPEN, None)


# Office hours are the default, Mon-Fri 08:00-18:00 in America/New_York.
FRIDAY_NIGHT = datetime(2026, 12, 12, 3, 0, tzinfo=UTC)  # Friday 2026-12-11 22:00 in New York
FRIDAY_MORNING = datetime(2026, 12, 11, 15, 0, tzinfo=UTC)  # the same Friday, 10:00


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("now", [FRIDAY_NIGHT, FRIDAY_MORNING], ids=["office closed", "office open"])
async def test_ran_out_says_when_the_clinic_can_help(
    offline: Offline, monkeypatch: pytest.MonkeyPatch, language: str, now: datetime
) -> None:
    """ "Ran out" sends the patient to the clinic "today" only while it is open; at night, to call when it
    next opens (Monday 8:00, in the patient's time zone), and to the after-hours number before then."""
    sessions = offline.runtime.sessions
    patient = await add_patient(sessions, timezone="America/New_York", language=language)
    async with db.transaction(sessions) as session:
        session.add(
            MedicationPlan(
                patient_id=patient.id,
                kind=MedicationKind.METHADONE,
                set_by="patient",
                active=True,
                dose_time=time(8, 0),
            )
        )
        dose = DoseDay(
            patient_id=patient.id, local_day=date(2026, 12, 11), closes_at=now + timedelta(hours=1)
        )
        session.add(dose)
    monkeypatch.setattr(medication_handlers, "utcnow", lambda: now)
    calls = await offline.feed(
        _tap(patient.telegram_user_id, DOSE.pack(DoseButton(dose.id, DoseStatus.RAN_OUT)))
    )
    [reply] = [c.parameters["text"] for c in calls if c.method == "sendMessage"]
    when = ""
    if now == FRIDAY_NIGHT:
        opens = (
            datetime(2026, 12, 14, 8, 0).strftime(offline.text("promise.time_format", language)).lstrip("0")
        )
        monday = offline.text("promise.weekdays.0", language)
        when = offline.text("promise.when.weekday", language, weekday=monday, time=opens)
    expected = offline.text(
        "meds.dose.answers.ran_out", language, told=True, agonist=True, naltrexone=False, when=when
    )
    assert reply == expected
    clinic = offline.runtime.clinic
    assert clinic["clinic_phone"] in reply
    assert (clinic["after_hours_phone"] in reply) is (now == FRIDAY_NIGHT)
    # The words differ, not only the time: "today" in office hours, never after them.
    today = offline.text(
        "meds.dose.answers.ran_out", language, told=True, agonist=True, naltrexone=False, when=""
    )
    assert (reply == today) is (now == FRIDAY_MORNING)
