"""Who may use a command or a button, said once per handler instead of at the top of each.

Each decorator turns `handler(t, person[, button])` into a python-telegram-bot callback: it opens the turn,
checks the sender and, for a button, reads its data with the feature's codec (bot/<feature>/callbacks.py).
Data that does not parse (forged, from an old version, an id no row can have) is answered like any stale
button, before any query could use it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from telegram import Update

from bot.core.callbacks import Reads
from bot.core.models import CRISIS_PATH, IN_CARE, Counselor, Patient, PatientStatus
from bot.handlers.base import Context, Turn, turn
from bot.handlers.consent_update import ask_to_update
from bot.handlers.fallback import EXPIRED, answer_expired_button, answer_not_for_role

D = TypeVar("D")
Callback = Callable[[Update, Context], Coroutine[Any, Any, None]]


def patient_only(handler: Callable[[Turn, Patient], Awaitable[None]]) -> Callback:
    """A command for active patients. A patient not active yet or any more (consent to give, set-up to finish,
    withdrawn, discharged) is told what /help tells them: what to do first, or why it has stopped; anyone
    else (a counselor, a stranger) is told it is not for them."""
    return _patient_command(handler, aftercare=False)


def in_care_only(handler: Callable[[Turn, Patient], Awaitable[None]]) -> Callback:
    """`patient_only`, for a command that also works in aftercare (IN_CARE: the safety plan)."""
    return _patient_command(handler, aftercare=True)


def _patient_command(handler: Callable[[Turn, Patient], Awaitable[None]], *, aftercare: bool) -> Callback:
    @functools.wraps(handler)
    async def command(update: Update, context: Context) -> None:
        async with turn(update, context) as t:
            patient = t.care_patient if aftercare else t.active_patient
            if isinstance(t.person, Patient) and patient is None:
                await t.reply(f"help.patient_{t.person.status.value}")
                return
            if patient is None:
                await t.reply("input.not_for_role")
                return
            if await ask_to_update(t, patient):
                return  # a new consent version first (set-up is kept); the command can be sent again
            await handler(t, patient)

    return command


def enrolled_only(handler: Callable[[Turn, Patient], Awaitable[None]]) -> Callback:
    """A command for any enrolled patient, whatever their status (their rights over their data and consent
    do not end with it); a counselor is told it is not for them, a stranger gets the stranger's line."""

    @functools.wraps(handler)
    async def command(update: Update, context: Context) -> None:
        async with turn(update, context) as t:
            if not isinstance(t.person, Patient):
                await answer_not_for_role(t)
                return
            await handler(t, t.person)

    return command


def counselor_only(handler: Callable[[Turn, Counselor], Awaitable[None]]) -> Callback:
    """A command for counselors; anyone else is told it is not for them."""

    @functools.wraps(handler)
    async def command(update: Update, context: Context) -> None:
        async with turn(update, context) as t:
            if not isinstance(t.person, Counselor):
                await t.reply("input.not_for_role")
                return
            await handler(t, t.person)

    return command


def patient_button(
    reads: Reads[D],
    *,
    active: bool = True,
    aftercare: bool = False,
    crisis_path: bool = False,
    refused: str = EXPIRED,
) -> Callable[[Callable[[Turn, Patient, D], Awaitable[None]]], Callback]:
    """A button for patients (only active ones unless `active` is False; with `aftercare`, patients in
    aftercare too: IN_CARE; with `crisis_path`, patients in set-up as well: CRISIS_PATH), its data read by
    `reads`. Anyone else's tap is answered with the text `refused`."""

    def decorate(handler: Callable[[Turn, Patient, D], Awaitable[None]]) -> Callback:
        @functools.wraps(handler)
        async def tapped(update: Update, context: Context) -> None:
            button = _parse(update, reads)
            async with turn(update, context) as t:
                person = t.person
                allowed = isinstance(person, Patient) and (
                    not active
                    or person.status is PatientStatus.ACTIVE
                    or (aftercare and person.status in IN_CARE)
                    or (crisis_path and person.status in CRISIS_PATH)
                )
                if button is None:
                    answer_expired_button(t)
                elif not isinstance(person, Patient) or not allowed:
                    _refuse(t, refused)
                else:
                    await handler(t, person, button)

        return tapped

    return decorate


def counselor_button(
    reads: Reads[D], *, refused: str = EXPIRED
) -> Callable[[Callable[[Turn, Counselor, D], Awaitable[None]]], Callback]:
    """A button for counselors, its data read by `reads`. Anyone else's tap is answered with `refused`."""

    def decorate(handler: Callable[[Turn, Counselor, D], Awaitable[None]]) -> Callback:
        @functools.wraps(handler)
        async def tapped(update: Update, context: Context) -> None:
            button = _parse(update, reads)
            async with turn(update, context) as t:
                if button is None:
                    answer_expired_button(t)
                elif not isinstance(t.person, Counselor):
                    _refuse(t, refused)
                else:
                    await handler(t, t.person, button)

        return tapped

    return decorate


def _parse(update: Update, reads: Reads[D]) -> D | None:
    query = update.callback_query
    assert query is not None
    return reads.parse(query.data)


def _refuse(t: Turn, refused: str) -> None:
    if refused == EXPIRED:
        answer_expired_button(t)
    else:
        t.answer(t.text(refused))
