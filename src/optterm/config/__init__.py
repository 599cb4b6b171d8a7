"""Settings: a TOML file plus ``OPTTERM_*`` environment overrides, strictly validated.

Build them with :func:`load_settings` (``Settings()`` is the built-in defaults); any problem is
one :class:`ConfigError` whose message names the file or variable, the dotted key
(``poller.watch[2].strikes``) and what is allowed. Every key is optional, and
``config.example.toml`` at the top of the repository documents them all with their defaults.

The package is split by concern:

- ``schema``: the sections, their defaults, ranges and cross-field checks (the one place a
  setting is defined; the engine and providers read the sections rather than copying them);
- ``load``: finding and reading the file, :func:`load_settings`, :class:`ConfigError`;
- ``env``: ``OPTTERM_*`` overrides (``OPTTERM_POLLER_INTERVAL=5``, ``OPTTERM_POLLER_WATCH=
  NIFTY:3:50,RELIANCE``);
- ``messages``: pydantic's errors reworded into the sentences users see;
- ``checks`` and ``keys``: the helpers those share.

Importing it must stay cheap (``serve`` and every non-TUI command load settings first), so
nothing here imports Textual, numpy or SQLAlchemy.
"""

from optterm.config.env import (
    ENV_PREFIX,
    RESERVED_ENV_NAMES,
    RESERVED_ENV_PREFIXES,
    is_reserved_env_name,
)
from optterm.config.load import ConfigError, load_settings
from optterm.config.schema import (
    ANGELONE_BASE_URL,
    ANGELONE_MASTER_URL,
    ANGELONE_STREAM_URL,
    GEX_CONVENTIONS,
    LOG_FORMATS,
    LOG_LEVELS,
    NSE_BASE_URL,
    NSE_ENDPOINTS,
    OI_UNIT_NAMES,
    PROVIDER_NAMES,
    SCENARIO_NAMES,
    SOLVE_IV,
    WEEKDAYS,
    AnalyticsSettings,
    AngelOneSettings,
    DisplaySettings,
    FailoverSettings,
    HttpProviderSettings,
    LogSettings,
    MarketSettings,
    NotifySettings,
    NseSettings,
    PatternSettings,
    PollerSettings,
    ProvidersSettings,
    SchedulerSettings,
    Settings,
    SimulatorSettings,
    StoreSettings,
    StrategySettings,
    StreamSettings,
    WatchItem,
)

__all__ = [
    "ANGELONE_BASE_URL",
    "ANGELONE_MASTER_URL",
    "ANGELONE_STREAM_URL",
    "ENV_PREFIX",
    "GEX_CONVENTIONS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "NSE_BASE_URL",
    "NSE_ENDPOINTS",
    "OI_UNIT_NAMES",
    "PROVIDER_NAMES",
    "RESERVED_ENV_NAMES",
    "RESERVED_ENV_PREFIXES",
    "SCENARIO_NAMES",
    "SOLVE_IV",
    "WEEKDAYS",
    "AnalyticsSettings",
    "AngelOneSettings",
    "ConfigError",
    "DisplaySettings",
    "FailoverSettings",
    "HttpProviderSettings",
    "LogSettings",
    "MarketSettings",
    "NotifySettings",
    "NseSettings",
    "PatternSettings",
    "PollerSettings",
    "ProvidersSettings",
    "SchedulerSettings",
    "Settings",
    "SimulatorSettings",
    "StoreSettings",
    "StrategySettings",
    "StreamSettings",
    "WatchItem",
    "is_reserved_env_name",
    "load_settings",
]
