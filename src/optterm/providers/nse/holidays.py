"""NSE's trading holidays: the lists optterm knows for each year, and the exchange's own list,
fetched, checked and cached.

    lists = known_lists()                    # shipped lists, a year replaced by the fetched one
    days = all_days(lists) | set(extra)      # the calendar's holidays (factory.market_calendar)
    warning = year_warning(lists, 2027, extra)   # None when the year is covered

The lists ship with optterm (market.shipped_holidays: one file per year, a year NSE has not
announced yet missing or marked incomplete). With a live provider configured, the scheduler
refreshes them once a day from the exchange (`refresh`): GET /api/holiday-master?type=trading on
the NSE website, through the NSE provider (its cookies and pacing), whose "FO" key is the F&O
segment's list. The answer is checked before it is believed (`parse_holiday_master`: dates that
parse, one or two calendar years, a plausible number of days); a payload that fails is refused
with the reason, and the lists stay what they were. A good one is cached in the data directory
(`cache_path`), where it replaces the shipped list of its year from then on.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from optterm.infra.filemode import make_dirs
from optterm.market import HolidayList, holiday_list, parse_day, shipped_holidays

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = [
    "HOLIDAY_PATH",
    "LIVE_PROVIDERS",
    "cache_path",
    "known_lists",
    "parse_holiday_master",
    "read_cache",
    "refresh",
    "refreshes",
    "write_cache",
    "year_warning",
]

log = logging.getLogger("optterm.holidays")

HOLIDAY_PATH: Final = "/api/holiday-master"
SEGMENT: Final = "FO"
# Providers that mean a live feed is configured: then the exchange's list is fetched.
LIVE_PROVIDERS: Final = frozenset({"nse", "angelone"})
# NSE has closed on 13 to 19 weekdays a year; fewer than this many in a year's answer means a
# payload cut short (or a placeholder), not the exchange's list.
MIN_DAYS: Final = 5
MAX_DAYS: Final = 40
_CACHE_VERSION: Final = 1


def cache_path() -> Path:
    """Where the exchange's fetched lists are kept: ``<data dir>/holidays/nse-fo.json``."""
    from optterm.infra import paths

    return paths.data_dir() / "holidays" / "nse-fo.json"


# ------------------------------------------------------------------------------- the payload


def parse_holiday_master(
    payload: Any, source: str, *, min_days: int = MIN_DAYS
) -> dict[int, HolidayList]:
    """The F&O lists in an answer of NSE's holiday master, by year; ValueError saying what is
    wrong with it otherwise. Weekend rows are left out (no session to cancel)."""
    if not isinstance(payload, dict):
        raise ValueError(f"not a JSON object but {type(payload).__name__}")
    rows = payload.get(SEGMENT)
    if not isinstance(rows, list) or not rows:
        keys = ", ".join(sorted(str(k) for k in payload)) or "none"
        raise ValueError(f'no "{SEGMENT}" (futures & options) list in it (keys: {keys})')
    by_year: dict[int, dict[date, str]] = {}
    for row in rows:
        raw = row.get("tradingDate") if isinstance(row, dict) else None
        day = parse_day(raw) if isinstance(raw, str) else None
        if day is None:
            raise ValueError(f"{SEGMENT} row {row!r} has no date like 26-Jan-2026")
        if day.weekday() < 5:
            name = row.get("description")
            by_year.setdefault(day.year, {})[day] = str(name).strip() if name else "holiday"
    if not by_year:
        raise ValueError(f"its {SEGMENT} list has no weekday")
    if len(by_year) > 2:
        raise ValueError(f"its {SEGMENT} list spans {len(by_year)} years; one list is one year")
    for year, days in by_year.items():
        if not min_days <= len(days) <= MAX_DAYS:
            raise ValueError(
                f"{len(days)} weekday holiday(s) for {year}; the exchange's list of a year has "
                f"{MIN_DAYS} to {MAX_DAYS}: a partial or padded answer"
            )
    return {
        year: HolidayList(year, dict(sorted(days.items())), True, source)
        for year, days in sorted(by_year.items())
    }


# ---------------------------------------------------------------------------------- the cache


