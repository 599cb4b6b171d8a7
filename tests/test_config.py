"""Settings: file discovery, environment overrides, and the wording of every kind of error."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from optterm import config
from optterm.config import ConfigError, Settings, load_settings
from optterm.infra import paths
from optterm.providers.factory import build_one

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.toml"
XDG_PLATFORM = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the developer's own config and OPTTERM_* variables out of every test."""
    for name in list(os.environ):
        if name.upper().startswith("OPTTERM_"):
            monkeypatch.delenv(name)
    home = tmp_path / "xdg"
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    if not XDG_PLATFORM:
        # platformdirs ignores XDG_* on macOS and Windows; point the default file into tmp.
        monkeypatch.setattr(paths, "config_file", lambda: home / "config" / "config.toml")
    return home


@pytest.fixture
def write(tmp_path: Path):
    def _write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def load_error(path: Path | str | None = None, env: dict[str, str] | None = None) -> str:
    """Load, expect a ConfigError, check it reads as one clean paragraph, return its text."""
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={} if env is None else env)
    err = info.value
    text = str(err)
    assert text == err.message
    for leak in ("pydantic", "errors.pydantic.dev", "Traceback", "Input should", "\n"):
        assert leak not in text, f"{leak!r} leaked into: {text}"
    # Raised `from None`, so an uncaught error does not print pydantic's dump above it.
    assert err.__cause__ is None
    assert err.__suppress_context__
    return text


# --------------------------------------------------------------------------------------------
# Paths and discovery
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not XDG_PLATFORM, reason="platformdirs honours XDG_* only on Linux/BSD")
def test_paths_follow_xdg_variables(isolated: Path) -> None:
    assert paths.config_file() == isolated / "xdg_config_home" / "optterm" / "config.toml"
    assert paths.data_dir() == isolated / "xdg_data_home" / "optterm"
    assert paths.log_dir().is_relative_to(isolated / "xdg_state_home" / "optterm")
    db = isolated / "xdg_data_home" / "optterm" / "optterm.db"
    assert paths.default_store_url() == f"sqlite+aiosqlite:///{db}"
    assert paths.default_store_url().startswith("sqlite+aiosqlite:////")  # absolute path


def test_paths_create_nothing(isolated: Path) -> None:
    paths.config_file()
    paths.data_dir()
    paths.log_dir()
    paths.default_store_url()
    assert not isolated.exists()


