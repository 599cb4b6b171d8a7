"""Channel URLs Apprise has accepted, remembered so that a command need not import Apprise to
hear it again.

Loading the config checks every `[notify]` channel with Apprise (a rule's tag:NAME must lead
somewhere), and importing Apprise costs 0.6–1 s on these machines: on every command, also the
ones that never send. So an accepted URL is remembered, as a digest of the Apprise version and
the URL (never the URL itself: it carries a token), in a private file in the cache folder. A URL
Apprise refuses is never remembered: it is asked about every time, and refused with the same one
line everywhere (config load, `serve`, `alerts test`, rule creation, `doctor`). Another Apprise
version asks afresh. Deleting the file only costs one slower start.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

__all__ = ["FILE_NAME", "accepted_before", "remember_accepted"]

FILE_NAME = "apprise-accepted"
_KEEP = 256  # digests kept, newest last: far more channels than anyone configures


def _apprise_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("apprise")
    except metadata.PackageNotFoundError:
        return None


def _digest(version: str, url: str) -> str:
    return hashlib.sha256(f"optterm channel\0{version}\0{url}".encode()).hexdigest()


def _path() -> Path:
    from optterm.infra.paths import cache_dir

    return cache_dir() / FILE_NAME


def _known(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").split()
    except FileNotFoundError:
        return []


def accepted_before(url: str) -> bool:
    """Has this Apprise version accepted `url` before (on this account)?"""
    version = _apprise_version()
    if version is None:
        return False
    try:
        return _digest(version, url) in _known(_path())
    except (OSError, ValueError):  # unreadable or not ours: ask Apprise
        return False


def remember_accepted(url: str) -> None:
    """Remember that Apprise accepted `url`. Best effort: a cache folder that cannot be written
    costs speed, never an answer."""
    from optterm.infra.atomicfile import NotARegularFile, replace_file
    from optterm.infra.filemode import make_dirs

    version = _apprise_version()
    if version is None:
        return
    path = _path()
    digest = _digest(version, url)
    with contextlib.suppress(OSError, ValueError, NotARegularFile):
        known = _known(path)
        if digest in known:
            return
        make_dirs(path.parent)
        with replace_file(path) as fh:  # 0600, replaced whole: a reader never sees half
            fh.write("\n".join([*known[-(_KEEP - 1) :], digest]) + "\n")
