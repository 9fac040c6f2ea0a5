"""Coping runs and the "what works for you" ranking (bot/coping/rules.py), without Telegram."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.content.modules import Module
from bot.coping import rules as coping
from bot.core import db
from bot.core.models import CopingSession, CopingStatus, utcnow
from tests.conftest import REPO
from tests.harness import load_content_once
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]


def test_steady_help_beats_one_lucky_run() -> None:
    scores = coping.rank_runs(
        [("lucky", 9, 6)] + [("steady", 7, 5)] * 4 + [("worse", 5, 6), ("worse", 5, 5)] + [("same", 4, 4)]
    )
    assert [s.module_id for s in scores] == ["steady", "lucky", "same", "worse"]
    steady = scores[0]
    assert (steady.runs, steady.average_drop, steady.score) == (4, 2.0, 1.6)
    assert coping.helped(scores, ["steady", "lucky", "same", "worse"]) == scores[:2]
    assert coping.helped(scores, ["lucky"]) == [scores[1]]  # a module removed from content drops out


def test_best_for_a_high_craving() -> None:
    available = ["box_breathing", "urge_surfing"]
    assert coping.best_for_craving([], available) == "urge_surfing"
    assert coping.best_for_craving(coping.rank_runs([("box_breathing", 8, 5)]), available) == "box_breathing"
    assert coping.best_for_craving(coping.rank_runs([("box_breathing", 5, 7)]), available) == "urge_surfing"
    assert coping.best_for_craving([], ["box_breathing"]) == "box_breathing"
    assert coping.best_for_craving([], []) is None


async def test_a_run_from_before_to_after(sessions: Sessions, box: Module) -> None:
    patient_id = (await add_patient(sessions)).id
    now = utcnow()
    async with db.transaction(sessions) as session:
        run = await coping.begin(session, patient_id, box, now)
        with pytest.raises(ValueError, match="0-10"):
            coping.rate_before(run, 11)
        coping.rate_before(run, 8)
        coping.showing(run, box, now)
        assert run.next_step_at == now + timedelta(seconds=box.steps[0].pause)
        for step in range(len(box.steps) - 1):
            assert await coping.advance(session, run, step, now) is True
        with pytest.raises(coping.Stale):
            await coping.advance(session, run, 0, now)  # a Next left on an earlier step
        assert await coping.advance(session, run, len(box.steps) - 1, now) is False
        assert run.status is CopingStatus.RATING_AFTER and not run.stopped_early
        coping.rate_after(run, 5, now)
    async with sessions() as session:
        assert [(s.module_id, s.runs, s.average_drop) for s in await coping.ranking(session, patient_id)] == [
            ("box_breathing", 1, 3.0)
        ]


async def test_next_and_the_timer_together_advance_once(sessions: Sessions, box: Module) -> None:
    patient_id = (await add_patient(sessions)).id
    now = utcnow()
    async with db.transaction(sessions) as session:
        run = await coping.begin(session, patient_id, box, now)
        coping.rate_before(run, None)
    # Two processes (or a tap and the scheduler) read the run at step 0, then both try to advance it. (The
    # second reader's transaction ends first, as SQLite runs one at a time; its copy stays stale.)
    async with sessions() as first, sessions() as second:
        theirs = await second.get_one(CopingSession, run.id)
        await second.commit()
        mine = await first.get_one(CopingSession, run.id)
        assert await coping.advance(first, mine, 0, now) is True
        await first.commit()
        with pytest.raises(coping.Stale):
            await coping.advance(second, theirs, 0, now)


async def test_stop_early_and_a_new_run_abandons_the_old(sessions: Sessions, box: Module) -> None:
    patient_id = (await add_patient(sessions)).id
    now = utcnow()
    async with db.transaction(sessions) as session:
        run = await coping.begin(session, patient_id, box, now)
        coping.rate_before(run, 6)
        await coping.stop(session, run, now)
        assert run.status is CopingStatus.RATING_AFTER and run.stopped_early
        with pytest.raises(coping.Stale):
            await coping.stop(session, run, now)
        newer = await coping.begin(session, patient_id, box, now)
        await session.refresh(run)
        assert run.status is CopingStatus.ABANDONED
        assert (await coping.active_session(session, patient_id)) == newer
        assert await coping.abandon_stale(session, now + timedelta(hours=3), after=timedelta(hours=2)) == 1
        assert await coping.active_session(session, patient_id) is None


def test_play_the_tape_forward_does_not_suit_a_craving_of_8_or_more() -> None:
    """Issue 18, item 15: picturing the use can feed a strong craving; the others suit any craving."""
    library = load_content_once(REPO / "content").modules
    for language in ("en", "es"):
        for module in library.in_language(language):
            if module.id == "play_the_tape_forward":
                assert [module.suits(c) for c in (None, 0, 7, 8, 10)] == [True, True, True, False, False]
            else:
                assert module.suits(10), module.id
