"""Configuration from the environment and an optional `.env` file.

A missing or malformed setting stops start-up with one line naming it (see `load_settings`); the token is a
`SecretStr` so it never shows in a repr, a log line or an error message.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.core.clock import OfficeHours, parse_closed_days, parse_offsets

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
TOKEN_IN_TEXT = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./iop_companion.sqlite3"
# A phone number as patients read it: digits with the usual separators, 3 to 15 digits (911 to E.164).
PHONE_PATTERN = re.compile(r"\+?(?=(?:\D*\d){3,15}\D*$)[0-9(][0-9 ().-]*[0-9]")


def _default_content_dir() -> Path:
    """`./content` when there is one, else the content that ships beside the package (a source checkout)."""
    here = Path("content")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "content"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


CLINIC_VALUES = ("program_name", "clinic_phone", "after_hours_phone")  # names texts use for `Clinic`


@dataclass(frozen=True)
class Clinic:
    """What patients read about the clinic; every text may name it (see `values`)."""

    program_name: str
    clinic_phone: str
    after_hours_phone: str

    def values(self) -> dict[str, str]:
        """The names a text uses: {{ program_name }}, {{ clinic_phone }}, {{ after_hours_phone }}."""
        return {
            "program_name": self.program_name,
            "clinic_phone": self.clinic_phone,
            "after_hours_phone": self.after_hours_phone,
        }


MEASURE_ID = re.compile(r"^[a-z][a-z0-9_]{0,11}$")


def parse_measures(text: str) -> tuple[tuple[str, int], ...]:
    """MEASURES: "phq9:14,gad7:14,bam:30" (questionnaire id : every so many days), or "off"."""
    text = text.strip().lower()
    if text in ("", "off", "none"):
        return ()
    found: list[tuple[str, int]] = []
    for part in text.replace(";", ",").split(","):
        name, _, days = part.strip().partition(":")
        name = name.strip()
        if not MEASURE_ID.match(name) or not days.strip().isdecimal() or not 1 <= int(days) <= 365:
            raise ValueError("questionnaire:days pairs, such as phq9:14,gad7:14,bam:30 (days 1-365), or off")
        if name in (n for n, _ in found):
            raise ValueError(f"{name} is named twice")
        found.append((name, int(days)))
    return tuple(found)


# The list settings given as text, each read by its own parser (Settings._from_text).
_TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "reminder_offsets": parse_offsets,
    "measures": parse_measures,
    "office_closed_days": parse_closed_days,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = Field(default=None, alias="BOT_TOKEN")
    bot_username: str | None = Field(default=None, alias="BOT_USERNAME")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    telegram_api_base_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_BASE_URL")
    default_timezone: str = Field(default="America/New_York", alias="DEFAULT_TIMEZONE")
    encryption_key: SecretStr | None = Field(default=None, alias="ENCRYPTION_KEY")
    content_dir: Path = Field(default_factory=lambda: _default_content_dir(), alias="CONTENT_DIR")
    invite_ttl_hours: int = Field(default=72, ge=1, le=24 * 30, alias="INVITE_TTL_HOURS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # Check-ins: an unfinished one closes (kept as partial) after this long; one nudge if untouched.
    checkin_expiry_hours: float = Field(default=6, gt=0, le=24, alias="CHECKIN_EXPIRY_HOURS")
    checkin_nudge_minutes: float = Field(default=120, gt=0, le=24 * 60, alias="CHECKIN_NUDGE_MINUTES")
    # What a patient is asked to type after a button (a medicine's name, a time or a day in /meds, a reply to
    # a message from the care team) waits this long; text typed later is read as any other message.
    typed_answer_hours: float = Field(default=12, gt=0, le=24 * 7, alias="TYPED_ANSWER_HOURS")
    missed_checkins_flag: int = Field(default=3, ge=1, le=30, alias="MISSED_CHECKINS_FLAG")
    missed_sessions_flag: int = Field(default=2, ge=1, le=30, alias="MISSED_SESSIONS_FLAG")
    high_craving: int = Field(default=7, ge=0, le=10, alias="HIGH_CRAVING")
    # Minutes without an acknowledgement before each widening of an alert: to the backup counselors, then
    # to the supervisors; after the last step it repeats at the last gap until someone answers.
    repage_imminent_minutes: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 10), alias="REPAGE_IMMINENT_MINUTES"
    )
    repage_high_minutes: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(30, 60), alias="REPAGE_HIGH_MINUTES"
    )
    # Signals of the same category within this many hours join the open escalation instead of a new one.
    escalation_group_hours: float = Field(default=24, gt=0, le=24 * 14, alias="ESCALATION_GROUP_HOURS")
    # The C-SSRS screener: not asked again within this many hours of a finished one (a plain "are you safe?"
    # is asked instead), and closed after this many minutes without an answer, which alerts the care team.
    cssrs_repeat_hours: float = Field(default=24, ge=0, le=24 * 14, alias="CSSRS_REPEAT_HOURS")
    cssrs_unanswered_minutes: float = Field(default=60, gt=0, le=24 * 60, alias="CSSRS_UNANSWERED_MINUTES")
    # After a patient answers "I'm safe", the semantic layer's own questions pause this long (its pages, the
    # rules and their questions still act): a patient is not asked again and again about the same worry.
    semantic_cooldown_hours: float = Field(default=4, ge=0, le=72, alias="SEMANTIC_COOLDOWN_HOURS")
    # Office hours in the clinic's time zone (DEFAULT_TIMEZONE), and the dates the office stays closed
    # (holidays: no office hours that day). Imminent alerts also page whoever is on call
    # (`python -m bot oncall set`); outside office hours, patients are told when the office next opens.
    office_hours: str = Field(default="Mon-Fri 08:00-18:00", alias="OFFICE_HOURS")
    office_closed_days: Annotated[frozenset[date], NoDecode] = Field(
        default=frozenset(), alias="OFFICE_CLOSED_DAYS"
    )
    # This many moderate signals within 48 hours count as one high signal.
    moderate_signals_raise: int = Field(default=3, ge=2, le=20, alias="MODERATE_SIGNALS_RAISE")
    # How often time-driven work (check-in prompts, nudges, expiry) looks for something due.
    scheduler_tick_seconds: float = Field(default=30, gt=0, le=300, alias="SCHEDULER_TICK_SECONDS")
    # The outbox (reminders, prompts, notices, alert pages): the overall send rate (Telegram allows about 30
    # messages a second), how many sends may be under way at once, how long a claimed row stays with the
    # process that claimed it, how many tries before a row is marked failed, how often it looks for due rows.
    send_rate_per_second: float = Field(default=25, gt=0, le=1000, alias="SEND_RATE_PER_SECOND")
    outbox_concurrency: int = Field(default=16, ge=1, le=256, alias="OUTBOX_CONCURRENCY")
    outbox_lease_seconds: float = Field(default=60, ge=5, le=3600, alias="OUTBOX_LEASE_SECONDS")
    outbox_max_attempts: int = Field(default=6, ge=1, le=50, alias="OUTBOX_MAX_ATTEMPTS")
    dispatch_tick_seconds: float = Field(default=2, gt=0, le=60, alias="DISPATCH_TICK_SECONDS")
    # The inbox: how many tries an update gets (2 s, 4 s, 8 s ... apart) before it is parked for an operator,
    # and how many chats are handled at once (each chat's updates in order).
    inbox_max_attempts: int = Field(default=8, ge=1, le=50, alias="INBOX_MAX_ATTEMPTS")
    inbox_concurrency: int = Field(default=32, ge=1, le=256, alias="INBOX_CONCURRENCY")
    # How long an update claimed by a process stays with it (renewed while it works): a process that has
    # ended loses its claims within seconds; this bounds the wait for one that hangs holding its lock.
    inbox_lease_seconds: float = Field(default=15, ge=5, le=3600, alias="INBOX_LEASE_SECONDS")
    # Session reminders: how long before a session (whole days go at the same clock time N days before;
    # others are real time before the start), and how far ahead the planner puts them in the outbox.
    reminder_offsets: Annotated[tuple[timedelta, ...], NoDecode] = Field(
        default=(timedelta(hours=24), timedelta(hours=1)), alias="REMINDER_OFFSETS"
    )
    plan_tick_seconds: float = Field(default=300, gt=0, le=600, alias="PLAN_TICK_SECONDS")
    # Validated questionnaires (bot/measures): each `id:days` is offered at the patient's first check-in time
    # after set-up, then every `days` days (a counselor may change it for one patient: /measure ALIAS phq9 7);
    # "off" for none. Unanswered, one closes after MEASURE_EXPIRY_DAYS; at most MEASURES_PER_DAY start on one
    # day (the rest wait for the next).
    measures: Annotated[tuple[tuple[str, int], ...], NoDecode] = Field(
        default=(("phq9", 14), ("gad7", 14), ("bam", 30)), alias="MEASURES"
    )
    measure_expiry_days: float = Field(default=3, gt=0, le=14, alias="MEASURE_EXPIRY_DAYS")
    measures_per_day: int = Field(default=2, ge=1, le=10, alias="MEASURES_PER_DAY")
    # Webhook mode (`python -m bot run --webhook`): the public HTTPS URL Telegram posts updates to (a reverse
    # proxy in front passes them to WEBHOOK_LISTEN:WEBHOOK_PORT, path included), and the secret Telegram
    # sends back in a header so forged requests are refused.
    webhook_url: str | None = Field(default=None, alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="WEBHOOK_SECRET")
    webhook_listen: str = Field(default="127.0.0.1", alias="WEBHOOK_LISTEN")
    webhook_port: int = Field(default=8080, ge=1, le=65535, alias="WEBHOOK_PORT")
    webhook_max_connections: int = Field(default=40, ge=1, le=100, alias="WEBHOOK_MAX_CONNECTIONS")
    # /healthz, /readyz and /metrics (bot.status): unset, they are served beside the webhook in webhook mode
    # only; set, on STATUS_LISTEN:STATUS_PORT in both modes (the container's health check reads it there).
    status_listen: str = Field(default="127.0.0.1", alias="STATUS_LISTEN")
    status_port: int | None = Field(default=None, ge=1, le=65535, alias="STATUS_PORT")
    # Set: /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, anyone who reaches it.
    metrics_token: SecretStr | None = Field(default=None, alias="METRICS_TOKEN")
    # How often the running bot looks for edited content; 0 turns the watcher off (then use /reload).
    content_watch_seconds: float = Field(default=5, ge=0, le=3600, alias="CONTENT_WATCH_SECONDS")
    # Refuse to start while a patient-facing content file has no current clinical review
    # (content/REVIEW.yaml); off, `run` only logs which files they are.
    require_content_review: bool = Field(default=False, alias="REQUIRE_CONTENT_REVIEW")
    # The clinic as patients should know it: its program's name, its phone, and the line for after hours.
    # (Issue 18 items 6 and 12: the same names the item-6 change adds; optional until then.)
    program_name: str | None = Field(default=None, alias="PROGRAM_NAME")
    clinic_phone: str | None = Field(default=None, alias="CLINIC_PHONE")
    after_hours_phone: str | None = Field(default=None, alias="AFTER_HOURS_PHONE")

    @field_validator("repage_imminent_minutes", "repage_high_minutes", mode="before")
    @classmethod
    def _minutes_list(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                minutes = tuple(float(part) for part in value.replace(";", ",").split(",") if part.strip())
            except ValueError:
                raise ValueError("a comma-separated list of minutes, such as 5,10") from None
            value = minutes
        if isinstance(value, tuple | list) and (
            not value or any(float(m) <= 0 for m in value) or list(value) != sorted(value)
        ):
            raise ValueError("increasing minutes above 0, such as 5,10")
        return value

    @field_validator("reminder_offsets", "measures", "office_closed_days", mode="before")
    @classmethod
    def _from_text(cls, value: object, info: ValidationInfo) -> object:
        """A list setting given as text (the environment, `.env`), read by its own parser."""
        if isinstance(value, str):
            assert info.field_name is not None
            return _TEXT_PARSERS[info.field_name](value)
        return value

    @field_validator("office_hours")
    @classmethod
    def _office_hours(cls, value: str) -> str:
        OfficeHours.parse(value)
        return value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TOKEN_PATTERN.match(value.get_secret_value()):
            # Never echo the value: it is a secret even when malformed.
            raise ValueError("must look like 123456789:AA... (the token @BotFather gave you)")
        return value

    @field_validator("bot_username")
    @classmethod
    def _username_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.removeprefix("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", value):
            raise ValueError("must be a Telegram bot username such as iop_companion_bot")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL (example: sqlite+aiosqlite:///./iop.sqlite3)") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(f"must use one of the drivers {', '.join(SUPPORTED_DRIVERS)}")
        return value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.telegram.org")
        if TOKEN_IN_TEXT.search(value):
            # Never echo it: the token belongs in BOT_TOKEN, and this value is printed in errors.
            raise ValueError("must not contain the bot token (put it in BOT_TOKEN)")
        value = value.rstrip("/")
        if value.endswith("/bot"):
            raise ValueError(
                f"ends in /bot: give the server's address without it ({value.removesuffix('/bot')}); "
                "the bot adds /bot<token>/<method> itself"
            )
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone name (example: America/Chicago)") from None
        return value

    @field_validator("encryption_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for key in value.get_secret_value().split(","):
            try:
                Fernet(key.strip())
            except ValueError:
                raise ValueError(
                    "must be one or more comma-separated Fernet keys (make one with `python -m bot keys new`)"
                ) from None
        return value

    @field_validator(
        "webhook_url",
        "webhook_secret",
        "program_name",
        "clinic_phone",
        "after_hours_phone",
        "status_port",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value  # `KEY=` in a compose file

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(
                "must be the public https URL Telegram posts to, such as https://bot.example.org/tg"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError("must be 16 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,256}", value.get_secret_value()):
            # Never echo it: it is a secret even when malformed.
            raise ValueError("must be 16 to 256 characters of A-Z, a-z, 0-9 and . _ ~ + / = -")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("program_name")
    @classmethod
    def _program_name_shape(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 60 or not value.isprintable()):
            raise ValueError("must be one line of at most 60 characters, such as Riverside IOP")
        return value

    @field_validator("clinic_phone", "after_hours_phone")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value is not None and not PHONE_PATTERN.fullmatch(value):
            raise ValueError("must be a phone number such as 555-0100 or +1 (555) 010-0199")
        return value

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)

    @property
    def office(self) -> OfficeHours:
        """OFFICE_HOURS with OFFICE_CLOSED_DAYS (not cached on the instance: `model_copy` would copy it)."""
        return _office(self.office_hours, self.office_closed_days)

    def require_encryption_key(self) -> str:
        if self.encryption_key is None:
            raise ConfigError(
                "ENCRYPTION_KEY: not set; free text is stored encrypted "
                "(make a key with `python -m bot keys new`)"
            )
        return self.encryption_key.get_secret_value()

    def require_webhook(self) -> tuple[str, str]:
        """The webhook's public URL and secret, both needed to run in webhook mode."""
        if self.webhook_url is None:
            raise ConfigError(
                "WEBHOOK_URL: not set; webhook mode needs the public https URL Telegram posts to"
            )
        if self.webhook_secret is None:
            raise ConfigError(
                "WEBHOOK_SECRET: not set; webhook mode refuses requests without it "
                "(16+ characters of A-Z, a-z, 0-9, _ and -)"
            )
        return self.webhook_url, self.webhook_secret.get_secret_value()

    def require_clinic(self) -> Clinic:
        """The clinic's name and numbers, which the bot's texts name: `run` cannot start without them (no
        promise in a crisis reply may name a number the clinic has not given)."""
        missing = {
            "PROGRAM_NAME": (self.program_name, "the program's name, such as Riverside IOP"),
            "CLINIC_PHONE": (self.clinic_phone, "the number patients call in office hours"),
            "AFTER_HOURS_PHONE": (self.after_hours_phone, "the number that answers outside office hours"),
        }
        for name, (value, meaning) in missing.items():
            if value is None:
                raise ConfigError(f"{name}: not set; patients read it in their messages ({meaning})")
        assert self.program_name and self.clinic_phone and self.after_hours_phone
        return Clinic(self.program_name, self.clinic_phone, self.after_hours_phone)

    def require_token(self) -> str:
        if self.bot_token is None:
            raise ConfigError("BOT_TOKEN: not set (get one from @BotFather, or run `python -m bot demo`)")
        return self.bot_token.get_secret_value()


@lru_cache(maxsize=8)
def _office(hours: str, closed: frozenset[date]) -> OfficeHours:
    return replace(OfficeHours.parse(hours), closed=closed)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{field.upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Build settings; raise ConfigError naming the first bad setting (never its value)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def exit_on_config_error(error: ConfigError) -> None:
    print(f"configuration error: {error}", file=sys.stderr)
    raise SystemExit(2)
