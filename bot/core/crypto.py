"""Encryption at rest and pseudonyms: what the database alone must never tell.

Columns typed `EncryptedText`, `EncryptedJSON` or `EncryptedInt` (all `Encrypted`) are encrypted when written
and decrypted when read, with the keys in `ENCRYPTION_KEY` (comma-separated: the first encrypts, all decrypt,
so a new key can be put in front and `python -m bot keys rotate` re-encrypts everything with it). The keys
belong to an engine (`bind`), not to the process, so two databases with different keys never mix.

What is encrypted: everything people write (free text), the Telegram user and chat ids, and the clinical
values that say on their own who used or who is at risk (see README, "What the database holds").
`EncryptedJSON(pad=...)` pads the value before encrypting it, so the length of a short code ("high" or
"imminent", true or false) does not give it away; `EncryptedInt` pads every id to one length.

Pseudonyms: a person is found by a keyed hash of their Telegram id (`Keyring.pseudonym`), never by the id.
The hash key is derived from each Fernet key with HKDF-SHA256 (no second secret to keep): a database
reader without ENCRYPTION_KEY cannot compute it, so cannot test a known Telegram id against the table. A
value is hashed with the first key when written and looked up under every key (`pseudonyms`), so rows
written before a key was put in front are still found; `keys rotate` hashes them again with the new key.

A value that is not a token is read as it is: text written before encryption existed; `keys rotate`
encrypts it. Without a key, nothing encrypted can be written or read: never stored in the clear.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

# every Fernet token starts so (the version byte 0x80, then the high bytes of its timestamp)
CIPHERTEXT_START = "gAAAAA"
PSEUDONYM_INFO = b"iop-companion pseudonym v1"
TAG_INFO = b"iop-companion tag v1"
PSEUDONYM_BITS = 63  # fits a BIGINT, never negative
INT_WIDTH = 20  # characters of a padded integer: every 64-bit id, sign included


class EncryptionError(RuntimeError):
    pass


def _derive(key: str, info: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(key.strip().encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


class Keyring:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise EncryptionError("no encryption key")
        self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        self._hash_keys = [_derive(k, PSEUDONYM_INFO) for k in keys]
        self._tag_key = _derive(keys[0], TAG_INFO)

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

    def pseudonym(self, value: int) -> int:
        """The keyed hash a Telegram user or chat id is stored and found by (with the first key)."""
        return _hash(self._hash_keys[0], value)

    def pseudonyms(self, value: int) -> list[int]:
        """`pseudonym` under every key, newest first: what to look a value up by while keys rotate."""
        return list(dict.fromkeys(_hash(key, value) for key in self._hash_keys))

    def tag(self, text: str) -> str:
        """A keyed hash of a text (32 hex digits), for a key that must be stable but tell nothing, such as
        an outbox key naming what a notice is about. Under the first key only: a key rotation may let one
        notice be queued twice, never lost."""
        return hmac.new(self._tag_key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _hash(key: bytes, value: int) -> int:
    digest = hmac.new(key, str(int(value)).encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - PSEUDONYM_BITS)


_keyrings: WeakKeyDictionary[Dialect, Keyring] = WeakKeyDictionary()


def bind(engine: AsyncEngine, keyring: Keyring | None) -> None:
    """Use `keyring` for the encrypted columns of everything done through `engine`."""
    if keyring is None:
        _keyrings.pop(engine.dialect, None)
    else:
        _keyrings[engine.dialect] = keyring


def is_token(value: str) -> bool:
    return value.startswith(CIPHERTEXT_START)


def keyring_for(dialect: Dialect) -> Keyring:
    """The keys of the engine this dialect belongs to (EncryptionError if it has none)."""
    keyring = _keyrings.get(dialect)
    if keyring is None:
        raise EncryptionError("ENCRYPTION_KEY is not set: free text is never stored unencrypted")
    return keyring


def has_keyring(dialect: Dialect) -> bool:
    return dialect in _keyrings


class Encrypted(TypeDecorator[Any]):
    """A value stored as a Fernet token (TEXT); subclasses say how the value is written as text."""

    impl = Text
    cache_ok = True

    def encode(self, value: Any) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> Any:
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else keyring_for(dialect).encrypt(self.encode(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.decode(keyring_for(dialect).decrypt(value) if is_token(value) else value)


class EncryptedText(Encrypted):
    cache_ok = True

    def encode(self, value: Any) -> str:
        return str(value)

    def decode(self, text: str) -> Any:
        return text


class EncryptedJSON(Encrypted):
    """A JSON document (e.g. an outbox message's text and buttons, or a risk level), encrypted as a whole.
    With `pad`, spaces are added up to a multiple of `pad` characters before encrypting, so that values of
    different lengths (a level, a category, true or false) cannot be told apart by their size."""

    cache_ok = True

    def __init__(self, pad: int = 0) -> None:
        super().__init__()
        self.pad = pad

    def encode(self, value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text + " " * (-len(text) % self.pad) if self.pad else text

    def decode(self, text: str) -> Any:
        return json.loads(text)


class EncryptedInt(Encrypted):
    """An integer (a Telegram user or chat id), padded to one length so every token is as long."""

    cache_ok = True

    def encode(self, value: Any) -> str:
        return str(int(value)).rjust(INT_WIDTH)

    def decode(self, text: str) -> Any:
        return int(text)


class EncryptedEnum(EncryptedJSON):
    """A member of a string enum, encrypted and padded as `EncryptedJSON` (a medicine's kind, say)."""

    cache_ok = True

    def __init__(self, enum_class: type[enum.Enum], pad: int = 0) -> None:
        super().__init__(pad)
        self.enum_class = enum_class

    def encode(self, value: Any) -> str:
        return super().encode(self.enum_class(value).value)

    def decode(self, text: str) -> Any:
        return self.enum_class(super().decode(text))
