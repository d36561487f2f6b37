"""Files of personal data (log, spool, outcomes, rejected records) are readable by the server's user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) mode 0700; an existing folder is tightened to 0700. Refused
    (``PermissionError``) when the folder, or a symbolic link leading to it, belongs to another user: they could
    read the personal data written there, or point the link elsewhere later."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    ours = os.geteuid()
    link = path.lstat()
    if stat.S_ISLNK(link.st_mode) and link.st_uid != ours:
        raise PermissionError(f"{path} is a symbolic link of uid {link.st_uid}, not of the server's user ({ours})")
    if (owner := path.stat().st_uid) != ours:
        raise PermissionError(f"{path} belongs to uid {owner}, not to the server's user ({ours}): personal data "
                              "is written only to a folder of the server's own")
    path.chmod(PRIVATE_DIR_MODE)
    return path


def open_private(path: Path, mode: str = "ab") -> IO[Any]:
    """``open(path, mode)`` creating the file 0600 (never wider, whatever the umask), never through a symbolic link
    (one planted where a file of ours will be would send personal data elsewhere)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, PRIVATE_FILE_MODE), mode)


def check_private_file(path: Path) -> None:
    """Refuse (``PermissionError``) a file of secrets or personal data that another user owns or may read."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must be a file of the server's user only (mode 0600, not a link)")
