"""Ctrl-C on a long `optterm backtest rule`: the real process gets SIGINT while it replays,
prints what it found until then, says it stopped, and exits 130 without a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from datetime import timedelta

import pytest

from optterm.store import open_store
from tests.conftest import Home, optterm_cmd
from tests.signal_history import DAY, OPEN, chains, store_path
from tests.test_backtest_signals import N, pcr_path, spot_path

DAYS = [DAY - timedelta(days=k) for k in range(25, -1, -1)]  # every day: a long replay


@pytest.mark.process
@pytest.mark.slow
def test_ctrl_c_keeps_the_partial_results(home: Home) -> None:
    home.write_config()

    async def fill() -> None:
        store = await open_store(str(home.db))
        try:
            for d in DAYS:
                await store_path(store, chains(spot_path(), pcr_path(), start=OPEN + (d - DAY)))
        finally:
            await store.close()

    asyncio.run(fill())
    # stderr on a terminal, so the progress bar draws: a frame with points done says the replay
    # has found something to keep.
    main, side = os.openpty()
    proc = subprocess.Popen(
        optterm_cmd(
            "--config",
            str(home.config),
            "backtest",
            "rule",
            "NIFTY spot crosses above 26050",
            "--from",
            DAYS[0].isoformat(),
            "--to",
            DAYS[-1].isoformat(),
            "--json",
        ),
        stdout=subprocess.PIPE,
        stderr=side,
        stdin=subprocess.DEVNULL,
        env=home.env,
        cwd=home.root,
    )
    os.close(side)
    seen = b""
    try:
        while re.search(rb"\b[1-9][0-9]*/%d\b" % (N * len(DAYS)), seen) is None:
            chunk = os.read(main, 4096)  # blocks until the process writes
            assert chunk, "the process ended before drawing its progress bar"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    err = seen.decode(errors="replace")
    assert proc.returncode == 130, err
    assert "Stopped by Ctrl-C" in err and "Traceback" not in err
    doc = json.loads(out)
    assert doc["stopped_at"] is not None
    assert doc["source"]["last"] == doc["stopped_at"]
    assert len(doc["source"]["days"]) < len(DAYS)
    assert all(f["fired_at"] <= doc["stopped_at"] for f in doc["firings"])
