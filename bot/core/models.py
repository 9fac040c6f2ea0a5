"""The data model (SQLAlchemy 2 typed declarative). Alembic migrations in `bot/migrations` mirror it.

Times are stored in UTC; `UTCDateTime` hands back aware datetimes on SQLite and PostgreSQL alike.
Enumerations are stored as short strings (no native enum types) so migrations stay portable.

What a copy of the database alone must not tell (README, "What the database holds"): whose Telegram account a
row belongs to (Telegram user and chat ids are encrypted, `EncryptedInt`, and people are found by a keyed hash
of their id, `telegram_ref`), and who used or is at risk (the clinical codes below typed `_code()` or
`_record()`: encrypted, padded to one length). Ids, times, statuses and the numbers the scheduler and the
caseload filter or count on stay in the clear.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Time,
    TypeDecorator,
    UniqueConstraint,
    inspect,
)
from sqlalchemy import event as orm_event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, InstanceState, Mapped, Mapper, mapped_column, relationship

from bot.core.crypto import EncryptedEnum, EncryptedInt, EncryptedJSON, EncryptedText, keyring_for


def _code() -> EncryptedJSON:
    """A short clinical code or answer (a risk level, a category, a flag's kind, yes or no), encrypted and
    padded so that its length does not tell which."""
    return EncryptedJSON(pad=32)


def _record() -> EncryptedJSON:
    """A small clinical document (screener answers, what was used, an audit event's detail), encrypted and
    padded to a multiple of 128 characters."""
    return EncryptedJSON(pad=128)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda members: [m.value for m in members],
    )


class PatientStatus(enum.StrEnum):
    CONSENT_PENDING = "consent_pending"
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    CONSENT_REVOKED = "consent_revoked"
    DISCHARGED = "discharged"
    # Discharged, with aftercare check-ins (issue 22): no daily prompts or reminders, but the crisis path,
    # /sos and the safety plan work as for an active patient. Back to DISCHARGED when aftercare ends.
    AFTERCARE = "aftercare"


# Patients whose crisis messages, /sos and safety plan reach their care team.
IN_CARE = frozenset({PatientStatus.ACTIVE, PatientStatus.AFTERCARE})
# Patients whose crisis messages reach their care team: from "I agree" to the end of aftercare. In set-up a
# crisis typed at the time-zone question is answered and paged, and the crisis path's own buttons and
# follow-ups (the screener, "are you safe right now?", "your counselor saw it") work; set-up's other flows
# (the safety plan, exercises) wait for set-up to end.
CRISIS_PATH = IN_CARE | {PatientStatus.ONBOARDING}


class CounselorRole(enum.StrEnum):
    COUNSELOR = "counselor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class InviteKind(enum.StrEnum):
    PATIENT = "patient"
    COUNSELOR = "counselor"


class AssignmentRole(enum.StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Telegram's ids, encrypted; the patient is found by `telegram_ref` (set from the user id on write). The
    # user id is loaded only when asked for (`undefer`, or a select of it): nothing but the export reads it,
    # and decrypting it for every patient loaded (every message, the planner) would cost for nothing.
    telegram_user_id: Mapped[int] = mapped_column(EncryptedInt, deferred=True)
    telegram_ref: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int] = mapped_column(EncryptedInt)
    alias: Mapped[str] = mapped_column(String(64), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    checkin_time: Mapped[time | None] = mapped_column(Time)
    quiet_start: Mapped[time] = mapped_column(Time, default=time(22, 0))
    quiet_end: Mapped[time] = mapped_column(Time, default=time(7, 0))
    status: Mapped[PatientStatus] = mapped_column(_enum(PatientStatus), default=PatientStatus.CONSENT_PENDING)
    # Which set-up question the patient is answering (in set-up, or typing a new value in /settings);
    # kept in the database so any process can carry on.
    onboarding_step: Mapped[str | None] = mapped_column(String(32))
    # Set when Telegram refused a message because the patient blocked the bot; cleared when they write again.
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    assignments: Mapped[list[CareAssignment]] = relationship(back_populates="patient")
    consents: Mapped[list[Consent]] = relationship(back_populates="patient")


class Counselor(Base):
    __tablename__ = "counselors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[CounselorRole] = mapped_column(_enum(CounselorRole), default=CounselorRole.COUNSELOR)
    telegram_user_id: Mapped[int | None] = mapped_column(EncryptedInt)  # as for patients
    telegram_ref: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(EncryptedInt)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    digest_time: Mapped[time | None] = mapped_column(Time)  # local time of the daily digest; None: none

    assignments: Mapped[list[CareAssignment]] = relationship(back_populates="counselor")


@orm_event.listens_for(Patient, "before_insert")
@orm_event.listens_for(Patient, "before_update")
@orm_event.listens_for(Counselor, "before_insert")
@orm_event.listens_for(Counselor, "before_update")
def _telegram_ref(_mapper: Mapper[Any], connection: Connection, person: Patient | Counselor) -> None:
    """Keep `telegram_ref` the pseudonym of `telegram_user_id` (under the first key), however it was set."""
    # The history as it stands, without loading a deferred user id that was never touched
    state: InstanceState[Any] = inspect(person)
    changed = state.attrs.telegram_user_id.history.has_changes()
    if not changed and person.telegram_ref is not None:
        return
    user = person.telegram_user_id
    person.telegram_ref = None if user is None else keyring_for(connection.dialect).pseudonym(user)


class CareAssignment(Base):
    """A counselor on a patient's care team (the primary counselor, or a backup)."""

    __tablename__ = "care_assignments"
    __table_args__ = (UniqueConstraint("patient_id", "counselor_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"), index=True)
    role: Mapped[AssignmentRole] = mapped_column(_enum(AssignmentRole), default=AssignmentRole.PRIMARY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="assignments")
    counselor: Mapped[Counselor] = relationship(back_populates="assignments")


class Invite(Base):
    """A one-time, expiring invite. Only a SHA-256 of the code is kept, so a database reader cannot enroll."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[InviteKind] = mapped_column(_enum(InviteKind))
    # Patient invite: the counselor the patient is assigned to. Counselor invite: the counselor being linked.
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"), index=True)
    patient_alias: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))


class Consent(Base):
    """One agreement to a version of the consent text; revoking sets `revoked_at`, never deletes."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_patient_active", "patient_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(back_populates="consents")


class AuditEvent(Base):
    """Who did what to which record. `detail` holds ids and codes only, never free text or names, and never
    a patient's id (those go in `subject_id`, or in `patients`); it is encrypted, as codes such as an alert's
    level and category are in it."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(16))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(_record())

    patients: Mapped[list[AuditPatient]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class AuditPatient(Base):
    """A patient an audit event names beside its subject (the patients a caseload page showed). A row of its
    own rather than ids in the detail: erasing the patient deletes it through its foreign key, so the event
    stays and no longer leads to them."""

    __tablename__ = "audit_event_patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)


class Counter(Base):
    """Named counters for things we must count but not record (e.g. messages from people not enrolled)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CheckInStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    PARTIAL = "partial"  # closed unfinished, with at least one answer
    MISSED = "missed"  # closed with no answer at all
    PAUSED = "paused"  # set aside by a crisis reply; /checkin carries it on, or it expires as usual


class CheckInSource(enum.StrEnum):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"


class CheckIn(Base):
    """One daily check-in. Each answer is saved the moment it arrives; `step` is the question being asked."""

    __tablename__ = "checkins"
    __table_args__ = (
        Index("ix_checkins_patient_day", "patient_id", "local_day"),
        Index("ix_checkins_status_expires", "status", "expires_at"),
        # One scheduled prompt per patient and day, even with several bot processes.
        UniqueConstraint("patient_id", "scheduled_for", name="uq_checkins_patient_scheduled"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    source: Mapped[CheckInSource] = mapped_column(_enum(CheckInSource))
    status: Mapped[CheckInStatus] = mapped_column(_enum(CheckInStatus), default=CheckInStatus.OPEN)
    local_day: Mapped[date] = mapped_column(Date)
    scheduled_for: Mapped[date | None] = mapped_column(Date)
    step: Mapped[str | None] = mapped_column(_code())  # "use_what" would say the answer before it
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    craving: Mapped[int | None] = mapped_column(Integer)
    triggers: Mapped[list[str] | None] = mapped_column(JSON)
    trigger_other: Mapped[str | None] = mapped_column(EncryptedText)
    mood: Mapped[int | None] = mapped_column(Integer)
    sleep: Mapped[str | None] = mapped_column(String(8))
    used: Mapped[bool | None] = mapped_column(_code())
    use_what: Mapped[str | None] = mapped_column(EncryptedText)
    # What was used and how, as tapped or read from `use_what` (bot.risk.use.UseReport; no words)
    use_report: Mapped[dict[str, object] | None] = mapped_column(_record())
    note: Mapped[str | None] = mapped_column(EncryptedText)
    skipped: Mapped[list[str] | None] = mapped_column(_record())  # a skipped "what did you use?" says use


class MeasureStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETE = "complete"  # every item asked was answered (or the safety item ended it): scored
    EXPIRED = "expired"  # closed unfinished after MEASURE_EXPIRY_DAYS; its answers are kept, it has no score


class MeasureSource(enum.StrEnum):
    SCHEDULED = "scheduled"  # due by the patient's schedule, offered at their check-in time
    COUNSELOR = "counselor"  # sent now by a counselor (/measure ALIAS phq9)


class Measure(Base):
    """One validated questionnaire (PHQ-9, GAD-7, BAM: `content/<lang>/measures/<instrument>.yaml`) given to
    a patient. Each answer is saved the moment it arrives (`answers`: item id -> the chosen option's value),
    and `step` is the item being asked, so it survives a restart; `scores` are written when it is complete.
    The answers, the scores, the safety item and the item being asked are encrypted, as a check-in's use
    answer is: PHQ-9 item 9 asks about thoughts of death, the BAM about days of use."""

    __tablename__ = "measures"
    __table_args__ = (
        Index("ix_measures_patient_instrument", "patient_id", "instrument"),
        Index("ix_measures_status_expires", "status", "expires_at"),
        # One scheduled questionnaire of a kind per patient and day, even with several bot processes.
        UniqueConstraint("patient_id", "instrument", "scheduled_for", name="uq_measures_patient_scheduled"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(16))
    source: Mapped[MeasureSource] = mapped_column(_enum(MeasureSource))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(8))  # asked in (a translation may be unofficial)
    status: Mapped[MeasureStatus] = mapped_column(_enum(MeasureStatus), default=MeasureStatus.OPEN)
    scheduled_for: Mapped[date | None] = mapped_column(Date)  # the patient's local day, when scheduled
    step: Mapped[str | None] = mapped_column(_code())
    answers: Mapped[dict[str, int]] = mapped_column(_record(), default=dict)
    scores: Mapped[dict[str, int] | None] = mapped_column(_record())
    # The safety item (PHQ-9 item 9) answered above its lowest option: the suicide screener was started.
    safety_positive: Mapped[bool] = mapped_column(_code(), default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reasked_on: Mapped[date | None] = mapped_column(Date)  # local day its question was last sent again


class MeasureSchedule(Base):
    """How often one patient is given one questionnaire, set by a counselor instead of the clinic's default
    (the MEASURES setting): every `every_days` days, or never (None)."""

    __tablename__ = "measure_schedules"
    __table_args__ = (UniqueConstraint("patient_id", "instrument"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    instrument: Mapped[str] = mapped_column(String(16))
    every_days: Mapped[int | None] = mapped_column(Integer)
    set_by: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CopingStatus(enum.StrEnum):
    RATING_BEFORE = "rating_before"
    RUNNING = "running"
    RATING_AFTER = "rating_after"
    DONE = "done"
    ABANDONED = "abandoned"


class CopingSession(Base):
    """One run of a coping module, with the craving before and after (the "what works for you" data)."""

    __tablename__ = "coping_sessions"
    __table_args__ = (
        Index("ix_coping_sessions_patient_status", "patient_id", "status"),
        Index("ix_coping_sessions_next_step_at", "next_step_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    module_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[CopingStatus] = mapped_column(_enum(CopingStatus), default=CopingStatus.RATING_BEFORE)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer)
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    stopped_early: Mapped[bool] = mapped_column(Boolean, default=False)
    craving_before: Mapped[int | None] = mapped_column(Integer)
    craving_after: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CareFlag(Base):
    """Something the care team should know (e.g. three missed check-ins). `detail`: ids and codes only."""

    __tablename__ = "care_flags"
    __table_args__ = (Index("ix_care_flags_patient_created", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(_code())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(_record())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EscalationStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class CounselorNote(Base):
    """A counselor's note on a patient, for the care team; the words are encrypted at rest."""

    __tablename__ = "counselor_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    """A risk signal the care team must answer. Written before anyone is told; open until a counselor
    resolves it. `detail` is the patient's words behind it, shown only on request to the care team."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_patient_status", "patient_id", "status"),
        Index("ix_escalations_status_next_page", "status", "next_page_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(_code())
    category: Mapped[str] = mapped_column(_code())
    source: Mapped[str] = mapped_column(_code())
    detail: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[EscalationStatus] = mapped_column(_enum(EscalationStatus), default=EscalationStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_signal_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last message that paged (opened it, raised it, or imminent): what the alert's buttons say was seen.
    paged_signal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage: Mapped[int] = mapped_column(Integer, default=0)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_page_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(_code())
    # The resolving counselor's word on it: "real_concern" or "false_alarm" (bot.risk.escalation.Verdict).
    # None: resolved with an older button whose outcome says neither. `risk export-labels` reads it.
    verdict: Mapped[str | None] = mapped_column(_code())


class EscalationAlert(Base):
    """One alert message in one counselor's chat, kept so an acknowledgement can be shown on all of them."""

    __tablename__ = "escalation_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(EncryptedInt)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    stage: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiskSignal(Base):
    """A screened message's level and categories (never its text), for patient-level patterns over days."""

    __tablename__ = "risk_signals"
    __table_args__ = (Index("ix_risk_signals_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(_code())
    categories: Mapped[list[str]] = mapped_column(_record())
    source: Mapped[str] = mapped_column(_code())


class ScreenStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    UNANSWERED = "unanswered"  # closed after waiting too long for the next answer
    DECLINED = "declined"  # the patient said "Not now" to the questions


class SuicideScreen(Base):
    """One run of the C-SSRS screener (screen version). `answers` maps question ids to yes/no; `step` is the
    question awaiting an answer. Linked to the escalation it informs, if any."""

    __tablename__ = "suicide_screens"
    __table_args__ = (Index("ix_suicide_screens_patient_status", "patient_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(_code())
    status: Mapped[ScreenStatus] = mapped_column(_enum(ScreenStatus), default=ScreenStatus.OPEN)
    step: Mapped[str | None] = mapped_column(_code())  # the question asked says how the last was answered
    answers: Mapped[dict[str, bool]] = mapped_column(_record(), default=dict)
    result: Mapped[str | None] = mapped_column(_code())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SafetyPlan(Base):
    """A Stanley–Brown safety plan in the patient's own words: one text per step, plus a reason for living.
    `editing` is the step the patient is typing now."""

    __tablename__ = "safety_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), unique=True)
    warning_signs: Mapped[str | None] = mapped_column(EncryptedText)
    coping: Mapped[str | None] = mapped_column(EncryptedText)
    distraction: Mapped[str | None] = mapped_column(EncryptedText)
    help_people: Mapped[str | None] = mapped_column(EncryptedText)
    professionals: Mapped[str | None] = mapped_column(EncryptedText)
    safe_environment: Mapped[str | None] = mapped_column(EncryptedText)
    reason_for_living: Mapped[str | None] = mapped_column(EncryptedText)
    editing: Mapped[str | None] = mapped_column(String(24))
    walkthrough: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OnCallShift(Base):
    """A counselor on call from `starts_at` to `ends_at` (UTC), paged for imminent alerts out of hours."""

    __tablename__ = "oncall_shifts"
    __table_args__ = (Index("ix_oncall_shifts_span", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = (
        "failed"  # gave up after retries, or refused for good (blocked, chat gone): counted, never silent
    )
    DROPPED = "dropped"  # no longer worth sending (its session is over, the bot was down too long)
    CANCELLED = "cancelled"  # made moot before it went out (session cancelled, patient discharged)
    UNREADABLE = "unreadable"  # its payload cannot be decrypted with ENCRYPTION_KEY: set aside, never sent


class Priority(enum.IntEnum):
    BULK = 0  # reminders
    NORMAL = 5  # check-in prompts, notices to the care team
    URGENT = 10  # alerts and re-pages: they overtake everything else


class OutboxMessage(Base):
    """One message to send, planned ahead. `key` makes planning idempotent (one row per patient, session
    occurrence and offset, say); `claimed_by`/`claimed_until` lease a row to the process sending it, so
    several processes can share the work and a crash frees its rows when the lease runs out."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),
        # Never reuse an id (SQLite would, after a delete): a late result must not land on another row.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    priority: Mapped[int] = mapped_column(Integer, default=Priority.NORMAL)
    chat_id: Mapped[int] = mapped_column(EncryptedInt)
    chat_ref: Mapped[int] = mapped_column(BigInteger)  # the chat's pseudonym: erasure finds rows by it
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"))
    # The patient a message to someone else is about (a page, a notice to the care team): erasing the
    # patient deletes it by this id (`bot.privacy.erasure`); never used to decide whether it may be sent.
    subject_patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PatientGroup(Base):
    """A treatment group, e.g. "Evening IOP Mon/Wed/Thu"; its sessions are every member's sessions."""

    __tablename__ = "patient_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("patient_groups.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SessionKind(enum.StrEnum):
    GROUP = "group"
    INDIVIDUAL = "individual"
    FAMILY = "family"
    MEDICATION = "medication"
    OTHER = "other"


class ProgramSession(Base):
    """A treatment session, one-off or recurring, for a group or one patient. Times are wall-clock times in
    `timezone` (so an 18:00 group stays at 18:00 across daylight-saving changes); `rrule` is RFC 5545.
    `exdates`/`rdates` hold local ISO times; `overrides` moved or cancelled occurrences (see bot.recurrence).
    `uid` is the iCalendar UID of an imported event, so importing the same file again updates it."""

    __tablename__ = "program_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str | None] = mapped_column(String(255), unique=True)
    kind: Mapped[SessionKind] = mapped_column(_enum(SessionKind), default=SessionKind.GROUP)
    title: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(500))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("patient_groups.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    rrule: Mapped[str | None] = mapped_column(String(500))
    exdates: Mapped[list[str]] = mapped_column(JSON, default=list)
    rdates: Mapped[list[str]] = mapped_column(JSON, default=list)
    overrides: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Rsvp(enum.StrEnum):
    COMING = "coming"
    LATE = "late"
    CANNOT = "cannot"


class Attendance(Base):
    """A patient's answer to a session reminder, for one occurrence (its original start, UTC)."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("patient_id", "session_id", "occurrence"),
        # The planner looks up each session's "can't make it" answers (and deleting a session cascades here).
        Index("ix_attendance_session_occurrence", "session_id", "occurrence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("program_sessions.id", ondelete="CASCADE"))
    occurrence: Mapped[datetime] = mapped_column(UTCDateTime)
    response: Mapped[Rsvp] = mapped_column(_enum(Rsvp))
    reason: Mapped[str | None] = mapped_column(EncryptedText)
    awaiting_reason: Mapped[bool] = mapped_column(Boolean, default=False)
    responded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxStatus(enum.StrEnum):
    PENDING = "pending"  # stored, not handled yet (or to be tried again at next_attempt_at)
    DONE = "done"  # handled (or answered as part of a flood); its payload is gone
    PARKED = "parked"  # failed every try: kept for an operator (`inbox stats`) until `purge` (retention)


class InboxUpdate(Base):
    """An update from Telegram, written before Telegram is told it arrived (polling: before the offset moves
    past it; webhook: before answering 200), so a crash loses nothing fetched. `update_id` is unique: an
    update delivered twice is stored once. The payload (the update's JSON, message text included) is
    encrypted and cleared once the update is handled; the chat is known by its pseudonym only."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_inbox_chat_status", "chat_key", "status", "update_id"),  # a chat's pending rows, in order
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The chat's pseudonym (`Keyring.pseudonym`), never Telegram's id: updates of one chat go in order
    chat_key: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[InboxStatus] = mapped_column(_enum(InboxStatus), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(40))  # the exception's class name, never its text
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # done, or parked


# ---- medication support, naloxone, messages from the care team (issue 22; bot.medcare) ---------------------


class MedicationKind(enum.StrEnum):
    BUPRENORPHINE = "buprenorphine"
    METHADONE = "methadone"
    NALTREXONE_DAILY = "naltrexone_daily"  # pills, every day
    NALTREXONE_MONTHLY = "naltrexone_monthly"  # the extended-release shot, every 4 weeks: no daily doses
    OTHER = "other"  # named by the patient or counselor (`MedicationPlan.other_name`)


class MedicationPlan(Base):
    """A patient's medication reminders (opt-in, set by the patient or their counselor). Daily kinds are asked
    about at `dose_time` (the patient's local time); `next_supply` is the next refill or pick-up (daily kinds)
    or the next shot (the monthly injection). Reminders never name the medicine unless `show_name`."""

    __tablename__ = "medication_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), unique=True)
    # Encrypted: buprenorphine or methadone says which use disorder is treated
    kind: Mapped[MedicationKind] = mapped_column(EncryptedEnum(MedicationKind, pad=32))
    other_name: Mapped[str | None] = mapped_column(EncryptedText)
    dose_time: Mapped[time | None] = mapped_column(Time)
    show_name: Mapped[bool] = mapped_column(Boolean, default=False)
    next_supply: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    set_by: Mapped[str] = mapped_column(String(16))  # "patient" or "counselor"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DoseStatus(enum.StrEnum):
    ASKED = "asked"  # the reminder went out; no answer yet
    TAKEN = "taken"
    NOT_YET = "not_yet"  # asked again later, once
    MISSED = "missed"
    RAN_OUT = "ran_out"
    UNANSWERED = "unanswered"  # closed without an answer (counts as neither taken nor missed)


class DoseDay(Base):
    """One day's dose reminder and its answer. One per patient and local day, even with several processes."""

    __tablename__ = "dose_days"
    __table_args__ = (
        UniqueConstraint("patient_id", "local_day", name="uq_dose_days_patient_day"),
        Index("ix_dose_days_status_closes", "status", "closes_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    local_day: Mapped[date] = mapped_column(Date)
    status: Mapped[DoseStatus] = mapped_column(_enum(DoseStatus), default=DoseStatus.ASKED)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ask_again_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # after "Not yet", once
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # this day's answer told the care team


class NaloxoneStatus(Base):
    """Whether the patient has naloxone (Narcan) at home, as they last said; and the reminder to replace it
    after a crisis message about an overdose."""

    __tablename__ = "naloxone_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), unique=True)
    has_naloxone: Mapped[str | None] = mapped_column(_code())  # "yes", "no", "unsure"; None: not answered
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replace_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CareMessage(Base):
    """A message from a counselor to a patient (`/message`), sent through the outbox; `group_id` when it
    went to a schedule group. The words are encrypted at rest."""

    __tablename__ = "care_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("patient_groups.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CareMessageReply(Base):
    """A patient's answer to a care-team message. The counselor's notice names only the alias; the words
    are shown behind "Show details" (audited)."""

    __tablename__ = "care_message_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("care_messages.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---- aftercare check-ins (issue 22 item 4; bot.medcare.aftercare) -----------------------------------------


class AftercareStatus(enum.StrEnum):
    PLANNED = "planned"  # not due yet
    OPEN = "open"  # asked; `step` is the question
    COMPLETE = "complete"
    PARTIAL = "partial"  # closed unfinished, with at least one answer
    MISSED = "missed"  # closed with no answer
    CANCELLED = "cancelled"  # the patient stopped aftercare before it was due


class AftercareCheckIn(Base):
    """One aftercare check-in (1, 2, 4, 8 and 12 weeks after the yes to aftercare, for most the day of
    discharge, at the patient's check-in time): the short check-in and "are you connected to ongoing care?".
    Planned when the patient opts in."""

    __tablename__ = "aftercare_checkins"
    __table_args__ = (
        UniqueConstraint("patient_id", "week", name="uq_aftercare_checkins_patient_week"),
        Index("ix_aftercare_checkins_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    week: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[AftercareStatus] = mapped_column(_enum(AftercareStatus), default=AftercareStatus.PLANNED)
    step: Mapped[str | None] = mapped_column(_code())
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    craving: Mapped[int | None] = mapped_column(Integer)
    mood: Mapped[int | None] = mapped_column(Integer)
    used: Mapped[bool | None] = mapped_column(_code())  # encrypted, as a check-in's
    connected: Mapped[str | None] = mapped_column(_code())  # "yes", "not_yet", "help"
    skipped: Mapped[list[str] | None] = mapped_column(_record())
    # What was used and how, as tapped or read (bot.risk.use.UseReport; no words), as a check-in's
    use_report: Mapped[dict[str, object] | None] = mapped_column(_record())
