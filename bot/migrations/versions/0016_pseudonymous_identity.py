"""pseudonymous identity and encrypted clinical codes (a copy of the database says nothing about who uses)

Revision ID: 0016_pseudonyms
Revises: 0015_medcare
Create Date: 2026-12-07 10:30:00

Telegram user and chat ids become Fernet tokens (TEXT) in patients, counselors, escalation_alerts and outbox;
patients and counselors are found by `telegram_ref`, a keyed hash of the user id (unique), outbox rows by
`chat_ref` (the chat id's); the inbox keeps only the chat's hash (`chat_id` becomes `chat_key`). The clinical
codes that say on their own who used or is at risk (check-in step, use answer, what was used, skipped
questions; care flag kinds and details; escalation level, category, source, outcome and verdict; risk signal
level, categories and source; screener trigger, step, answers and result; questionnaires' step, answers,
scores and safety item; the medication's kind; naloxone at home; aftercare check-ins' step, use answer,
"connected to care" and skipped questions; audit event details) become encrypted JSON (TEXT). Care-team
notices' outbox keys (`flag:<kind>:<event>:<chat>`) become `flag:<keyed hash>`, as the code now writes
them. Caseload views' audit details no longer list patient ids: each becomes a row of the new
`audit_event_patients` (deleted with the patient).

Every existing value is converted here, so the migration needs ENCRYPTION_KEY when the database holds any
row (`python -m bot db upgrade` with the same settings as `run`). It uses `bot.core.crypto` for the tokens and
hashes (the same code that reads them). On SQLite, changing a column's type rebuilds its table (Alembic's
batch mode); `bot.core.db.upgrade` turns foreign keys off meanwhile (else dropping the old `patients` table
would delete every row that points at it) and checks them afterwards.

Downgrading decrypts everything back into the old columns (ENCRYPTION_KEY again needed), except the notices'
outbox keys, which stay hashed (they only stop a notice from being queued twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection, Dialect

from bot.core import crypto, updates

revision: str = "0016_pseudonyms"
down_revision: str | None = "0015_medcare"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
CODE_PAD, RECORD_PAD = 32, 128  # as bot.core.models' _code() and _record()


class Converted(NamedTuple):  # (a dataclass needs its module in sys.modules: Alembic's are not)
    table: str
    column: str
    old_type: sa.types.TypeEngine[Any]
    nullable: bool
    new: crypto.Encrypted  # the column type it becomes (TEXT holding a token)
    old_kind: str  # how the old value is written: "int", "text", "bool" or "json"


def _int() -> crypto.Encrypted:
    return crypto.EncryptedInt()


def _code() -> crypto.Encrypted:
    return crypto.EncryptedJSON(pad=CODE_PAD)


def _record() -> crypto.Encrypted:
    return crypto.EncryptedJSON(pad=RECORD_PAD)


COLUMNS = (
    Converted("patients", "telegram_user_id", sa.BigInteger(), False, _int(), "int"),
    Converted("patients", "chat_id", sa.BigInteger(), False, _int(), "int"),
    Converted("counselors", "telegram_user_id", sa.BigInteger(), True, _int(), "int"),
    Converted("counselors", "chat_id", sa.BigInteger(), True, _int(), "int"),
    Converted("escalation_alerts", "chat_id", sa.BigInteger(), False, _int(), "int"),
    Converted("outbox", "chat_id", sa.BigInteger(), False, _int(), "int"),
    Converted("checkins", "step", sa.String(length=16), True, _code(), "text"),
    Converted("checkins", "used", sa.Boolean(), True, _code(), "bool"),
    Converted("checkins", "use_report", sa.JSON(), True, _record(), "json"),
    Converted("checkins", "skipped", sa.JSON(), True, _record(), "json"),
    Converted("care_flags", "kind", sa.String(length=32), False, _code(), "text"),
    Converted("care_flags", "detail", sa.JSON(), True, _record(), "json"),
    Converted("escalations", "level", sa.String(length=16), False, _code(), "text"),
    Converted("escalations", "category", sa.String(length=32), False, _code(), "text"),
    Converted("escalations", "source", sa.String(length=32), False, _code(), "text"),
    Converted("escalations", "outcome", sa.String(length=32), True, _code(), "text"),
    Converted("escalations", "verdict", sa.String(length=16), True, _code(), "text"),
    Converted("risk_signals", "level", sa.String(length=16), False, _code(), "text"),
    Converted("risk_signals", "categories", sa.JSON(), False, _record(), "json"),
    Converted("risk_signals", "source", sa.String(length=32), False, _code(), "text"),
    Converted("suicide_screens", "trigger", sa.String(length=16), False, _code(), "text"),
    Converted("suicide_screens", "step", sa.String(length=16), True, _code(), "text"),
    Converted("suicide_screens", "answers", sa.JSON(), False, _record(), "json"),
    Converted("suicide_screens", "result", sa.String(length=16), True, _code(), "text"),
    Converted("measures", "step", sa.String(length=16), True, _code(), "text"),
    Converted("measures", "answers", sa.JSON(), False, _record(), "json"),
    Converted("measures", "scores", sa.JSON(), True, _record(), "json"),
    Converted("measures", "safety_positive", sa.Boolean(), False, _code(), "bool"),
    Converted("medication_plans", "kind", sa.String(length=24), False, _code(), "text"),
    Converted("naloxone_status", "has_naloxone", sa.String(length=8), True, _code(), "text"),
    Converted("aftercare_checkins", "step", sa.String(length=16), True, _code(), "text"),
    Converted("aftercare_checkins", "used", sa.Boolean(), True, _code(), "bool"),
    Converted("aftercare_checkins", "connected", sa.String(length=8), True, _code(), "text"),
    Converted("aftercare_checkins", "skipped", sa.JSON(), True, _record(), "json"),
    Converted("audit_events", "detail", sa.JSON(), True, _record(), "json"),
)
TABLES = tuple(dict.fromkeys(c.table for c in COLUMNS))
REFS = {"patients": "telegram_ref", "counselors": "telegram_ref", "outbox": "chat_ref"}
REF_SOURCE = {"patients": "telegram_user_id", "counselors": "telegram_user_id", "outbox": "chat_id"}
CASELOAD_VIEWED = "caseload.viewed"


def _key(table: str) -> str:
    return "update_id" if table == "inbox" else "id"


def _table(table: str, *columns: str) -> sa.TableClause:
    """The table with its key and `columns`, untyped: values read and written as stored."""
    return sa.table(table, *(sa.column(name) for name in dict.fromkeys((_key(table), *columns))))


def _keyring(connection: Connection, direction: str) -> crypto.Keyring | None:
    """The engine's keys; None when there is nothing to convert (an empty database needs no key)."""
    if crypto.has_keyring(connection.dialect):
        return crypto.keyring_for(connection.dialect)
    tables = [*TABLES, "inbox"]
    rows = sum(
        connection.scalar(sa.select(sa.func.count()).select_from(_table(table))) or 0 for table in tables
    )
    if rows:
        raise RuntimeError(
            f"migration 0016 ({direction}) converts the Telegram ids and clinical codes already stored, with "
            "ENCRYPTION_KEY: set it (the key the bot runs with) and run `python -m bot db upgrade` again"
        )
    return None


