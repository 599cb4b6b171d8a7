"""Where optterm keeps its files: config, data (the SQLite store) and logs.

Every function only computes a path; none creates a directory. Creating directories is the
job of whoever writes there, so that merely loading settings (or failing to) leaves nothing
behind on disk.

The locations come from platformdirs, which on Linux honours ``XDG_CONFIG_HOME``,
``XDG_DATA_HOME`` and ``XDG_STATE_HOME``. They are looked up on every call rather than cached
at import, so a test (or a wrapper script) can redirect them by setting those variables.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

__all__ = [
    "APP_NAME",
    "config_file",
    "data_dir",
    "default_store_url",
    "log_dir",
    "screenshot_dir",
]

APP_NAME = "optterm"


def _dirs() -> platformdirs.PlatformDirs:
    # appauthor=False keeps Windows paths as %APPDATA%\optterm rather than
    # %APPDATA%\<author>\optterm; there is no vendor directory to nest under.
    return platformdirs.PlatformDirs(appname=APP_NAME, appauthor=False)


def config_file() -> Path:
    """The default config file: ``<user config dir>/optterm/config.toml`` (may not exist)."""
    return _dirs().user_config_path / "config.toml"


def data_dir() -> Path:
    """The user data directory, home of the default SQLite store (may not exist)."""
    return _dirs().user_data_path


def cache_dir() -> Path:
    """The user cache directory (instrument masters, cookies; safe to delete)."""
    return _dirs().user_cache_path


def log_dir() -> Path:
    """The user log directory (on Linux ``$XDG_STATE_HOME/optterm/log``; may not exist)."""
    return _dirs().user_log_path


def screenshot_dir() -> Path:
    """Where the TUI saves a screenshot: the user's Downloads folder when there is one, else
    ``<data dir>/screenshots`` (servers and fresh accounts often have no Downloads)."""
    downloads = _dirs().user_downloads_path
    return downloads if downloads.is_dir() else data_dir() / "screenshots"


def default_store_url() -> str:
    """SQLAlchemy URL of the embedded default store, ``sqlite+aiosqlite:///<data dir>/optterm.db``.

    The path is absolute, so the URL has four slashes on POSIX. ``as_posix`` keeps Windows
    paths in the forward-slash form SQLAlchemy parses without escaping.
    """
    return f"sqlite+aiosqlite:///{(data_dir() / 'optterm.db').as_posix()}"
