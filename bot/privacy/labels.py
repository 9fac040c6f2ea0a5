"""The care team's labels for the risk detector (issue 19, item 5): the words behind resolved alerts, each
with the verdict the resolving counselor gave (a real concern or a false alarm), redacted, for the
clinical lead to review before any of them joins the labelled examples in content/<lang>/risk/.

`python -m bot risk export-labels` (an admin, audited) is the only way these words leave the database in bulk;
this module finds them and takes out what identifies anyone. An erased patient's escalations are gone with
them, and a patient whose confirmed deletion is waiting (an alert was still open) is left out as if erased.

One row per message: an alert's `detail` holds the messages behind it (several when signals were grouped),
each of which is one example; a message cut short by the detail's limit is left out. Each row carries the
alert's level and category (what the bot raised), the verdict and the month it was resolved (clinic time).

Redaction (`Scrubber`), in this order, each replaced by a placeholder. It is not de-identification: free text
can name or describe someone in ways no list catches, so every line is reviewed before use.
- e-mail addresses `[EMAIL]`, web addresses `[URL]` (with or without http, www or a path), @handles
  `[HANDLE]`;
- the patient's own Telegram ids `[ID]`, then any other run of 7 or more digits (spaces, dots, dashes and
  brackets between them allowed) `[PHONE]`; shorter numbers (988, 741741, doses, times) stay;
- the patient's alias and each word of it `[NAME]`;
- the names of the clinic's counselors `[NAME]` (each word that is not a common word);
- the names of the people in their safety plan `[NAME]`: every word of the steps that name people (people
  and places for distraction, people to ask for help, professionals) that is not a common word (`COMMON`),
  wherever it appears in the message, in any case and with or without accents. A plan step is free text, so
  a word the list does not know is taken as a name: this errs towards taking out too much.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from bot.core.models import (
    Consent,
    Counselor,
    Escalation,
    EscalationStatus,
    Patient,
    PatientStatus,
    SafetyPlan,
)
from bot.privacy.erasure import deferred_patients
from bot.risk.escalation import DETAIL_LIMIT, DETAIL_SEPARATOR
from bot.risk.safety_plan import Step

COLUMNS = ("level", "category", "text", "outcome", "resolved_month")
CONTACT_STEPS = (Step.DISTRACTION, Step.HELP_PEOPLE, Step.PROFESSIONALS)  # the steps that name people

NAME, PHONE, EMAIL, URL, HANDLE, ID = "[NAME]", "[PHONE]", "[EMAIL]", "[URL]", "[HANDLE]", "[ID]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_END = r"(?=[.,;:!?)\]'\"]*(?:\s|$))"  # an address ends before a space; trailing punctuation is not in it
_DOMAIN = r"(?<![\w@.])(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|me|co|us|ly|app|info|biz|tv|gg|mx|es)\b"
_URL = re.compile(rf"(?:(?:https?://|www\.)\S+?|{_DOMAIN}(?:/\S*?)?){_URL_END}", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_PHONE = re.compile(r"(?<!\w)\+?(?:\(\d+\)|\d)(?:[\s().-]{0,2}\d){6,}(?!\w)")
_WORD = re.compile(r"[^\W\d_]+")  # letters only
_SPACE = re.compile(r"\s+")

# Words that are not names, in the plan's people steps (English and Spanish, lower case, without accents):
# small words, family and care roles, places and things to do. Any other word there is taken as a name.
_COMMON_WORDS = """
    a an and are as at be but by call can cell do for from go going good he her him his home how i if in is
    it its me mi mis my no not number of on or our phone she so text that the their them then they this to
    up us we what when who will with work you your yours
    mom mum mother mama mommy dad father papa daddy parent parents sister sis brother bro son daughter kid
    kids child children baby wife husband partner girlfriend boyfriend fiance fiancee spouse ex aunt auntie
    uncle cousin cousins niece nephew grandma grandpa grandmother grandfather granny nana grandson
    granddaughter family friend friends best bestie buddy neighbor neighbour roommate coworker boss
    sponsor sponsee group meeting meetings aa na smart recovery church pastor priest minister
    dr doctor doc nurse counselor counsellor therapist psychiatrist psychologist social worker case manager
    clinic hospital er emergency room office program iop team crisis line hotline lifeline
    park gym library store shop mall coffee cafe walk walking run running drive driving music song songs tv
    movie movies game games video book books read reading church beach river lake dog dogs cat cats pet
    pets house place places outside yard garden
    el la los las un una y o de del con mi mis su sus tu tus que en por para al es son no si muy
    mama papa madre padre hermana hermano hijo hija hijos esposa esposo pareja novia novio tia tio prima
    primo abuela abuelo amiga amigo amigos amigas vecina vecino companero companera jefe jefa padrino
    madrina grupo reunion iglesia doctora enfermera enfermero consejera consejero terapeuta psiquiatra
    psicologa psicologo trabajadora trabajador social clinica hospital emergencias sala programa equipo
    linea parque tienda cafe caminar correr musica cancion pelicula juego libro leer casa perro gato
    llamar llamo llama telefono celular numero
