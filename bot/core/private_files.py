"""Whether a cached file that holds code (compiled texts, a pickled tokenizer) may be trusted: the rule
Jinja2's bytecode cache uses for its folder, applied to the folder and to the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private(path: Path, *, root_too: bool = False) -> bool:
    """Owned by this user (or, with `root_too`, by root, who could change the bot's own code anyway: a
    container's cache made at build) and writable by no one else; not a symbolic link."""
    try:
        found = path.lstat()
    except OSError:
        return False
    owners = {os.getuid(), 0} if root_too else {os.getuid()}
    return (
        not stat.S_ISLNK(found.st_mode)
        and found.st_uid in owners
        and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
