"""`python -m bot discharge ALIAS` and `python -m bot purge --older-than DAYS`: the end of care and the
retention period. The rules are in `bot.privacy.discharge` and `bot.privacy.retention`."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.cli.common import patient_by_alias, with_session
from bot.core.models import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


class RecordsError(Exception):
    """A mistake the user can fix (an unknown alias, a patient already discharged)."""


async def cmd_discharge(args: argparse.Namespace, settings: Settings) -> int:
    from bot.content.catalog import load_catalog
    from bot.medcare.callbacks import OFFER_KEY, OfferKey
    from bot.medcare.prompts import offer_buttons
    from bot.privacy.discharge import DischargeError, discharge

    catalog = load_catalog(settings.content_dir)
    clinic = settings.require_clinic().values()  # the goodbye names the program

    async def work(session: AsyncSession) -> int:
        patient = await patient_by_alias(session, args.alias)
        goodbye = catalog.render_with(clinic, "discharge.goodbye", patient.language)
        now = utcnow()
        offer = (  # aftercare check-ins, if the patient wants them (issue 22)
            OFFER_KEY.pack(OfferKey(patient.id, int(now.timestamp()))),
            catalog.render_with(clinic, "aftercare.offer", patient.language),
            offer_buttons(lambda key: catalog.render_with(clinic, key, patient.language)),
        )
        try:
            done = await discharge(session, patient, goodbye, now, offer=offer)
        except DischargeError as error:
            raise RecordsError(str(error)) from None
        if not done.goodbye_queued:
            sent = "no goodbye: they have blocked the bot"
        elif done.offered:
            sent = "the goodbye with aftercare resources, and the offer of aftercare check-ins, are queued"
        else:  # only a patient who was active (with consent) is offered aftercare check-ins
            sent = (
                "the goodbye with aftercare resources is queued (no offer of aftercare: they were not active)"
            )
        print(
            f"{patient.alias} discharged; {done.cancelled} waiting messages cancelled; {sent}",
            file=sys.stderr,
        )
        return 0

    return await with_session(settings, work)


async def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from bot.privacy import retention

    async def work(session: AsyncSession) -> int:
        now = utcnow()
        counts = await retention.purge(session, older_than=timedelta(days=args.older_than), now=now)
        for table, count in counts.items():
            print(f"{table}\t{count}")
        cutoff = now - timedelta(days=args.older_than)
        print(
            f"deleted {sum(counts.values())} rows from before {cutoff:%Y-%m-%d %H:%M} UTC; "
            "the audit log is kept",
            file=sys.stderr,
        )
        return 0

    return await with_session(settings, work)


def _days(value: str) -> int:
    from bot.privacy import retention

    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < retention.MIN_DAYS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of days, at least {retention.MIN_DAYS}"
        )
    return days


def add_parsers(commands: Any) -> None:
    """Add `discharge` and `purge` (`commands` is the top-level subparsers object)."""
    leave = commands.add_parser(
        "discharge",
        help="end a patient's care: goodbye with aftercare resources, then no more messages",
        description="Mark the patient discharged, cancel the messages waiting for them, stop check-ins and "
        "reminders, and send one goodbye with aftercare resources (through the outbox: a running bot sends "
        "it). If they write in afterwards they are told their time in the program has ended.",
    )
    leave.add_argument("alias", metavar="ALIAS")
    leave.set_defaults(handler=cmd_discharge)

    purge = commands.add_parser(
        "purge",
        help="delete records older than the retention period",
        description="Delete closed check-ins, exercises and screeners, risk signals, resolved alerts, outbox "
        "rows that are done with, session answers and care flags older than DAYS, and erase patients "
        "discharged more than DAYS ago. Open items, current profiles and the audit log are kept. Prints the "
        "rows deleted per table.",
    )
    purge.add_argument("--older-than", type=_days, required=True, metavar="DAYS", help="at least 1")
    purge.set_defaults(handler=cmd_purge)