"""
COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True)
class LabelRow:
    level: str
    category: str
    text: str
    outcome: str  # the verdict: real_concern or false_alarm
    resolved_month: str  # "2026-12": the month only, not the day

    def tsv(self) -> str:
        return "\t".join((self.level, self.category, self.text, self.outcome, self.resolved_month))


@dataclass
class Labels:
    rows: list[LabelRow]
    alerts: int  # resolved alerts with a verdict and words behind them, whose messages are the rows
    without_verdict: int  # resolved alerts with words but no verdict (resolved before it was asked)
    withheld: int  # alerts of patients whose confirmed deletion is waiting, or who withdrew consent


def _fold(text: str) -> str:
    """Lower case without accents, one character for each character of `text` (so spans carry over)."""
    return "".join((unicodedata.normalize("NFD", c)[:1] or c).lower()[:1] or c for c in text)


class Scrubber:
    """Takes out what identifies anyone from one patient's messages (see the module's docstring)."""

    def __init__(self, ids: Iterable[int], alias: str, plan_texts: Iterable[str]) -> None:
        self._ids = {str(i) for i in ids}
        alias_words = [_fold(w) for w in _WORD.findall(alias)]
        names = {w for w in alias_words if len(w) >= 3 and w not in COMMON}
        for text in plan_texts:
            words = _WORD.findall(self._numbers(text, blank=True))
            names.update(w for w in map(_fold, words) if len(w) >= 2)
        names -= COMMON
        phrases = [r"[\W_]+".join(re.escape(_fold(part)) for part in re.split(r"[\W_]+", alias) if part)]
        phrases += [re.escape(name) for name in sorted(names, key=len, reverse=True)]
        phrases = [p for p in phrases if p]
        self._names = re.compile(rf"(?<!\w)(?:{'|'.join(phrases)})(?!\w)") if phrases else None

    def _numbers(self, text: str, *, blank: bool = False) -> str:
        """Addresses, handles, ids and phone numbers replaced by their placeholders (`blank`: by a space)."""

        def put(placeholder: str) -> str:
            return " " if blank else placeholder

        text = _EMAIL.sub(put(EMAIL), text)
        text = _URL.sub(put(URL), text)
        text = _HANDLE.sub(put(HANDLE), text)
        text = _PHONE.sub(lambda m: put(ID if re.sub(r"\D", "", m[0]) in self._ids else PHONE), text)
        if self._ids:
            text = re.sub(rf"(?<!\d)(?:{'|'.join(map(re.escape, self._ids))})(?!\d)", put(ID), text)
        return text

    def __call__(self, text: str) -> str:
        text = _SPACE.sub(" ", self._numbers(text)).strip()
        if self._names is None:
            return text
        folded = _fold(text)
        pieces, end = [], 0
        for match in self._names.finditer(folded):
            start, stop = match.span()
            if text[start - 1 : start] == "[" and text[stop : stop + 1] == "]":
                continue  # a placeholder's own word
            pieces += [text[end:start], NAME]
            end = stop
        return "".join([*pieces, text[end:]])


def messages_of(detail: str) -> list[str]:
    """The messages behind an alert, without one cut short by the detail's limit (the oldest)."""
    messages = detail.split(DETAIL_SEPARATOR)
    if len(detail) >= DETAIL_LIMIT and len(messages) > 1:
        messages = messages[1:]
    return [m for m in messages if m.strip()]


