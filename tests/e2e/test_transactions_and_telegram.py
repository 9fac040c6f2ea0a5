"""No Telegram call while a database transaction is open: a tap's answer, the edit of its buttons and the
replies all go out after the handler's transaction has committed. (On SQLite a transaction holds the
database-wide write lock: a Telegram round trip inside one would keep every other chat waiting.)

The watch counts, per asyncio task, the transactions open on the bot's engine (SQLAlchemy's events) and looks
at that count whenever the bot makes a Bot API request, from the task making it: a handler's transaction and
its own Telegram calls are in one task, while the sender's and the scheduler's run beside it in theirs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.request import HTTPXRequest

from tests.e2e.test_checkin_flow import _toggle
from tests.harness import BotHarness


class TransactionWatch:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.open: Counter[asyncio.Task[Any] | None] = Counter()
        self.began_in: dict[int, asyncio.Task[Any] | None] = {}  # connection -> the task that began it
        self.transactions = 0
        self.calls: list[str] = []  # Bot API methods the bot called
        self.inside: list[str] = []  # ... of which with a transaction open in the calling task
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)

    def close(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)

    def _begin(self, connection: object) -> None:
        task = self.began_in[id(connection)] = asyncio.current_task()
        self.open[task] += 1
        self.transactions += 1

    def _end(self, connection: object) -> None:
        if id(connection) in self.began_in:
            self.open[self.began_in.pop(id(connection))] -= 1

    def request(self, url: str) -> None:
        method = url.rsplit("/", 1)[-1]
        self.calls.append(method)
        if self.open[asyncio.current_task()]:
            self.inside.append(method)


@pytest.fixture
def watch(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[TransactionWatch]:
    watching = TransactionWatch(harness.runtime.engine)
    request = HTTPXRequest.do_request

    async def watched(self: HTTPXRequest, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        watching.request(url)
        return await request(self, url, *args, **kwargs)

    monkeypatch.setattr(HTTPXRequest, "do_request", watched)
    yield watching
    watching.close()


async def test_every_tap_is_answered_edited_and_replied_to_after_its_commit(
    harness: BotHarness, watch: TransactionWatch
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)  # consent, time zone, check-in time, language
    # A crisis message: the screener's question is tapped; the counselor looks, then acknowledges.
    permission = await harness.say(
        user, "im going to kill myself tonight", harness.part("cssrs.intro_alerted")
    )
    question = await harness.tap(
        user, permission, harness.text("cssrs.ok_button"), harness.part("cssrs.questions.wish_dead")
    )
    await harness.tap(
        user, question, harness.text("cssrs.no_button"), harness.part("cssrs.questions.thoughts")
    )
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    await harness.tap(
        counselor_user, alert, harness.text("escalation.details_button"), harness.part("escalation.details")
    )
    await harness.standin.tap(counselor_user, alert.message_id, alert.buttons()[0][1])
    await harness.standin.wait_for(counselor_user, harness.part("escalation.acknowledged", counselor="Sam"))
    # A check-in: a rating, then a trigger ticked (the tapped message's keyboard is edited).
    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(user, craving, "3", harness.part("checkin.ask.triggers"))
    await _toggle(harness, user, triggers, harness.text("checkin.buttons.triggers.stress"))
    # The coping menu, an exercise and its first rating.
    menu = await harness.say(user, "/cope", harness.part("coping.menu"))
    breathing = await harness.tap(
        user, menu, harness.text("coping.categories.breathing"), harness.part("coping.category_intro")
    )
    start = await harness.tap(
        user, breathing, harness.module_title("box_breathing"), harness.part("coping.rate_before")
    )
    await harness.tap(user, start, "5", "1/")
    # History, settings, the safety plan.
    history = await harness.say(user, "/history", "14 days")
    await harness.tap(user, history, harness.text("history.days_30_button"), "30 days")
    settings = await harness.say(user, "/settings", harness.part("settings.menu"))
    await harness.tap(
        user,
        settings,
        harness.text("settings.checkin_time_button"),
        harness.part("onboarding.ask_checkin_time"),
    )
    plan = await harness.say(user, "/safetyplan", harness.part("plan.intro"))
    await harness.tap(user, plan, harness.text("plan.not_now_button"), "")
    # Data rights and consent.
    prompt = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    await harness.tap(user, prompt, harness.text("deleteme.cancel_button"), "")
    revoke = await harness.say(user, "/revoke", harness.part("revoke.confirm_prompt"))
    await harness.tap(user, revoke, harness.text("revoke.cancel_button"), "")

    # The last tap returned when its message came; its answer may not have reached the stand-in yet: wait
    # (up to 10 s) for the 18th answer, then check there were no more.
    for _ in range(200):
        if watch.calls.count("answerCallbackQuery") >= 18:
            break
        await asyncio.sleep(0.05)
    assert (
        watch.transactions > 0 and watch.calls.count("answerCallbackQuery") == 18
    )  # every tap above, each answered once
    assert watch.inside == []