def read_cache(path: Path | None = None) -> dict[int, HolidayList]:
    """The fetched lists in the cache, by year ({} without a cache; a damaged one is ignored,
    with a warning, and the shipped lists stand)."""
    path = path or cache_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _read_memo.get("key") != key:
        _read_memo["key"] = key
        _read_memo["lists"] = _load_cache(path)
    return dict(_read_memo["lists"])


_read_memo: dict[str, Any] = {}


def _load_cache(path: Path) -> dict[int, HolidayList]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("version") != _CACHE_VERSION:
            raise ValueError(f"version {doc.get('version')!r}")
        fetched = datetime.fromisoformat(doc["fetched_at"])
        lists = {}
        for listed in doc["lists"]:
            got = holiday_list(listed, f"{doc.get('source', 'NSE')}, fetched {fetched:%d-%b-%Y}")
            lists[got.year] = got
        return lists
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring the holiday cache %s (%s); using the shipped lists", path, exc)
        return {}


def write_cache(
    lists: Mapping[int, HolidayList], fetched_at: datetime, url: str, path: Path | None = None
) -> Path:
    """Add `lists` to the cache (a year already there is replaced), atomically."""
    path = path or cache_path()
    kept = {year: listed for year, listed in read_cache(path).items() if year not in lists}
    merged = {**kept, **lists}
    doc = {
        "version": _CACHE_VERSION,
        "source": f"NSE holiday master ({url})",
        "segment": SEGMENT,
        "fetched_at": fetched_at.isoformat(timespec="seconds"),
        "lists": [
            {
                "year": year,
                "complete": True,
                "holidays": [{"date": d.isoformat(), "name": n} for d, n in listed.days.items()],
            }
            for year, listed in sorted(merged.items())
        ],
    }
    make_dirs(path.parent)  # the cache folder: the user's own (0700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------------ what is known


def known_lists(cache: Path | None = None) -> dict[int, HolidayList]:
    """Every year's list: the shipped one, replaced by the exchange's fetched one when cached."""
    return {**shipped_holidays(), **read_cache(cache)}


def year_warning(
    lists: Mapping[int, HolidayList], year: int, extra: Iterable[date] = ()
) -> str | None:
    """Why `year`'s holidays are not known (a sentence for the TUI and `optterm doctor`), or
    None: the year has the exchange's complete list, or `[market] holidays` lists days in it
    (whoever keeps the config keeps that year's list)."""
    if any(d.year == year for d in extra):
        return None
    listed = lists.get(year)
    if listed is not None and listed.complete:
        return None
    fix = (
        "optterm fetches NSE's list once a day when a live provider (nse or angelone) is "
        f"configured; or list {year}'s holidays in [market] holidays"
    )
    if listed is None:
        return (
            f"No NSE holiday list for {year}: every weekday counts as a trading day (expiries, "
            f"market hours). {fix}."
        )
    known = ", ".join(f"{name} {day:%d-%b}" for day, name in listed.days.items()) or "none"
    return (
        f"The NSE holiday list for {year} is incomplete (known: {known}); expiries and market "
        f"hours may be wrong on the other holidays. {fix}."
    )


# -------------------------------------------------------------------------------- refreshing


def refreshes(settings: Settings) -> bool:
    """Is the exchange's list fetched (a live provider configured)?"""
    return bool(LIVE_PROVIDERS & set(settings.providers.order))


async def refresh(settings: Settings, now: datetime, cache: Path | None = None) -> str:
    """Fetch the exchange's list through the NSE provider, check it and cache it; a line saying
    what was cached. ProviderError (NSE unreachable, refusing, an HTML page) or ValueError (not
    a holiday list) otherwise, and the cache is left as it was."""
    from optterm.providers.factory import build_one
    from optterm.providers.nse.client import NseProvider

    provider = build_one(settings, "nse")
    assert isinstance(provider, NseProvider)
    try:
        payload = await provider.trading_holidays()
    finally:
        await provider.close()
    url = f"{provider.base_url}{HOLIDAY_PATH}?type=trading"
    lists = parse_holiday_master(payload, f"NSE holiday master, fetched {now:%d-%b-%Y}")
    written = write_cache(lists, now, url, cache)
    years = "; ".join(f"{y}: {len(listed.days)} weekday holidays" for y, listed in lists.items())
    return f"{years} (F&O, from {url}) cached in {written}"
