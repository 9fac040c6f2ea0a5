"""One `python -m bot run` per SQLite database: an advisory lock (flock) on a file beside the database.

The kernel lets go of a flock when the process holding it ends, however it ends (`kill -9` and a power cut
included), so the lock file a crashed process leaves behind never blocks the next start: only a live process
holds the lock. The file stays (deleting it would let a third process lock a different file); it holds the
pid of the last process that took it, for the message. PostgreSQL needs no such lock: several processes may
share it (see `bot.core.db.JobLocks`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


class AlreadyRunning(Exception):
    """Another process is running the bot on this SQLite database; the message says which and what to do."""


def lock_path(database_url: str) -> Path | None:
    """The lock file for a SQLite database file; None for PostgreSQL or an in-memory database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.lock")


@contextmanager
def only_process(database_url: str) -> Iterator[None]:
    """Hold the database's run lock while the block runs; AlreadyRunning if another process holds it."""
    path = lock_path(database_url)
    if path is None or not path.parent.is_dir():  # no folder: opening the database says so better
        yield
        return
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise AlreadyRunning(
                f"the bot is already running on {path.with_suffix('')}"
                + (f" (process {holder})" if holder.isdigit() else "")
                + ": SQLite serves one process, stop that one first (several need PostgreSQL)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield  # closing the file lets go of the lock
