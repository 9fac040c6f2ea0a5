"""`python -m bot keys ...`: encryption keys."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bot.cli.common import with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


async def cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


async def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import audit, key_rotation

    settings.require_encryption_key()

    async def work(session: AsyncSession) -> int:
        written = await key_rotation.rotate(session)
        audit.record(session, "keys.rotated", actor_type="cli", rows=sum(written.values()))
        for table, count in written.items():
            print(f"{table}: {count} rows")
        print(
            f"re-encrypted {sum(written.values())} rows with the first key of ENCRYPTION_KEY; "
            "the other keys can now be removed",
            file=sys.stderr,
        )
        return 0

    return await with_session(settings, work)


def add_parsers(commands: Any) -> None:
    """Add `keys` (`commands` is the top-level subparsers object)."""
    keys = commands.add_parser("keys", help="encryption keys", description="Encryption key tools.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = key_commands.add_parser(
        "new",
        help="print a new ENCRYPTION_KEY",
        description="Print a new random Fernet key for ENCRYPTION_KEY.",
    )
    new.set_defaults(handler=cmd_new)
    rotate = key_commands.add_parser(
        "rotate",
        help="re-encrypt all free text with the first key of ENCRYPTION_KEY",
        description="Put a new key first in ENCRYPTION_KEY (new,old), run this, then remove the old key. "
        "Free text stored before encryption is encrypted too.",
    )
    rotate.set_defaults(handler=cmd_rotate)