def test_defaults_without_any_file() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.source is None
    assert settings.store.url == paths.default_store_url()
    assert settings.store.retention_days == 30
    assert settings.poller.interval == 15.0
    assert settings.poller.timeout == 15.0
    assert [(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch] == [
        ("NIFTY", 3, 50),
        ("BANKNIFTY", 3, 50),
        ("FINNIFTY", 3, 50),
    ]
    assert settings.providers.order == ["simulator"]
    assert settings.providers.simulator.seed == 42
    assert settings.providers.simulator.scenario == "quiet"
    assert settings.providers.simulator.start is None
    assert settings.providers.nse.base_url == "https://www.nseindia.com"
    assert settings.providers.angelone.base_url == "https://apiconnect.angelone.in"
    assert settings.market.timezone == "Asia/Kolkata"
    assert (settings.market.open, settings.market.close) == (time(9, 15), time(15, 40))
    assert settings.market.holidays == []  # extra closures only; the NSE lists ship as data
    assert settings.market.weekly_expiry_symbols == ["NIFTY"]
    assert settings.market.expiry_weekday == "tuesday"
    assert settings.market.expiry_weekday_number == 1
    assert (settings.log.level, settings.log.format) == ("info", "text")
    assert config.SCENARIO_NAMES[0] == "quiet"
    assert len(config.SCENARIO_NAMES) == 9


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.poller.interval = 1.0  # type: ignore[misc]


def test_explicit_path_str_and_path(write) -> None:
    path = write("[poller]\ninterval = 5\n[log]\nlevel = 'DEBUG'\n")
    for given in (path, str(path)):
        settings = load_settings(given, env={})
        assert settings.poller.interval == 5.0
        assert settings.log.level == "debug"
        assert settings.source == path
        # Everything not in the file keeps its default.
        assert settings.store.retention_days == 30


def test_file_named_by_optterm_config(write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("[store]\nretention_days = 9\n")
    assert load_settings(env={"OPTTERM_CONFIG": str(path)}).store.retention_days == 9
    monkeypatch.setenv("OPTTERM_CONFIG", str(path))
    settings = load_settings()  # the process environment is the default source
    assert settings.store.retention_days == 9
    assert settings.source == path


@pytest.mark.skipif(not XDG_PLATFORM, reason="platformdirs honours XDG_* only on Linux/BSD")
def test_file_found_in_xdg_config_home(isolated: Path) -> None:
    default = isolated / "xdg_config_home" / "optterm" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("[poller]\ninterval = 2.5\n")
    settings = load_settings(env={})
    assert settings.poller.interval == 2.5
    assert settings.source == default


def test_precedence_explicit_then_env_then_default(write) -> None:
    default = paths.config_file()
    default.parent.mkdir(parents=True)
    default.write_text("[poller]\ninterval = 1\n")
    named = write("[poller]\ninterval = 2\n", "named.toml")
    explicit = write("[poller]\ninterval = 3\n", "explicit.toml")
    env = {"OPTTERM_CONFIG": str(named)}
    assert load_settings(explicit, env=env).poller.interval == 3
    assert load_settings(env=env).poller.interval == 2
    assert load_settings(env={}).poller.interval == 1
    # An empty OPTTERM_CONFIG means "not set", not "the current directory".
    assert load_settings(env={"OPTTERM_CONFIG": ""}).poller.interval == 1


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config.toml"
    text = load_error(missing)
    assert str(missing) in text
    assert "does not exist" in text
    assert not missing.parent.exists()


def test_missing_file_named_by_optterm_config(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    text = load_error(env={"OPTTERM_CONFIG": str(missing)})
    assert str(missing) in text
    assert "OPTTERM_CONFIG" in text
    assert "does not exist" in text


def test_directory_instead_of_file(tmp_path: Path) -> None:
    text = load_error(tmp_path)
    assert str(tmp_path) in text
    assert "directory" in text


# --------------------------------------------------------------------------------------------
# The example file
# --------------------------------------------------------------------------------------------


def test_example_file_loads_and_equals_defaults() -> None:
    settings = load_settings(EXAMPLE, env={})
    assert settings == Settings()
    assert settings.model_dump() == Settings().model_dump()
    assert settings.source == EXAMPLE


def _leaf_keys(model: type, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    lines = [line.lstrip("# ").split("=")[0].strip() for line in text.splitlines()]
    for dotted in _leaf_keys(Settings):
        section, _, key = dotted.rpartition(".")
        assert f"[{section}]" in text or f"[[{section}]]" in text, section
        documented = key in lines or f"[[{dotted}]]" in text
        assert documented, f"{dotted} is not documented in config.example.toml"
    for item_key in config.WatchItem.model_fields:
        assert item_key in lines


# --------------------------------------------------------------------------------------------
# Environment overrides
# --------------------------------------------------------------------------------------------


def test_env_overrides_of_each_kind(isolated: Path) -> None:
    env = {
        "OPTTERM_POLLER_INTERVAL": "5",  # float
        "OPTTERM_STORE_RETENTION_DAYS": "7",  # int, key with an underscore
        "OPTTERM_STORE_URL": "postgresql+asyncpg://u@db/optterm",  # string
        "OPTTERM_PROVIDERS_SIMULATOR_SEED": "7",  # nested two levels
        "OPTTERM_PROVIDERS_SIMULATOR_START": "2026-07-14T09:15:00+05:30",  # datetime
        "OPTTERM_PROVIDERS_NSE_BASE_URL": "http://localhost:8080/",
        "OPTTERM_PROVIDERS_ORDER": "nse, simulator",  # comma list
        "OPTTERM_MARKET_HOLIDAYS": "2026-01-26,2026-08-15",  # list of dates
        "OPTTERM_MARKET_CLOSE": "15:30",  # time
        "OPTTERM_MARKET_WEEKLY_EXPIRY_SYMBOLS": "nifty,sensex",
        "OPTTERM_POLLER_WATCH": "reliance:2:10, NIFTY",  # compact watch list
        "optterm_log_format": "json",  # names are case-insensitive
    }
    settings = load_settings(env=env)
    assert settings.poller.interval == 5.0
    assert settings.store.retention_days == 7
    assert settings.store.url == "postgresql+asyncpg://u@db/optterm"
    assert settings.providers.simulator.seed == 7
    assert settings.providers.simulator.start == datetime(
        2026, 7, 14, 9, 15, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    assert settings.providers.nse.base_url == "http://localhost:8080"
    assert settings.providers.order == ["nse", "simulator"]
    assert settings.market.holidays == [date(2026, 1, 26), date(2026, 8, 15)]
    assert settings.market.close == time(15, 30)
    assert settings.market.weekly_expiry_symbols == ["NIFTY", "SENSEX"]
    assert [(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch] == [
        ("RELIANCE", 2, 10),
        ("NIFTY", 1, 20),
    ]
    assert settings.log.format == "json"
    assert not isolated.exists()  # nothing written


def test_env_empty_values() -> None:
    settings = load_settings(env={"OPTTERM_MARKET_HOLIDAYS": "", "OPTTERM_STORE_URL": ""})
    assert settings.market.holidays == []
    assert settings.store.url == paths.default_store_url()  # optional key: empty means default


def test_env_overrides_apply_on_top_of_file(write) -> None:
    path = write("[poller]\ninterval = 30\ntimeout = 3\n[providers.simulator]\nseed = 1\n")
    settings = load_settings(path, env={"OPTTERM_POLLER_INTERVAL": "5"})
    assert settings.poller.interval == 5.0
    assert settings.poller.timeout == 3.0
    assert settings.providers.simulator.seed == 1
    assert settings.source == path


def test_env_and_file_are_validated_together(write) -> None:
    path = write("[market]\nopen = '10:00'\n")
    text = load_error(path, {"OPTTERM_MARKET_CLOSE": "09:30"})
    assert "OPTTERM_MARKET_CLOSE" in text
    assert "market.close" in text
    assert "market.open (10:00)" in text


def test_env_wrong_type_names_the_variable(write) -> None:
    path = write("[poller]\ninterval = 30\n")
    text = load_error(path, {"OPTTERM_POLLER_INTERVAL": "fast"})
    assert "Environment variable OPTTERM_POLLER_INTERVAL" in text
    assert "poller.interval" in text
    assert "number of seconds" in text
    assert "'fast'" in text
    assert str(path) not in text  # the file is not to blame


def test_env_huge_value_is_clipped_in_the_message() -> None:
    text = load_error(env={"OPTTERM_POLLER_INTERVAL": "x" * 100_000})
    assert "OPTTERM_POLLER_INTERVAL" in text and "(100,000 characters)" in text
    assert len(text) < 500


def test_env_impossible_value_names_the_variable() -> None:
    text = load_error(env={"OPTTERM_STORE_RETENTION_DAYS": "0"})
    assert "OPTTERM_STORE_RETENTION_DAYS" in text
    assert "store.retention_days must be between 1 and 3650 days" in text
    text = load_error(env={"OPTTERM_POLLER_WATCH": "NIFTY:1:900"})
    assert "OPTTERM_POLLER_WATCH" in text
    assert "poller.watch[0].strikes" in text
    text = load_error(env={"OPTTERM_POLLER_WATCH": "NIFTY:three"})
    assert "OPTTERM_POLLER_WATCH" in text
    assert "SYMBOL[:EXPIRIES[:STRIKES]]" in text


def test_unknown_optterm_variable_is_an_error() -> None:
    text = load_error(env={"OPTTERM_POLLER_INTERVL": "5"})
    assert "OPTTERM_POLLER_INTERVL" in text
    assert "did you mean OPTTERM_POLLER_INTERVAL?" in text
    text = load_error(env={"OPTTERM_PROVIDERS_SIMULATOR_SED": "5"})
    assert "did you mean OPTTERM_PROVIDERS_SIMULATOR_SEED?" in text


def test_section_variable_is_an_error() -> None:
    text = load_error(env={"OPTTERM_POLLER": "5"})
    assert "OPTTERM_POLLER" in text
    assert "[poller]" in text
    assert "OPTTERM_POLLER_INTERVAL" in text


def test_reserved_variables_are_ignored() -> None:
    env = {
        "OPTTERM_CONFIG": "",
        "OPTTERM_ANGELONE_API_KEY": "secret",
        "OPTTERM_ANGELONE_TOTP_SECRET": "secret",
        "OPTTERM_ANGEL_CLIENT_CODE": "secret",
        "OPTTERM_LOG_FILE": "/var/log/optterm.log",
        "NOT_OPTTERM_POLLER_INTERVAL": "nonsense",
        "PATH": os.environ.get("PATH", ""),
    }
    assert load_settings(env=env) == Settings()
    assert config.is_reserved_env_name("optterm_angelone_password")
    assert not config.is_reserved_env_name("OPTTERM_PROVIDERS_ANGELONE_TIMEOUT")
    # The provider's *settings* are not reserved: only the top-level credential namespace is.
    settings = load_settings(env={"OPTTERM_PROVIDERS_ANGELONE_TIMEOUT": "3"})
    assert settings.providers.angelone.timeout == 3.0


# --------------------------------------------------------------------------------------------
# File errors
# --------------------------------------------------------------------------------------------


def test_malformed_toml_names_file_line_and_column(write) -> None:
    path = write("[poller]\ninterval = 5\ntimeout = fast\n")
    text = load_error(path)
    assert str(path) in text
    assert "not valid TOML" in text
    assert "line 3, column 11" in text
    assert "Invalid value" in text  # the parser's complaint
    assert "timeout = fast" in text  # the offending line


def test_truncated_toml(write) -> None:
    text = load_error(write("[poller]\ninterval = "))
    assert "not valid TOML" in text
    assert "end of the file" in text


def test_not_utf8(write, tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[log]\nlevel = 'd\xe9bug'\n".encode("latin-1"))
    text = load_error(path)
    assert str(path) in text
    assert "UTF-8" in text


@pytest.mark.parametrize(
    ("toml", "key", "suggestion", "allowed"),
    [
        ("[polle]\ninterval = 5\n", "'polle'", "'poller'", "store, poller, providers"),
        ("[poller]\nintervl = 5\n", "'poller.intervl'", "'poller.interval'", "interval, timeout"),
        (
            "[providers.simulator]\nsead = 1\n",
            "'providers.simulator.sead'",
            "'providers.simulator.seed'",
            "[providers.simulator]",
        ),
        (
            "[[poller.watch]]\nsymbol = 'NIFTY'\n[[poller.watch]]\nsymbol = 'X'\n"
            "[[poller.watch]]\nsymbol = 'Y'\nstrike = 5\n",
            "'poller.watch[2].strike'",
            "'poller.watch[2].strikes'",
            "[[poller.watch]]",
        ),
    ],
    ids=["top-level", "section", "subsection", "watch-item"],
)
def test_unknown_key_with_suggestion(write, toml, key, suggestion, allowed) -> None:
    path = write(toml)
    text = load_error(path)
    assert str(path) in text
    assert f"unknown key {key}" in text
    assert f"did you mean {suggestion}?" in text
    assert allowed in text


def test_unknown_key_without_close_match(write) -> None:
    text = load_error(write("[log]\nzzzz = 1\n"))
    assert "unknown key 'log.zzzz'" in text
    assert "did you mean" not in text
    assert "level, format" in text


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[poller]\ninterval = 'fast'\n",
            "poller.interval expects a number of seconds; got the string 'fast'",
        ),
        (
            "[poller]\ninterval = true\n",
            "poller.interval expects a number of seconds; got the boolean true",
        ),
        (
            "[store]\nretention_days = 30.5\n",
            "store.retention_days expects a whole number of days; got the number 30.5",
        ),
        ("[log]\nlevel = 3\n", "log.level expects one of debug, info, warning, error"),
        ("poller = 5\n", "poller expects a table ([poller]); got the number 5"),
        (
            "[poller.watch]\nsymbol = 'NIFTY'\n",
            "poller.watch expects an array of tables ([[poller.watch]]); got a table",
        ),
        (
            "[[poller.watch]]\nsymbol = 'NIFTY'\nexpiries = '3'\n",
            "poller.watch[0].expiries expects a whole number of expiries; got the string '3'",
        ),
        (
            "[market]\nholidays = [2026-01-26, 'Diwali']\n",
            "market.holidays[1] expects a date like 2026-01-26; got the string 'Diwali'",
        ),
        (
            "[market]\nopen = 'nine'\n",
            "market.open expects a time of day written HH:MM, like 09:15; got the string 'nine'",
        ),
        ("[providers]\norder = 'nse'\n", "providers.order expects an array of provider names"),
        (
            "[[poller.watch]]\nsymbol = 'NIFTY'\n[[poller.watch]]\nexpiries = 2\n",
            "poller.watch[1] is missing the required key 'symbol'",
        ),
    ],
)
def test_wrong_type(write, toml: str, expected: str) -> None:
    path = write(toml)
    text = load_error(path)
    assert str(path) in text
    assert expected in text


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[poller]\ninterval = 0\n", "poller.interval must be between 0.2 and 3600 seconds"),
        ("[poller]\ntimeout = 500\n", "poller.timeout must be between 0.1 and 120 seconds"),
        ("[store]\nretention_days = -1\n", "store.retention_days must be between 1 and 3650 days"),
        (
            "[market]\nopen = 15:45:00\n",
            "market.close must be later than market.open (15:45); got 15:40",
        ),
        ("[market]\nclose = '09:00'\n", "market.close must be later than market.open (09:15)"),
        ("[market]\ntimezone = 'Asia/Kolkatta'\n", "did you mean 'Asia/Kolkata'?"),
        ("[market]\ntimezone = 'IST'\n", "market.timezone must be an IANA time zone name"),
        (
            "[providers.simulator]\nscenario = 'gama_squeeze'\n",
            "providers.simulator.scenario must be one of quiet, call_writing",
        ),
        ("[providers.simulator]\nscenario = 'gama_squeeze'\n", "did you mean 'gamma_squeeze'?"),
        (
            "[providers.simulator]\nstart = 2026-07-14T09:15:00\n",
            "providers.simulator.start must include a UTC offset",
        ),
        ("[providers.simulator]\nspeed = 0\n", "must be between 0.1 and 10000 simulated seconds"),
        (
            "[[poller.watch]]\nsymbol = 'NIFTY'\n[[poller.watch]]\nsymbol = 'BANKNIFTY'\n"
            "[[poller.watch]]\nsymbol = 'nifty'\n",
            "poller.watch[2].symbol repeats 'NIFTY', already watched at poller.watch[0]",
        ),
        ("[poller]\nwatch = []\n", "poller.watch must not be empty"),
        (
            "[[poller.watch]]\nsymbol = 'NIFTY'\nstrikes = 500\n",
            "poller.watch[0].strikes must be between 1 and 300 strikes on each side of ATM",
        ),
        ("[[poller.watch]]\nsymbol = 'NIF TY'\n", "poller.watch[0].symbol must be an exchange"),
        ("[providers]\norder = []\n", "providers.order must not be empty"),
        ("[providers]\norder = ['nse', 'NSE']\n", "providers.order[1] repeats 'nse'"),
        ("[providers]\norder = ['nes']\n", "providers.order[0] must be one of angelone, nse"),
        ("[providers]\norder = ['nes']\n", "did you mean 'nse'?"),
        ("[providers.nse]\nbase_url = 'ftp://x'\n", "providers.nse.base_url must be an http://"),
        ("[market]\nexpiry_weekday = 'saturday'\n", "market.expiry_weekday must be one of monday"),
        ("[market]\nweekly_expiry_symbols = ['OK', 'n!fty']\n", "weekly_expiry_symbols[1]"),
        ("[log]\nlevel = 'warn'\n", "did you mean 'warning'?"),
        ("[log]\nformat = 'xml'\n", "log.format must be one of text, json"),
        ("[store]\nurl = 'optterm.db'\n", "store.url is a relative path ('optterm.db')"),
        ("[store]\nurl = '://optterm.db'\n", "store.url must be a SQLite file's path or an"),
    ],
)
def test_impossible_values(write, toml: str, expected: str) -> None:
    path = write(toml)
    text = load_error(path)
    assert str(path) in text
    assert expected in text


def test_store_url_may_be_a_files_path(write, tmp_path, monkeypatch) -> None:
    # The path a trader writes is the SQLite file: absolute, or under ~.
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(write("[store]\nurl = '~/desk/optterm.db'\n"), env={})
    assert settings.store.url == f"sqlite+aiosqlite:///{tmp_path}/desk/optterm.db"
    settings = load_settings(write(f"[store]\nurl = '{tmp_path}/o.db'\n"), env={})
    assert settings.store.url == f"sqlite+aiosqlite:///{tmp_path}/o.db"


def test_store_url_password_is_not_echoed(write) -> None:
    text = load_error(write("[store]\nurl = 'postgres//user:hunter2@db/optterm'\n"))
    assert "hunter2" not in text
    assert "user:***@db" in text


def test_several_problems_in_one_paragraph(write) -> None:
    path = write("[poller]\ninterval = 0\ntimeout = 0\n[log]\nlevel = 'loud'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert len(info.value.problems) == 3
    assert info.value.path == path
    for fragment in ("poller.interval", "poller.timeout", "log.level"):
        assert fragment in str(info.value)


def test_partial_provider_table_keeps_default_url(write) -> None:
    settings = load_settings(write("[providers.nse]\ntimeout = 4\n"), env={})
    assert settings.providers.nse.base_url == "https://www.nseindia.com"
    assert settings.providers.nse.timeout == 4.0


def test_values_are_normalised(write) -> None:
    toml = (
        "[providers]\norder = ['NSE', 'Simulator']\n"
        "[market]\nexpiry_weekday = 'Thu'\nopen = 09:00:00\nholidays = ['2026-01-26']\n"
        "[[poller.watch]]\nsymbol = 'm&m'\n"
    )
    settings = load_settings(write(toml), env={})
    assert settings.providers.order == ["nse", "simulator"]
    assert settings.market.expiry_weekday == "thursday"
    assert settings.market.open == time(9, 0)
    assert settings.market.holidays == [date(2026, 1, 26)]
    assert settings.poller.watch[0].symbol == "M&M"


def test_errors_write_nothing(isolated: Path, write, tmp_path: Path) -> None:
    path = write("[poller]\ninterval = 0\n")
    before = sorted(tmp_path.rglob("*"))
    load_error(path, {"OPTTERM_STORE_RETENTION_DAYS": "0"})
    load_error(write("[poller\n", "broken.toml"))
    assert not isolated.exists()
    assert set(tmp_path.rglob("*")) == {*before, tmp_path / "files" / "broken.toml"}


@pytest.mark.process
def test_import_stays_light() -> None:
    code = (
        "import sys, optterm.config\n"
        "heavy = [m for m in ('textual', 'numpy', 'sqlalchemy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_nse_tuning_keys_reach_the_provider(tmp_path) -> None:
    from optterm.providers.nse import client as nse

    assert nse.ENDPOINT_FAMILIES == config.NSE_ENDPOINTS
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[providers.nse]\nmin_interval = 2.5\nendpoints = ["Legacy", "v3"]\n'
        "cache_ttl = 0\nlot_sizes = { reliance = 250 }\n"
    )
    settings = load_settings(cfg, env={})
    assert settings.providers.nse.endpoints == ["legacy", "v3"]
    assert settings.providers.nse.lot_sizes == {"RELIANCE": 250}
    provider = build_one(settings, "nse")
    assert provider.cache_ttl == 0.0
    assert provider._limiter.spacing >= 2.5
    assert provider._underlyings["RELIANCE"].lot_size == 250
    bad = tmp_path / "bad.toml"
    bad.write_text('[providers.nse]\nendpoints = ["legacy", "legacy"]\n')
    with pytest.raises(ConfigError, match="repeats 'legacy'"):
        load_settings(bad, env={})
    bad.write_text("[providers.nse]\nlot_sizes = { RELIANCE = 0 }\n")
    with pytest.raises(ConfigError, match="lot sizes must be positive"):
        load_settings(bad, env={})


def test_every_provider_setting_is_a_provider_argument() -> None:
    # The factory passes a provider's section on whole, so each key must be an argument.
    import inspect

    from optterm.providers.angelone.client import AngelOneProvider
    from optterm.providers.failover import FailoverProvider
    from optterm.providers.nse.client import NseProvider
    from optterm.providers.simulator.provider import SimulatorProvider

    providers = Settings().providers
    for section, cls, own in (
        (providers.simulator, SimulatorProvider, set()),
        (providers.nse, NseProvider, set()),
        (providers.angelone, AngelOneProvider, {"master_url"}),  # the master's, not the client's
    ):
        accepted = set(inspect.signature(cls).parameters)
        assert set(type(section).model_fields) - own <= accepted, cls.__name__
    assert FailoverProvider([build_one(Settings(), "simulator")]).policy == providers.failover