def _contact_texts(plan: SafetyPlan | None) -> list[str]:
    if plan is None:
        return []
    return [text for step in CONTACT_STEPS if isinstance(text := getattr(plan, step.value), str)]


async def resolved_labels(session: AsyncSession, zone: ZoneInfo) -> Labels:
    """Every resolved alert with a verdict and words behind it, as redacted rows, oldest first; the
    same message under the same verdict, level and category once."""
    resolved_with_words = (Escalation.status == EscalationStatus.RESOLVED) & Escalation.detail.is_not(None)
    without_verdict = await session.scalar(
        select(func.count(Escalation.id)).where(resolved_with_words, Escalation.verdict.is_(None))
    )
    found = (
        await session.execute(
            select(Escalation, Patient)
            .join(Patient, Patient.id == Escalation.patient_id)
            .options(undefer(Patient.telegram_user_id))  # the scrubber takes it out of the words
            .where(resolved_with_words, Escalation.verdict.is_not(None))
            .order_by(Escalation.resolved_at, Escalation.id)
        )
    ).all()
    waiting = set(await deferred_patients(session))
    # A patient who withdrew consent (a revoked agreement and none standing) is left out, as one whose erasure
    # waits.
    patient_ids = {p.id for _, p in found}
    agreements: dict[int, bool] = {}  # patient id -> whether an agreement still stands
    for patient_id, revoked_at in await session.execute(
        select(Consent.patient_id, Consent.revoked_at).where(Consent.patient_id.in_(patient_ids))
    ):
        agreements[patient_id] = agreements.get(patient_id, False) or revoked_at is None
    withdrew = {pid for pid, standing in agreements.items() if not standing}
    withdrew |= {p.id for _, p in found if p.status is PatientStatus.CONSENT_REVOKED}
    kept = [(e, p) for e, p in found if p.id not in waiting and p.id not in withdrew]
    plans = {
        plan.patient_id: plan
        for plan in await session.scalars(
            select(SafetyPlan).where(SafetyPlan.patient_id.in_({p.id for _, p in kept}))
        )
    }
    counselors = list(await session.scalars(select(Counselor.name)))  # their names are taken out too
    scrubbers: dict[int, Scrubber] = {}
    rows: list[LabelRow] = []
    seen: set[tuple[str, ...]] = set()
    for escalation, patient in kept:
        if patient.id not in scrubbers:
            ids = (patient.telegram_user_id, patient.chat_id)
            names = [*_contact_texts(plans.get(patient.id)), *counselors]
            scrubbers[patient.id] = Scrubber(ids, patient.alias, names)
        assert escalation.detail is not None and escalation.verdict is not None
        assert escalation.resolved_at is not None
        resolved_month = escalation.resolved_at.astimezone(zone).strftime("%Y-%m")
        for message in messages_of(escalation.detail):
            row = LabelRow(
                escalation.level,
                escalation.category,
                scrubbers[patient.id](message),
                escalation.verdict,
                resolved_month,
            )
            key = (row.level, row.category, row.text, row.outcome)
            if row.text and key not in seen:
                seen.add(key)
                rows.append(row)
    return Labels(rows, len(kept), without_verdict or 0, len(found) - len(kept))


def tsv(rows: Sequence[LabelRow]) -> str:
    """The file: a header naming the columns, then one line per row (the texts hold no tabs or newlines)."""
    return "".join(f"{line}\n" for line in ["\t".join(COLUMNS), *(row.tsv() for row in rows)])