def _old_value(kind: str, raw: Any) -> Any:
    """A stored value of the old column, as the model wrote it (None for NULL and JSON null)."""
    if raw is None:
        return None
    if kind == "int":
        return int(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "t")
    if kind == "json":
        return json.loads(raw) if isinstance(raw, str) else raw
    return str(raw)


Where = Callable[[sa.TableClause], sa.ColumnElement[bool]]


def _batches(connection: Connection, table: str, columns: Sequence[str], where: Where | None = None) -> Any:
    """Rows (id first, then `columns` as stored) in batches of BATCH, by id."""
    t = _table(table, *columns)
    key = t.c[_key(table)]
    last = None
    while True:
        query = sa.select(key, *(t.c[name] for name in columns)).order_by(key).limit(BATCH)
        if where is not None:
            query = query.where(where(t))
        if last is not None:
            query = query.where(key > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _update(connection: Connection, table: str, values: list[dict[str, Any]]) -> None:
    """Set each row's values (`_id`: the row's key); every row sets the same columns."""
    if not values:
        return
    names = [name for name in values[0] if name != "_id"]
    t = _table(table, *names)
    statement = (
        sa.update(t)
        .where(t.c[_key(table)] == sa.bindparam("_id"))
        .values({name: sa.bindparam(f"_{name}") for name in names})
    )
    connection.execute(
        statement, [{"_id": row["_id"], **{f"_{name}": row[name] for name in names}} for row in values]
    )


# ---- upgrade -----------------------------------------------------------------------------------------------


def upgrade() -> None:
    connection = op.get_bind()
    keyring = _keyring(connection, "upgrade")
    op.create_table(
        "audit_event_patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audit_event_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_event_patients_audit_event_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_audit_event_patients_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event_patients")),
    )
    with op.batch_alter_table("audit_event_patients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_event_patients_audit_event_id"), ["audit_event_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_event_patients_patient_id"), ["patient_id"], unique=False)

    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in REFS:
                batch_op.add_column(sa.Column(REFS[table], sa.BigInteger(), nullable=True))
            if table in ("patients", "counselors"):
                batch_op.drop_constraint(f"uq_{table}_telegram_user_id", type_="unique")
            for c in (c for c in COLUMNS if c.table == table):
                batch_op.alter_column(
                    c.column,
                    existing_type=c.old_type,
                    type_=sa.Text(),
                    existing_nullable=c.nullable,
                    postgresql_using=f"{c.column}::text",
                )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_chat_id")
        batch_op.alter_column("chat_id", new_column_name="chat_key", existing_type=sa.BigInteger())
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_chat_key"), ["chat_key"], unique=False)

    if keyring is not None:
        _links_from_details(connection)
        for table in TABLES:
            _encrypt(connection, keyring, table)
        _hash_inbox_chats(connection, keyring)
        _hash_notice_keys(connection, keyring)

    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.alter_column("telegram_ref", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_patients_telegram_ref"), ["telegram_ref"])
    with op.batch_alter_table("counselors", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_counselors_telegram_ref"), ["telegram_ref"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("chat_ref", existing_type=sa.BigInteger(), nullable=False)


def _links_from_details(connection: Connection) -> None:
    """Caseload views listed their patients' ids in the detail ("patients": "3,7"): they become rows of
    audit_event_patients (for patients that still exist), and the detail keeps how many were shown."""
    existing: set[int] = set(connection.scalars(sa.select(sa.column("id")).select_from(_table("patients"))))

    def viewed(t: sa.TableClause) -> sa.ColumnElement[bool]:
        return sa.and_(sa.column("action") == CASELOAD_VIEWED, t.c.detail.is_not(None))

    for rows in _batches(connection, "audit_events", ["detail"], viewed):
        links: list[dict[str, Any]] = []
        details: list[dict[str, Any]] = []
        for event_id, raw in rows:
            detail = _old_value("json", raw)
            if not isinstance(detail, dict) or "patients" not in detail:
                continue
            ids = [int(p) for p in str(detail.pop("patients") or "").split(",") if p.strip().isdigit()]
            detail["shown"] = len(ids)
            links += [
                {"audit_event_id": event_id, "patient_id": patient}
                for patient in dict.fromkeys(ids)
                if patient in existing
            ]
            details.append({"_id": event_id, "detail": json.dumps(detail)})
        _update(connection, "audit_events", details)
        if links:
            connection.execute(
                sa.insert(_table("audit_event_patients", "audit_event_id", "patient_id")), links
            )


def _encrypt(connection: Connection, keyring: crypto.Keyring, table: str) -> None:
    """Every value of the table's converted columns as a token (and its pseudonym, for `REFS`)."""
    dialect = connection.dialect
    columns = [c for c in COLUMNS if c.table == table]
    names = [c.column for c in columns]
    for rows in _batches(connection, table, names):
        values = []
        for row in rows:
            changed: dict[str, Any] = {"_id": row[0]}
            for c, raw in zip(columns, row[1:], strict=True):
                if raw is not None and not (isinstance(raw, str) and crypto.is_token(raw)):
                    value = _old_value(c.old_kind, raw)
                    changed[c.column] = c.new.process_bind_param(value, dialect)
                    if table in REFS and c.column == REF_SOURCE[table] and value is not None:
                        changed[REFS[table]] = keyring.pseudonym(value)
            if len(changed) > 1:
                values.append(changed)
        _by_shape(connection, table, values)


def _by_shape(connection: Connection, table: str, values: list[dict[str, Any]]) -> None:
    """UPDATE in groups of rows that set the same columns (an executemany needs one statement)."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in values:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    for group in shapes.values():
        _update(connection, table, group)


def _hash_inbox_chats(connection: Connection, keyring: crypto.Keyring) -> None:
    for rows in _batches(connection, "inbox", ["chat_key"], lambda t: t.c.chat_key.is_not(None)):
        _update(
            connection,
            "inbox",
            [{"_id": update_id, "chat_key": keyring.pseudonym(int(chat))} for update_id, chat in rows],
        )


def _hash_notice_keys(connection: Connection, keyring: crypto.Keyring) -> None:
    """`flag:<kind>:<event>:<chat>` as `bot.careteam.notices` writes it now: `flag:<hash of the rest>`."""
    for rows in _batches(connection, "outbox", ["key"], lambda t: t.c.key.like("flag:%")):
        _update(
            connection,
            "outbox",
            [
                {"_id": row_id, "key": f"flag:{keyring.tag(key[len('flag:') :])}"}
                for row_id, key in rows
                if key.count(":") >= 3  # the old form; a hashed key has one colon
            ],
        )


# ---- downgrade ---------------------------------------------------------------------------------------------


def _stored(kind: str, value: Any) -> Any:
    """A value as the old column stores it (bound as text; the column type is changed back afterwards)."""
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value)
    if kind == "bool":
        return "1" if value else "0"  # read as a boolean by PostgreSQL's cast and by SQLite alike
    return str(value)


def downgrade() -> None:
    connection = op.get_bind()
    keyring = _keyring(connection, "downgrade")
    dialect = connection.dialect
    if keyring is not None:
        for table in TABLES:
            _decrypt(connection, dialect, table)
        _unhash_inbox_chats(connection, dialect)
        _details_from_links(connection)

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_chat_key"))
        batch_op.alter_column("chat_key", new_column_name="chat_id", existing_type=sa.BigInteger())
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_chat_id", ["chat_id"], unique=False)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in ("patients", "counselors"):
                batch_op.drop_constraint(f"uq_{table}_telegram_ref", type_="unique")
            if table in REFS:
                batch_op.drop_column(REFS[table])
            for c in (c for c in COLUMNS if c.table == table):
                batch_op.alter_column(
                    c.column,
                    existing_type=sa.Text(),
                    type_=c.old_type,
                    existing_nullable=c.nullable,
                    postgresql_using=_using(c),
                )
            if table in ("patients", "counselors"):
                batch_op.create_unique_constraint(f"uq_{table}_telegram_user_id", ["telegram_user_id"])
    op.drop_table("audit_event_patients")


def _using(c: Converted) -> str:
    cast: dict[str, Callable[[str], str]] = {
        "int": lambda name: f"{name}::bigint",
        "bool": lambda name: f"{name}::boolean",
        "json": lambda name: f"{name}::json",
        "text": lambda name: f"{name}::varchar",
    }
    return cast[c.old_kind](c.column)


def _decrypt(connection: Connection, dialect: Dialect, table: str) -> None:
    columns = [c for c in COLUMNS if c.table == table]
    for rows in _batches(connection, table, [c.column for c in columns]):
        values = []
        for row in rows:
            changed: dict[str, Any] = {"_id": row[0]}
            for c, raw in zip(columns, row[1:], strict=True):
                if raw is not None:
                    changed[c.column] = _stored(c.old_kind, c.new.process_result_value(raw, dialect))
            if len(changed) > 1:
                values.append(changed)
        _by_shape(connection, table, values)


def _unhash_inbox_chats(connection: Connection, dialect: Dialect) -> None:
    """The chat id of each stored update, read from the update itself (handled ones keep none: NULL)."""
    payload = crypto.EncryptedText()
    for rows in _batches(connection, "inbox", ["payload"]):
        values = []
        for update_id, raw in rows:
            text = payload.process_result_value(raw, dialect) if raw is not None else None
            parsed = json.loads(text) if text else None
            chat = updates.chat_of(parsed) if isinstance(parsed, dict) else None
            values.append({"_id": update_id, "chat_key": chat})
        _update(connection, "inbox", values)


def _details_from_links(connection: Connection) -> None:
    """Caseload views list their patients in the detail again, as before."""
    links = _table("audit_event_patients", "audit_event_id", "patient_id")
    rows = connection.execute(
        sa.select(links.c.audit_event_id, links.c.patient_id).order_by(
            links.c.audit_event_id, links.c.patient_id
        )
    ).all()
    listed: dict[int, list[int]] = {}
    for event_id, patient_id in rows:
        listed.setdefault(event_id, []).append(patient_id)
    for event_id, ids in listed.items():
        events = _table("audit_events", "detail")
        raw = connection.scalar(sa.select(events.c.detail).where(events.c.id == event_id))
        detail = json.loads(raw) if raw else {}
        detail = detail if isinstance(detail, dict) else {}
        detail.pop("shown", None)
        detail["patients"] = ",".join(map(str, ids))
        _update(connection, "audit_events", [{"_id": event_id, "detail": json.dumps(detail)}])
