"""Free text encrypted at rest: what patients and counselors write is stored as Fernet tokens.

Columns typed `EncryptedText` or `EncryptedJSON` are encrypted when written and decrypted when read, with
the keys in `ENCRYPTION_KEY` (comma-separated: the first encrypts, all decrypt, so a new key can be put in
front and `python -m bot keys rotate` re-encrypts everything with it). The keys belong to an engine
(`bind`), not to the process, so two databases with different keys never mix.

A value that is not a token is read as it is: text written before encryption existed; `keys rotate`
encrypts it. Without a key, free text can be neither written nor read: never stored in the clear.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

# every Fernet token starts so (the version byte 0x80, then the high bytes of its timestamp)
CIPHERTEXT_START = "gAAAAA"


class EncryptionError(RuntimeError):
    pass


class Keyring:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise EncryptionError("no encryption key")
        self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])

    @classmethod
    def parse(cls, value: str) -> Keyring:
        return cls([k for k in value.split(",") if k.strip()])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise EncryptionError(
                "a stored value cannot be decrypted with ENCRYPTION_KEY: was a key removed too early?"
            ) from None


_keyrings: WeakKeyDictionary[Dialect, Keyring] = WeakKeyDictionary()


def bind(engine: AsyncEngine, keyring: Keyring | None) -> None:
    """Use `keyring` for the encrypted columns of everything done through `engine`."""
    if keyring is None:
        _keyrings.pop(engine.dialect, None)
    else:
        _keyrings[engine.dialect] = keyring


def is_token(value: str) -> bool:
    return value.startswith(CIPHERTEXT_START)


def _keyring(dialect: Dialect) -> Keyring:
    keyring = _keyrings.get(dialect)
    if keyring is None:
        raise EncryptionError("ENCRYPTION_KEY is not set: free text is never stored unencrypted")
    return keyring


class EncryptedText(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _keyring(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not is_token(value):
            return value
        return _keyring(dialect).decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document (e.g. an outbox message's text and buttons), encrypted as a whole."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return _keyring(dialect).encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(_keyring(dialect).decrypt(value) if is_token(value) else value)
