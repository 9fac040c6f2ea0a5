"""Care-team notices about a flag (missed check-ins or sessions, a patient who blocked the bot), rendered
for the outbox in each counselor's language."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import flags, outbox
from bot.models import Priority, utcnow

if TYPE_CHECKING:
    from bot.app import Runtime


def render_notice(runtime: Runtime, notice: flags.Notice, key: str) -> outbox.Planned:
    """`key` names the event, so each counselor is told once."""
    text = runtime.text(f"care.flag.{notice.kind}", notice.language, alias=notice.alias, count=notice.count)
    return outbox.Planned(
        key=f"flag:{notice.kind}:{key}:{notice.chat_id}",
        kind="notice",
        chat_id=notice.chat_id,
        text=text,
        due_at=utcnow(),
        priority=Priority.NORMAL,
    )
