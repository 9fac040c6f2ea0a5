"""The coping toolbox through the real bot: the menu, a module step by step, ratings, the ranking."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy import select

from bot.core.config import Settings
from bot.core.models import CopingSession, CopingStatus
from devtools.simulator import BotMessage
from tests.harness import BotHarness

QUICK_MODULE = """\
id: quick_test
title: Quick test
category: grounding
minutes: 1
summary: Three short steps for the test suite.
steps:
  - text: First step.
    pause: 1
  - text: Second step.
    pause: 1
  - text: Last step.
"""


async def _press(harness: BotHarness, user: int, message: BotMessage, label: str) -> BotMessage:
    """Tap a button and return the next message the bot sends."""
    return await harness.tap(user, message, label, "")


async def _run_module(
    harness: BotHarness, user: int, start: BotMessage, before: str, after: str, *, stop_at: int | None = None
) -> BotMessage:
    """From the "before" question: rate, tap Next through every step (or Stop at a step), rate again."""
    mark = harness.standin.mark(user)
    message, number = await _press(harness, user, start, before), 1
    while message.buttons():  # the last step comes without buttons, followed by the "after" question
        assert f"· {number}/" in (message.text or ""), message.text
        mark = harness.standin.mark(user)
        message = await _press(
            harness,
            user,
            message,
            harness.text("coping.stop_button") if stop_at == number else harness.text("coping.next_button"),
        )
        number += 1
        if harness.part("coping.rate_after") in (message.text or ""):
            break
    rate = await harness.standin.wait_for(user, harness.part("coping.rate_after"), after=mark)
    return await harness.tap(user, rate, after, "craving")


async def test_a_module_with_ratings_then_what_works_for_you(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    menu = await harness.say(user, "/cope", harness.part("coping.menu"))
    assert "★" not in (menu.text or "")
    assert [label for label, _ in menu.buttons()][:2] == [
        harness.text("coping.categories.breathing"),
        harness.text("coping.categories.relaxation"),
    ]
    breathing = await harness.tap(
        user, menu, harness.text("coping.categories.breathing"), harness.part("coping.category_intro")
    )
    start = await harness.tap(
        user, breathing, harness.module_title("box_breathing"), harness.part("coping.rate_before")
    )

    done = await _run_module(harness, user, start, "8", "4")
    assert harness.part("coping.done_lower", before=8, after=4) in (done.text or "")
    # An urge-surfing run that did not lower the craving, stopped at step 2.
    menu = await harness.say(user, "/cope", harness.part("coping.menu"))
    urges = await harness.tap(
        user, menu, harness.text("coping.categories.urge_management"), harness.part("coping.category_intro")
    )
    start = await harness.tap(
        user, urges, harness.module_title("urge_surfing"), harness.part("coping.rate_before")
    )
    stayed = await _run_module(harness, user, start, "6", "6", stop_at=2)
    assert harness.part("coping.done_same", after=6) in (stayed.text or "")

    async with harness.runtime.sessions() as session:
        runs = list(await session.scalars(select(CopingSession).order_by(CopingSession.id)))
    assert [(r.module_id, r.craving_before, r.craving_after, r.status, r.stopped_early) for r in runs] == [
        ("box_breathing", 8, 4, CopingStatus.DONE, False),
        ("urge_surfing", 6, 6, CopingStatus.DONE, True),
    ]
    # What helped this patient is now on top of the menu, and offered first after a high craving.
    menu = await harness.say(user, "/cope", harness.text("coping.menu_for_you"))
    assert menu.buttons()[0][0] == harness.text(
        "coping.for_you_button", title=harness.module_title("box_breathing")
    )
    helped_not = harness.text("coping.for_you_button", title=harness.module_title("urge_surfing"))
    assert not any(label == helped_not for label, _ in menu.buttons())
    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    question = await harness.tap(
        user, craving, "7", harness.part("checkin.ask.triggers")
    )  # (8 or more: offered at once)
    for _ in range(4):  # skip triggers, mood, sleep, use
        question = await _press(harness, user, question, harness.text("checkin.buttons.skip"))
    mark = harness.standin.mark(user)
    await harness.tap(
        user, question, harness.text("checkin.buttons.skip"), harness.part("checkin.thanks")
    )  # the note
    offer = await harness.standin.wait_for(
        user,
        harness.part("checkin.high_craving_helped", title=harness.module_title("box_breathing")),
        after=mark,
    )
    assert offer.buttons()[0][0] == harness.text(
        "checkin.start_button", title=harness.module_title("box_breathing")
    )
    again = await harness.tap(
        user,
        offer,
        harness.text("checkin.start_button", title=harness.module_title("box_breathing")),
        harness.part("coping.rate_before"),
    )
    assert again.buttons()


async def test_pauses_advance_by_themselves_and_typing_mid_exercise(
    settings: Settings, tmp_path: Path
) -> None:
    content = tmp_path / "content"
    shutil.copytree(settings.content_dir, content)
    (content / "en" / "modules" / "quick_test.yaml").write_text(QUICK_MODULE, encoding="utf-8")
    async with BotHarness.running(settings.model_copy(update={"content_dir": content})) as harness:
        user = harness.new_user_id()
        await harness.enroll(user)
        menu = await harness.say(user, "/cope", harness.part("coping.menu"))
        grounding = await harness.tap(
            user, menu, harness.text("coping.categories.grounding"), harness.part("coping.category_intro")
        )
        start = await harness.tap(user, grounding, "Quick test", harness.part("coping.rate_before"))
        first = await harness.tap(user, start, harness.text("coping.skip_button"), "First step")
        second = await harness.standin.wait_for(user, "Second step")  # nobody tapped Next
        # The first step's buttons went when the second came.
        assert not next(
            m for m in harness.standin.transcript(user) if m.message_id == first.message_id
        ).buttons()
        reminder = await harness.say(
            user, "I feel weird", harness.part("coping.mid_exercise", title="Quick test")
        )
        assert "Quick test" in (reminder.text or "") and [b for b, _ in reminder.buttons()] == [
            harness.text("coping.next_button"),
            harness.text("coping.stop_button"),
        ]
        await harness.standin.wait_for(user, "Last step")
        await harness.standin.wait_for(user, harness.part("coping.rate_after"))
        assert "· 2/3" in (second.text or "")
        # A typed rating works as well as a tap; a Next left on an old step is answered, and does nothing.
        await harness.say(user, "2", harness.part("coping.done_unrated"))
        query = await harness.standin.tap_raw(user, first.message_id, first.buttons()[0][1])
        answer = await harness.standin.wait_for_callback_answer(query)
        assert harness.part("coping.stale") in answer.get("text", "")


async def test_an_exercise_stops_when_consent_is_withdrawn(settings: Settings, tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(settings.content_dir, content)
    (content / "en" / "modules" / "quick_test.yaml").write_text(QUICK_MODULE, encoding="utf-8")
    async with BotHarness.running(settings.model_copy(update={"content_dir": content})) as harness:
        user = harness.new_user_id()
        patient_id = await harness.enroll(user)
        menu = await harness.say(user, "/cope", harness.part("coping.menu"))
        grounding = await harness.tap(
            user, menu, harness.text("coping.categories.grounding"), harness.part("coping.category_intro")
        )
        start = await harness.tap(user, grounding, "Quick test", harness.part("coping.rate_before"))
        await harness.tap(user, start, harness.text("coping.skip_button"), "First step")
        confirm = await harness.say(user, "/revoke", harness.part("revoke.confirm_prompt"))
        await harness.tap(user, confirm, harness.text("revoke.confirm_button"), "")
        # When the first pause ends the run is closed instead of showing the next step.
        for _ in range(100):
            async with harness.runtime.sessions() as session:
                run = await session.scalar(
                    select(CopingSession).where(CopingSession.patient_id == patient_id)
                )
            if run is not None and run.status is CopingStatus.ABANDONED:
                break
            await asyncio.sleep(0.05)
        assert run is not None and run.status is CopingStatus.ABANDONED
        assert not any("Second step" in (m.text or "") for m in harness.standin.transcript(user))
