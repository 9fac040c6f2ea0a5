"""The counselor's daily digest: queued once a day at each counselor's own time, rendered in their
language."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core import audit
from bot.core.db import transaction
from bot.core.models import AftercareStatus, Counselor, Priority, utcnow
from bot.outbox import store as outbox
from bot.risk.paging import local_time
from bot.workspace import aftercare
from bot.workspace import caseload as rules
from bot.workspace import rules as workspace

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

DIGEST_KIND = "digest"
DIGEST_PATIENTS = "patients"  # in a digest row's `ref`: the ids of the patients it names


async def send_digests(runtime: Runtime) -> int:
    """Queue today's digest for every counselor whose time has come (once a day: the outbox key is the
    counselor and the local day of the digest time). Nothing is sent when there is nothing to say."""
    now = utcnow()
    queued = 0
    async with transaction(runtime.sessions) as session:
        for counselor, day in await workspace.due_digests(session, now):
            found = await rules.digest(
                session,
                counselor.id,
                now,
                high_craving=runtime.settings.high_craving,
                whole_program=workspace.whole_program(counselor),
            )
            after = await aftercare.recent(
                session, counselor.id, now, whole_program=workspace.whole_program(counselor)
            )
            if found is None and not after:
                continue
            assert counselor.chat_id is not None
            parts = [_digest_text(runtime, counselor, found)] if found is not None else []
            if after:  # aftercare check-ins (issue 22)
                parts.append(_aftercare_text(runtime, counselor, after))
            listed = sorted({*(_listed(found) if found is not None else []), *(a.patient_id for a in after)})
            planned = outbox.Planned(
                key=workspace.digest_key(counselor.id, day),
                kind=DIGEST_KIND,
                chat_id=counselor.chat_id,
                text="\n\n".join(parts),
                due_at=now,
                priority=Priority.NORMAL,
                counselor_id=counselor.id,
                ref={DIGEST_PATIENTS: listed},  # ids only: see `bot.privacy.erasure`
            )
            if await outbox.enqueue(session, [planned]):
                queued += 1
                audit.record(session, "digest.queued", actor_type="system", actor_id=counselor.id)
    if queued:
        log.info("event=digest.queued count=%d", queued)
        runtime.wake_outbox()
    return queued


def _aftercare_text(runtime: Runtime, counselor: Counselor, items: list[aftercare.AftercareItem]) -> str:
    language = counselor.language
    lines = "\n".join(
        runtime.text(
            "aftercare.digest_line",
            language,
            alias=item.alias,
            week=item.week,
            missed=item.status is AftercareStatus.MISSED,
            craving=item.craving,
            mood=item.mood,
            used=item.used,
            connected=item.connected or "",
        )
        for item in items
    )
    return runtime.text("aftercare.digest", language, lines=lines)


def _listed(found: rules.Digest) -> list[int]:
    """The ids of every patient the digest names."""
    refs = [
        *found.checked_in,
        *found.used,
        *(s.patient for s in found.silent),
        *(h.patient for h in found.high_cravings),
        *(d.patient for d in found.declined),
        *(e.patient for e in found.escalations),
    ]
    return sorted({ref.id for ref in refs})


def _digest_text(runtime: Runtime, counselor: Counselor, found: rules.Digest) -> str:
    language = counselor.language

    def text(key: str, **variables: object) -> str:
        return runtime.text(key, language, **variables)

    def when(moment: datetime) -> str:
        return local_time(runtime, moment, counselor)

    never = text("caseload.silent_never")
    return text(
        "caseload.digest",
        escalations=", ".join(
            f"{e.patient.alias} ({text(f'escalation.levels.{e.escalation.level.label}')}, "
            f"{text(f'escalation.categories.{e.escalation.category}')})"
            for e in found.escalations
        ),
        used=", ".join(p.alias for p in found.used),
        high_cravings=", ".join(f"{h.patient.alias} ({h.craving})" for h in found.high_cravings),
        silent=", ".join(
            f"{s.patient.alias} ({s.days if s.days is not None else never})" for s in found.silent
        ),
        declined=", ".join(f"{d.patient.alias} ({d.title}, {when(d.occurrence)})" for d in found.declined),
        checked_in=", ".join(p.alias for p in found.checked_in),
    )
