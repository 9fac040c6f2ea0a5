"""Coping exercises: a run of a module step by step, with the craving rated before and after, and the
ranking of what works for each patient. State is in `coping_sessions`; nothing here knows about Telegram.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin.rules import CRAVING_RANGE
from bot.content.modules import Module
from bot.core.models import CopingSession, CopingStatus

ACTIVE = (CopingStatus.RATING_BEFORE, CopingStatus.RUNNING, CopingStatus.RATING_AFTER)
# The module offered after a high craving to a patient with no ratings yet: it is made for urges.
DEFAULT_FOR_CRAVING = "urge_surfing"
# A craving at or above this gets, at once, the offer of a support person, a 15-minute wait with a check-back,
# and an exercise that starts within two taps (issue 18, item 15).
STRONG_CRAVING = 8
CHECK_BACK_AFTER = timedelta(minutes=15)
# How strongly the ranking doubts a module tried only once or twice (pseudo-runs with no change).
PRIOR_RUNS = 1.0


class Stale(Exception):
    """A button from a step or run that has passed."""


def active_session_query(patient_id: int | ColumnElement[int]) -> Select[CopingSession]:
    return (
        select(CopingSession)
        .where(CopingSession.patient_id == patient_id, CopingSession.status.in_(ACTIVE))
        .order_by(CopingSession.started_at.desc(), CopingSession.id.desc())
        .limit(1)
    )


async def active_session(session: AsyncSession, patient_id: int) -> CopingSession | None:
    return await session.scalar(active_session_query(patient_id))


async def begin(session: AsyncSession, patient_id: int, module: Module, now: datetime) -> CopingSession:
    """Start a run (first the craving "before" rating). A run left unfinished is closed as abandoned."""
    await session.execute(
        update(CopingSession)
        .where(CopingSession.patient_id == patient_id, CopingSession.status.in_(ACTIVE))
        .values(status=CopingStatus.ABANDONED, next_step_at=None, finished_at=now)
    )
    run = CopingSession(
        patient_id=patient_id,
        module_id=module.id,
        status=CopingStatus.RATING_BEFORE,
        steps_total=len(module.steps),
        started_at=now,
    )
    session.add(run)
    await session.flush()
    return run


def _require(run: CopingSession, status: CopingStatus) -> None:
    if run.status is not status:
        raise Stale


def _on_scale(craving: int | None) -> int | None:
    low, high = CRAVING_RANGE
    if craving is not None and not low <= craving <= high:
        raise ValueError(f"craving is {low}-{high}")
    return craving


def rate_before(run: CopingSession, craving: int | None) -> None:
    """Record the "before" rating (None: skipped) and start at the first step."""
    _require(run, CopingStatus.RATING_BEFORE)
    run.craving_before = _on_scale(craving)
    run.status = CopingStatus.RUNNING
    run.step_index = 0


def showing(run: CopingSession, module: Module, now: datetime) -> bool:
    """The current step is being shown: set when the next one is due (a step with no pause waits for Next).

    Returns True for a last step with no pause: the "after" rating is asked right after it.
    """
    pause = module.steps[run.step_index].pause
    run.next_step_at = now + timedelta(seconds=pause) if pause > 0 else None
    if pause == 0 and run.step_index + 1 >= run.steps_total:
        run.status = CopingStatus.RATING_AFTER
        return True
    return False


async def advance(session: AsyncSession, run: CopingSession, expected_step: int, now: datetime) -> bool:
    """Go past step `expected_step`. True: there is a next step to show; False: the steps are done and the
    "after" rating is due. Raises Stale for a Next from an earlier step or a run that moved on.

    A conditional UPDATE, so a tap on Next and the end of the pause arriving together advance only once.
    """
    if run.status is not CopingStatus.RUNNING or run.step_index != expected_step:
        raise Stale
    more = expected_step + 1 < run.steps_total
    values: dict[str, object] = {"next_step_at": None, "updated_at": now}
    values.update({"step_index": expected_step + 1} if more else {"status": CopingStatus.RATING_AFTER})
    await _claim(session, run, values, CopingSession.step_index == expected_step)
    return more


async def stop(session: AsyncSession, run: CopingSession, now: datetime) -> None:
    """The patient stopped: no more steps; the "after" rating is still asked."""
    if run.status not in (CopingStatus.RATING_BEFORE, CopingStatus.RUNNING):
        raise Stale
    early = run.status is CopingStatus.RATING_BEFORE or run.step_index + 1 < run.steps_total
    values = {
        "status": CopingStatus.RATING_AFTER,
        "stopped_early": early,
        "next_step_at": None,
        "updated_at": now,
    }
    await _claim(session, run, values)


def abandon(run: CopingSession, now: datetime) -> None:
    """Set aside by a crisis reply: no more steps and no "after" question."""
    run.status, run.next_step_at, run.finished_at, run.updated_at = CopingStatus.ABANDONED, None, now, now


async def _claim(session: AsyncSession, run: CopingSession, values: dict[str, object], *where: Any) -> None:
    result = await session.execute(
        update(CopingSession)
        .where(CopingSession.id == run.id, CopingSession.status == run.status, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Stale
    await session.refresh(run)


def rate_after(run: CopingSession, craving: int | None, now: datetime) -> None:
    _require(run, CopingStatus.RATING_AFTER)
    run.craving_after = _on_scale(craving)
    run.status = CopingStatus.DONE
    run.finished_at = now


async def due_steps(session: AsyncSession, now: datetime) -> list[CopingSession]:
    """Runs whose pause is over (the normal timer was lost, e.g. to a restart)."""
    return list(
        await session.scalars(
            select(CopingSession).where(
                CopingSession.status == CopingStatus.RUNNING, CopingSession.next_step_at <= now
            )
        )
    )


async def abandon_stale(session: AsyncSession, now: datetime, *, after: timedelta) -> int:
    """Close runs nobody has touched for `after` (the patient walked away)."""
    result = await session.execute(
        update(CopingSession)
        .where(CopingSession.status.in_(ACTIVE), CopingSession.updated_at <= now - after)
        .values(status=CopingStatus.ABANDONED, next_step_at=None, finished_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- what works for you -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleScore:
    module_id: str
    runs: int  # runs rated both before and after
    average_drop: float  # craving points, before minus after
    score: float  # the drop, shrunk towards 0 for modules tried only a few times


def rank_runs(runs: Iterable[tuple[str, int, int]]) -> list[ModuleScore]:
    """Rank modules by how much they lowered this patient's craving: (module_id, before, after) per run.

    A plain average would put a module that helped once by luck above one that helped steadily; the score
    adds PRIOR_RUNS imaginary runs with no change, so evidence from more runs counts for more.
    """
    drops: dict[str, list[int]] = defaultdict(list)
    for module_id, before, after in runs:
        drops[module_id].append(before - after)
    scores = [
        ModuleScore(module_id, len(d), sum(d) / len(d), sum(d) / (len(d) + PRIOR_RUNS))
        for module_id, d in drops.items()
    ]
    return sorted(scores, key=lambda s: (-s.score, -s.runs, s.module_id))


async def ranking(session: AsyncSession, patient_id: int) -> list[ModuleScore]:
    rows = await session.execute(
        select(CopingSession.module_id, CopingSession.craving_before, CopingSession.craving_after).where(
            CopingSession.patient_id == patient_id,
            CopingSession.status == CopingStatus.DONE,
            CopingSession.craving_before.is_not(None),
            CopingSession.craving_after.is_not(None),
        )
    )
    return rank_runs((m, b, a) for m, b, a in rows if b is not None and a is not None)


def helped(scores: Sequence[ModuleScore], available: Iterable[str]) -> list[ModuleScore]:
    """The modules that lowered the craving on average, best first, among those still offered."""
    offered = set(available)
    return [s for s in scores if s.score > 0 and s.module_id in offered]


def best_for_craving(scores: Sequence[ModuleScore], available: Sequence[str]) -> str | None:
    top = helped(scores, available)
    if top:
        return top[0].module_id
    if DEFAULT_FOR_CRAVING in available:
        return DEFAULT_FOR_CRAVING
    return available[0] if available else None
