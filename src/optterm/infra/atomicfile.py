"""Replace a regular file in one step, never writing through whatever else sits at its path.

`optterm history export -o PATH` may run as root, in a folder other users can write to. So:
only a regular file (or nothing) at PATH is replaced — a device node, a named pipe, a symlink
or a folder is refused (writing "through" them would fill a pipe, overwrite a symlink's target
or turn /dev/full into a file). The data goes to a temporary file beside PATH with a random
name, created by tempfile.mkstemp (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600): a symlink planted
at a predictable name can neither be followed nor pre-empt it. It is flushed and synced, takes
the mode (and, where allowed, the owner) of the file it replaces — or the configured mode for
a new one — and is renamed over PATH. On any error it is removed and PATH is untouched.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from optterm.infra.filemode import FileMode

__all__ = ["NotARegularFile", "check_target", "replace_file"]


class NotARegularFile(Exception):
    """Something other than a regular file is at the path: it is never replaced."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path = path
        self.kind = kind


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def check_target(path: Path) -> os.stat_result | None:
    """The regular file at `path` (lstat: a symlink is not followed), None when there is none;
    NotARegularFile for anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(path, _kind(st.st_mode))
    return st


@contextlib.contextmanager
def replace_file(path: Path, mode: FileMode = FileMode.PRIVATE) -> Iterator[IO[str]]:
    """A text stream (UTF-8, newlines as written) whose content replaces `path` when the block
    ends without an error. Raises NotARegularFile before writing anything when `path` is not a
    regular file; OSError (disk full, no such folder, …) with `path` untouched."""
    old = check_target(path)
    # The name is cut short so that a target near the 255-byte limit still has a temp name.
    prefix = f".{path.name[:64]}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            if old is None:
                os.fchmod(fh.fileno(), mode.file_bits)
            else:
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode) & 0o777)
                # Root replacing someone's file, or a user keeping a shared group: best effort.
                with contextlib.suppress(OSError):
                    os.fchown(fh.fileno(), old.st_uid, old.st_gid)
        check_target(path)  # once more: something else may have been put there meanwhile
        os.replace(tmp, path)  # rename(2) replaces the name; it never follows a symlink
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
