"""Prometheus metrics: what one process counts (updates, handler latency, send errors) and what the database
holds (outbox depth and age, open escalations), read when `/metrics` is scraped.

Labels carry kinds and event names only, never a patient, a counselor or a text.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import (
    Escalation,
    EscalationStatus,
    InboxStatus,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from bot.intake import store as inbox_store

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Handlers answer in milliseconds; a slow database or Telegram call shows in the upper buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UPDATE_KINDS = ("message", "edited_message", "callback_query", "my_chat_member")


def update_kind(update: object) -> str:
    """The kind of a Telegram update, from a closed list (anything else is "other")."""
    for kind in UPDATE_KINDS:
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


class Metrics:
    """One registry per process (per Runtime), so tests that run several bots do not share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("iop_updates_handled", "Telegram updates handled", ["kind"], registry=r)
        self.handler_seconds = Histogram(
            "iop_update_handler_seconds", "Time to handle one update", buckets=LATENCY_BUCKETS, registry=r
        )
        self.send_errors = Counter(
            "iop_send_errors", "Outbox sends that failed, by kind", ["kind"], registry=r
        )
        self.outbox_depth = Gauge("iop_outbox_depth", "Outbox rows waiting to be sent", registry=r)
        self.outbox_age = Gauge(
            "iop_outbox_oldest_due_seconds", "How long the oldest due outbox row has waited", registry=r
        )
        self.escalations_open = Gauge(
            "iop_escalations_open", "Escalations not yet resolved (open or acknowledged)", registry=r
        )
        self.unacknowledged_age = Gauge(
            "iop_escalation_oldest_unacknowledged_seconds",
            "Age of the oldest escalation no counselor has acknowledged",
            registry=r,
        )
        self.inbox_handled = Counter("iop_inbox_handled", "Inbox updates handed to the handlers", registry=r)
        self.inbox_throttled = Counter(
            "iop_inbox_throttled", "Messages of a flooding chat stored and screened, not answered", registry=r
        )
        self.inbox_flood_questions_held = Counter(
            "iop_inbox_flood_questions_held",
            "Messages of a flooding chat only the semantic layer would ask about, past its one question",
            registry=r,
        )
        self.inbox_parked = Counter(
            "iop_inbox_parked_by_this_process",
            "Inbox updates this process parked after every try failed",
            registry=r,
        )
        self.inbox_depth = Gauge("iop_inbox_depth", "Inbox updates waiting to be handled", registry=r)
        self.inbox_parked_rows = Gauge(
            "iop_inbox_parked", "Inbox updates parked after failing every try (all processes)", registry=r
        )
        self.webhook_refused = Counter(
            "iop_webhook_refused", "Webhook requests refused (wrong secret, bad body)", ["reason"], registry=r
        )

    def handled(self, update: object, seconds: float) -> None:
        self.updates.labels(update_kind(update)).inc()
        self.handler_seconds.observe(seconds)

    def send_error(self, error: str) -> None:
        # "bad_request:<Telegram's words>" keeps only its kind: the label set stays small
        self.send_errors.labels(error.split(":", 1)[0]).inc()

    async def read_database(self, session: AsyncSession) -> None:
        now = utcnow()
        pending = OutboxMessage.status == OutboxStatus.PENDING
        depth, oldest = (
            await session.execute(
                select(func.count(OutboxMessage.id), func.min(OutboxMessage.due_at)).where(pending)
            )
        ).one()
        self.outbox_depth.set(depth)
        self.outbox_age.set(_age(now, oldest))
        unresolved = Escalation.status != EscalationStatus.RESOLVED
        self.escalations_open.set(
            await session.scalar(select(func.count(Escalation.id)).where(unresolved)) or 0
        )
        unacknowledged = await session.scalar(
            select(func.min(Escalation.created_at)).where(Escalation.status == EscalationStatus.OPEN)
        )
        self.unacknowledged_age.set(_age(now, unacknowledged))
        inbox = await inbox_store.counts(session)
        self.inbox_depth.set(inbox[InboxStatus.PENDING.value])
        self.inbox_parked_rows.set(inbox[InboxStatus.PARKED.value])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
