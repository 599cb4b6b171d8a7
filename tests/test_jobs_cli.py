"""`optterm jobs`: the scheduler's recorded runs, listed by the real command."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, date, datetime, time, timedelta

import pytest

from optterm.market import IST
from optterm.store import open_store
from tests.conftest import Home, run_cli

DAY = date(2026, 11, 20)


def ist(hh: int, mm: int = 0) -> datetime:
    return datetime.combine(DAY, time(hh, mm), tzinfo=IST).astimezone(UTC)


RUNS = [  # name, started (IST), outcome, detail, duration ms
    ("eod", ist(15, 50), "ok", "2026-11-20: 404 strike rows, 2 spot rows", 812.0),
    ("retention", ist(15, 51), "failed", "StoreError: disk is full", 5.0),
    ("checkpoint", ist(15, 52), "skipped", "not an SQLite database file", 0.5),
    ("retention", ist(15, 57), "ok", "removed 0 snapshot(s) before 2026-10-21", 12_500.0),
]


def jobs_cli(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, "--config", str(home.config), "jobs", *args)


@pytest.fixture
def seeded(home: Home) -> Home:
    home.write_config()

    async def write() -> None:
        async with await open_store(str(home.db)) as store:
            for name, at, outcome, detail, ms in RUNS:
                job = await store.jobs.start(name, at)
                end = at + timedelta(milliseconds=ms)
                await store.jobs.finish(job, outcome, detail, end, duration_ms=ms)
            await store.jobs.start("eod", ist(16, 0))  # still running

    asyncio.run(write())
    return home


def test_jobs_table_lists_recent_runs_newest_first(seeded: Home) -> None:
    result = jobs_cli(seeded)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Started (IST)" in out
    lines = [line for line in out.splitlines() if "2026-11-20" in line and "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == [
        "eod",
        "retention",
        "checkpoint",
        "retention",
        "eod",
    ]
    assert "2026-11-20 15:50:00" in out  # shown in exchange time
    assert "812 ms" in out and "12.5 s" in out
    assert "StoreError: disk is full" in out
    for outcome in ("ok", "failed", "skipped", "running"):
        assert outcome in out


def test_jobs_json_name_and_limit(seeded: Home) -> None:
    result = jobs_cli(seeded, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["name"] for r in doc] == ["eod", "retention", "checkpoint", "retention", "eod"]
    running, latest_retention = doc[0], doc[1]
    assert running["outcome"] == "running" and running["finished_at"] is None
    assert running["duration_ms"] is None
    assert latest_retention["duration_ms"] == 12_500.0
    assert datetime.fromisoformat(latest_retention["started_at"]) == ist(15, 57)
    assert set(doc[0]) == {
        "id", "name", "started_at", "finished_at", "duration_ms", "outcome", "detail",
    }  # fmt: skip

    only = json.loads(jobs_cli(seeded, "--name", "retention", "--json").stdout)
    assert [(r["outcome"], r["detail"][:7]) for r in only] == [
        ("ok", "removed"),
        ("failed", "StoreEr"),
    ]
    one = json.loads(jobs_cli(seeded, "--limit", "1", "--json").stdout)
    assert len(one) == 1 and one[0]["outcome"] == "running"


def test_jobs_without_runs(home: Home) -> None:
    home.write_config()
    result = jobs_cli(home)
    assert result.returncode == 0, result.stderr
    assert "No scheduled job runs recorded yet" in result.stdout
    result = jobs_cli(home, "--name", "eod", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    bad = jobs_cli(home, "--limit", "0")
    assert bad.returncode == 2
