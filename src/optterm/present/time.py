"""Times as the CLI and the TUI read and write them: `--since`, ages and exchange-local stamps.

One grammar for "since when" (`parse_since`): a day (2026-11-24 or 24-Nov-2026, from the start of
that exchange-local day) or a duration back from now in the alert rules' grammar (90s, 2min, 15m,
1.5h, 1h30m, 3d). One way to write an age (`age_text`: 45s, 12m, 1h05m, 3d) and one way to stamp
a moment (`when_text`: the time alone today, the date too on another day).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo
from typing import Final

from optterm.market import parse_day

__all__ = ["SINCE_HELP", "SinceError", "age_text", "ago_text", "parse_since", "when_text"]

SINCE_HELP: Final = "a date (YYYY-MM-DD) or a duration (30m, 2h, 1h30m, 1d)"


class SinceError(ValueError):
    """`--since` text that is neither a date nor a duration; the message says how to write it."""


def parse_since(text: str, *, now: datetime, tz: tzinfo, flag: str = "--since") -> datetime:
    """The moment `text` names: the start of a day in `tz`, or `now` minus a duration.

    A bare number is refused rather than guessed at (seconds? a day of the month?), and so is a
    negative duration, which would name the future."""
    # The rules' duration grammar, imported here: the module stays light for `optterm --help`,
    # which builds every command's help text from it.
    from optterm.engine.alerts.rules import parse_duration

    raw = text.strip()
    day = parse_day(raw)
    try:
        if day is not None:
            return datetime.combine(day, time(0), tzinfo=tz)
        # Letters make it a duration; parse_duration alone would read "90" as seconds.
        seconds = parse_duration(raw) if re.search(r"[a-z]", raw.lower()) else None
        if seconds is not None and seconds >= 0:
            return now - timedelta(seconds=seconds)
    except OverflowError:
        pass  # a duration longer than the calendar: refused like any other bad text
    raise SinceError(
        f"{flag} {text!r} is neither a date nor a duration; write a date as YYYY-MM-DD "
        "(e.g. 2026-11-24) or a duration such as 30m, 2h, 1h30m or 3d."
    )


def age_text(seconds: float) -> str:
    """How old something is, to the unit that matters: 45s, 12m, 1h05m, 3d."""
    age = max(0, int(seconds))
    if age < 60:
        return f"{age}s"
    if age < 3600:
        return f"{age // 60}m"
    if age < 86_400:
        return f"{age // 3600}h{age % 3600 // 60:02d}m"
    return f"{age // 86_400}d"


def ago_text(seconds: float | None) -> str:
    """An age with its direction: "12m ago"; "in 12m" for a moment ahead (clock skew); "?"
    when unknown."""
    if seconds is None:
        return "?"
    return f"{age_text(seconds)} ago" if seconds >= 0 else f"in {age_text(-seconds)}"


def when_text(ts: datetime | None, tz: tzinfo, now: datetime) -> str:
    """An exchange-local stamp: "14:05:09 IST" today, "24-Nov-2026 14:05:09 IST" on another
    day, "never" for no moment at all."""
    if ts is None:
        return "never"
    local = ts.astimezone(tz)
    text = f"{local:%H:%M:%S} {local.tzname()}"
    return text if local.date() == now.astimezone(tz).date() else f"{local:%d-%b-%Y} {text}"
