"""What every handler and job needs: settings, the database, the content and the metrics, for one process.

It lives in its own module so that handlers, jobs and the application can all name it without importing
each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.content import Catalog
from bot.content.instruments import InstrumentLibrary
from bot.content.modules import ModuleLibrary
from bot.content_check.loader import Content, load_content
from bot.core.config import Settings
from bot.core.crypto import Keyring, keyring_for
from bot.core.db import make_engine, make_sessionmaker
from bot.intake.memory import AnsweredWithoutDatabase
from bot.intake.precedence import Precedence
from bot.metrics import Metrics


@dataclass
class Runtime:
    """What every handler needs. Reach it with `bot.handlers.base.runtime_of(context)`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    content: Content
    refused_fingerprint: str | None = None  # the last edit that failed the check, so it is reported once
    metrics: Metrics = field(default_factory=Metrics)
    # crisis replies sent while the database could not be used (see bot.intake.processor)
    answered_without_database: AnsweredWithoutDatabase = field(default_factory=AnsweredWithoutDatabase)
    # urgent work under way (a crisis turn, its reply being sent): other chats give way (bot.intake.processor)
    precedence: Precedence = field(default_factory=Precedence)
    strangers_answered: dict[int, date] = field(default_factory=dict)  # Telegram user id: last day answered
    wake_outbox: Callable[[], None] = lambda: (
        None
    )  # send what was just put in the outbox now, not at the tick

    @property
    def catalog(self) -> Catalog:
        return self.content.catalog

    @property
    def modules(self) -> ModuleLibrary:
        return self.content.modules

    @property
    def keyring(self) -> Keyring:
        """ENCRYPTION_KEY's keys, for the pseudonyms of Telegram ids (see `bot.core.crypto`)."""
        return keyring_for(self.engine.dialect)

    @property
    def measures(self) -> InstrumentLibrary:
        return self.content.measures

    @cached_property
    def clinic(self) -> dict[str, str]:
        """The clinic's name and numbers, which every text may use (settings PROGRAM_NAME, CLINIC_PHONE,
        AFTER_HOURS_PHONE)."""
        return self.settings.require_clinic().values()

    def text(self, key: str, language: str, **variables: object) -> str:
        return self.catalog.render_with(self.clinic, key, language, **variables)

    async def reload_content(self) -> Content:
        """Load the content again; on any problem raise ContentError and keep serving the last good one.

        The whole check takes a second or more: it runs in a thread, so updates (a crisis message among them)
        are not held up meanwhile."""
        content = await asyncio.to_thread(load_content, self.settings.content_dir)
        self.content = content
        return content

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        settings.require_clinic()  # before anything is loaded: one line naming what is missing
        content = load_content(settings.content_dir)
        engine = make_engine(settings.database_url, encryption_key=settings.require_encryption_key())
        return cls(settings, engine, make_sessionmaker(engine), content)
