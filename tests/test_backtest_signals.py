"""`optterm backtest rule` and `optterm backtest patterns` on a hand-built stored history with
a known spot and PCR path: every firing at the point its value crossed, and the forward moves
read from the path exactly; nothing after a firing changes it (no look-ahead)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from optterm.engine.backtest.signals import SpotPath
from optterm.model import Feed
from optterm.store import open_store
from tests.conftest import Home, run_cli
from tests.signal_history import DAY, OPEN, STEP, chains, store_path

B = 26_000.0
N = 90  # 09:15 to 10:44, one point a minute


def spot_path() -> list[float]:
    """Flat at B with three jumps to B + 60 (minutes 10, 20 and 85) and a slow climb from 40."""
    out = []
    for m in range(N):
        if m in (10, 20, 85):
            out.append(B + 60)
        elif 40 <= m < 85:
            out.append(B + (m - 40) * 1.5)
        else:
            out.append(B)
    return out


def pcr_path() -> list[float]:
    """1.0, under 0.7 at minute 30 (0.65) and 50 (0.6), back to 1.0 between."""
    return [0.65 if m == 30 else 0.6 if m == 50 else 1.0 for m in range(N)]


def _write(home: Home, n: int = N, feed: Feed = Feed.LIVE, provider: str = "nse") -> None:
    home.write_config()

    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            await store_path(
                store, chains(spot_path()[:n], pcr_path()[:n], feed=feed, provider=provider)
            )
        finally:
            await store.close()

    asyncio.run(go())


def _cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.config), *args)


def _at(minute: int) -> str:
    return (OPEN + minute * STEP).astimezone(UTC).isoformat()


def _expected_move(m: int, h: int) -> tuple[float | None, float | None]:
    spots = spot_path()
    if m + h >= N:
        return None, None
    d = spots[m + h] - spots[m]
    return round(d, 2), round(d / spots[m] * 100, 4)


@pytest.fixture
def stored(home: Home) -> Home:
    _write(home)
    return home


def test_rule_firings_and_forward_moves_match_the_known_path(stored: Home) -> None:
    day = DAY.isoformat()
    out = _cli(stored, "backtest", "rule", "NIFTY spot crosses above 26050",
               "--from", day, "--to", day, "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"]["providers"] == ["nse"] and doc["source"]["feeds"] == ["LIVE"]
    assert doc["source"]["snapshots"] == N and doc["source"]["days"] == [day]
    assert doc["source"]["first"] == _at(0) and doc["source"]["last"] == _at(N - 1)
    # Minute 10 and 20 cross (the cooldown of 5 min is over by 20); the climb reaches 26050
    # at minute 74 (26000 + 34 × 1.5 = 26051), and 85 is still above: no new crossing there.
    fired = [f["fired_at"] for f in doc["firings"]]
    assert fired == [_at(10), _at(20), _at(74)]
    for f, m in zip(doc["firings"], (10, 20, 74), strict=True):
        assert f["spot"] == spot_path()[m]
        got = [(x["minutes"], x["points"], x["pct"]) for x in f["forward"]]
        assert got == [(h, *_expected_move(m, h)) for h in (5, 15, 60)]
    # 74 + 60 is past the history's end: n/a, not a made-up move
    assert doc["firings"][2]["forward"][2]["points"] is None
    for k, h in enumerate((5, 15, 60)):
        moves = [d for m in (10, 20, 74) if (d := _expected_move(m, h)[0]) is not None]
        assert doc["summary"][k] == {
            "minutes": h,
            "measured": len(moves),
            "up": sum(1 for d in moves if d > 0),
            "down": sum(1 for d in moves if d < 0),
            "mean_points": round(sum(moves) / len(moves), 2),
            "mean_pct": doc["summary"][k]["mean_pct"],
        }


def test_pcr_rule_fires_where_the_pcr_crosses_below(stored: Home) -> None:
    day = DAY.isoformat()
    out = _cli(stored, "backtest", "rule", "NIFTY pcr crosses below 0.7",
               "--from", day, "--to", day, "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [f["fired_at"] for f in doc["firings"]] == [_at(30), _at(50)]
    assert [f["value"] for f in doc["firings"]] == pytest.approx([0.65, 0.6])
    assert [x["points"] for x in doc["firings"][1]["forward"]] == [
        _expected_move(50, h)[0] for h in (5, 15, 60)
    ]


def test_no_look_ahead_a_firing_is_the_same_without_the_later_history(
    home: Home, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The history cut right after the firing at minute 30 gives the same firing, at the same
    point with the same value: nothing stored after t decided anything at t. Its forward moves
    are then n/a (the history ends first)."""
    _write(home, n=31)
    day = DAY.isoformat()
    out = _cli(home, "backtest", "rule", "NIFTY pcr crosses below 0.7",
               "--from", day, "--to", day, "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    cut = json.loads(out.stdout)
    assert [(f["fired_at"], f["value"]) for f in cut["firings"]] == [(_at(30), pytest.approx(0.65))]
    assert [x["points"] for x in cut["firings"][0]["forward"]] == [None, None, None]


def test_rule_table_and_csv(stored: Home) -> None:
    day = DAY.isoformat()
    args = ("backtest", "rule", "NIFTY spot crosses above 26050", "--from", day, "--to", day)
    out = _cli(stored, *args)
    assert out.returncode == 0, out.stderr
    assert "Source: LIVE via nse" in out.stdout and f"{N} snapshots · no gaps" in out.stdout
    assert "09:25:00" in out.stdout and "n/a" in out.stdout
    out = _cli(stored, *args, "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["fired_at"] for r in rows] == [_at(10), _at(20), _at(74)]
    assert rows[0]["points_5m"] == "-60.0" and rows[2]["points_60m"] == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("rule", "NIFTY spot crosses sideways 5"), "sideways"),
        (("rule", "NIFTY spot crosses above 26050", "--from", "2026-12-01", "--to", "2026-12-02"),
         "Nothing is stored between 2026-12-01 and 2026-12-02"),
        (("rule", "BANKNIFTY spot crosses above 50000"), "BANKNIFTY has nothing stored"),
        (("patterns", "--symbol", "FINNIFTY"), "FINNIFTY has nothing stored"),
        (("rule", "NIFTY spot crosses above 26050", "--from", "2026-11-21", "--to", "2026-11-20"),
         "is before --from"),
        (("patterns", "--from", "yesterday-ish", "--to", "2026-11-20"), "is not a date"),
        (("rule", "NIFTY 2026-12-29 spot crosses above 26050"),
         "The rule's expiry has nothing stored between 2026-11-20 and 2026-11-20"),
        (("rule", "XYZQ spot crosses above 26050"), "XYZQ is not a known symbol"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(stored: Home, args: tuple[str, ...], says: str) -> None:
    full = list(args)
    if "--from" not in full:
        full += ["--from", DAY.isoformat(), "--to", DAY.isoformat()]
    out = _cli(stored, "backtest", *full)
    assert out.returncode == 2, out.stdout + out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""


def test_simulated_history_is_refused_unless_allowed(home: Home) -> None:
    _write(home, feed=Feed.SIMULATED, provider="simulator")
    day = DAY.isoformat()
    args = ("backtest", "rule", "NIFTY spot crosses above 26050", "--from", day, "--to", day)
    out = _cli(home, *args)
    assert out.returncode == 2
    assert "SIMULATED" in out.stderr and "--allow-simulated" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = _cli(home, *args, "--allow-simulated", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"]["feeds"] == ["SIMULATED"] and len(doc["firings"]) == 3


def test_a_day_that_turns_simulated_is_refused(home: Home) -> None:
    """A failover to the simulator mid-session: the day's later snapshots are SIMULATED."""
    home.write_config()

    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            live = chains(spot_path()[:60], pcr_path()[:60])
            sim = chains(spot_path()[60:], pcr_path()[60:], start=OPEN + 60 * STEP,
                         provider="simulator", feed=Feed.SIMULATED)  # fmt: skip
            await store_path(store, [*live, *sim])
        finally:
            await store.close()

    asyncio.run(go())
    day = DAY.isoformat()
    out = _cli(home, "backtest", "patterns", "--from", day, "--to", day)
    assert out.returncode == 2 and "SIMULATED" in out.stderr and out.stdout == ""
    out = _cli(home, "backtest", "patterns", "--from", day, "--to", day, "--allow-simulated",
               "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    source = json.loads(out.stdout)["source"]
    assert source["providers"] == ["nse", "simulator"] and "SIMULATED" in source["feeds"]


def test_the_header_names_every_feed_read(home: Home) -> None:
    """A day that goes from LIVE to DELAYED part-way: both feeds are named, not only the
    first snapshot's."""
    home.write_config()

    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            live = chains(spot_path()[:60], pcr_path()[:60])
            late = chains(spot_path()[60:], pcr_path()[60:], start=OPEN + 60 * STEP,
                          feed=Feed.DELAYED)  # fmt: skip
            await store_path(store, [*live, *late])
        finally:
            await store.close()

    asyncio.run(go())
    day = DAY.isoformat()
    out = _cli(home, "backtest", "rule", "NIFTY spot crosses above 26050",
               "--from", day, "--to", day)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Source: DELAYED/LIVE via nse" in out.stdout


def test_a_gap_is_named_and_no_move_is_measured_across_it(home: Home) -> None:
    """Minutes 40 to 64 missing (the recorder was down): the header names the gap, and the
    15-minute move of the firing at minute 30 would land at minute 65, 35 minutes on: n/a."""
    home.write_config()
    keep = [m for m in range(N) if not 40 <= m < 65]

    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            every = chains(spot_path(), pcr_path())
            await store_path(store, [every[m] for m in keep])
        finally:
            await store.close()

    asyncio.run(go())
    day = DAY.isoformat()
    args = ("backtest", "rule", "NIFTY pcr crosses below 0.7", "--from", day, "--to", day)
    out = _cli(home, *args, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"]["gaps"] == [_at(39)] and doc["source"]["snapshots"] == len(keep)
    (firing,) = doc["firings"]
    assert firing["fired_at"] == _at(30)
    assert [x["points"] for x in firing["forward"]] == [_expected_move(30, 5)[0], None, None]
    out = _cli(home, *args)
    assert "1 gap (from 11-20 09:54)" in out.stdout


def test_a_forward_point_after_a_gap_is_not_a_move() -> None:
    path = SpotPath()
    t0 = int(OPEN.timestamp() * 1e6)
    minute = 60_000_000
    for m, spot in ((0, 100.0), (1, 101.0), (6, 103.0), (40, 110.0)):
        path.add(t0 + m * minute, spot)
    five, fifteen, sixty = path.forwards(t0)
    assert (five.points, five.at) == (3.0, datetime.fromtimestamp((t0 + 6 * minute) / 1e6, UTC))
    assert fifteen.points is None  # the next point is 40 min on: more than 2 × 15 min
    assert sixty.points is None  # the history ends first
    # between points: from the point in force then (100 at minute 0) to the first at or after
    # 5.5 min (103 at minute 6)
    assert path.forward(t0 + minute // 2, 5).points == 3.0


def test_patterns_forward_moves_are_the_known_path_and_csv_has_every_detector(
    stored: Home,
) -> None:
    day = DAY.isoformat()
    out = _cli(stored, "backtest", "patterns", "--from", day, "--to", day, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["signals"], "the climb from minute 40 makes the momentum detector fire"
    for s in doc["signals"]:
        m = round((datetime.fromisoformat(s["at"]) - OPEN) / STEP)
        assert s["spot"] == spot_path()[m]
        assert [x["points"] for x in s["forward"]] == [_expected_move(m, h)[0] for h in (5, 15, 60)]
    out = _cli(stored, "backtest", "patterns", "--from", day, "--to", day, "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["kind"] for r in rows] == [d["kind"] for d in doc["detectors"]]
    assert len(rows) == 8
    assert sum(int(r["firings"]) for r in rows) == len(doc["signals"])


async def test_a_stopped_run_keeps_what_it_found(tmp_path) -> None:
    """Ctrl-C cancels the command's task: the backtest returns the firings up to the last point
    it finished, says where it stopped, and counts only what it read."""
    from optterm.config import Settings
    from optterm.engine.backtest.signals import backtest_rule, rule_from_text

    days = [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]  # Wednesday to Friday
    store = await open_store(str(tmp_path / "o.db"))
    try:
        for d in days:
            start = OPEN + (d - DAY)
            await store_path(store, chains(spot_path(), pcr_path(), start=start))
        settings = Settings()
        rule = rule_from_text("NIFTY spot crosses above 26050", settings, days[0])
        whole = await backtest_rule(store, settings, rule, days[0], days[-1])
        assert len(whole.firings) == 9 and whole.stopped_at is None

        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if done[0] == N + 21:  # day 2's minute 20 (a firing) finished: Ctrl-C
                task.cancel()

        task = asyncio.ensure_future(
            backtest_rule(store, settings, rule, days[0], days[-1], progress=step)
        )
        part = await task
    finally:
        await store.close()
    stop = OPEN + (days[1] - DAY) + 20 * STEP
    assert part.stopped_at == stop
    assert part.source.days == tuple(days[:2]) and part.source.snapshots == N + 21
    assert part.source.last == stop
    assert [f.at for f in part.firings] == [f.at for f in whole.firings if f.at <= stop]
    # the forward moves a stopped run could not see are n/a, not guessed
    assert all(x.points is None for x in part.firings[-1].forward)
    assert [f.forward for f in part.firings[:3]] == [f.forward for f in whole.firings[:3]]
