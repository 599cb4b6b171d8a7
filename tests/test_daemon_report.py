"""The daemon's report of itself (store/status.py): what it keeps per table, and that it reads
back from its JSON whatever an older, newer or damaged row holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from optterm.store.status import DaemonReport

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def test_a_table_is_failing_until_a_later_write_succeeds_and_round_trips() -> None:
    report = DaemonReport(interval_s=1.0, heartbeat_s=2.0)
    report.record("snapshots", T0)
    report.record("metrics", T0, RuntimeError("disk full at postgresql://ops:hunter2@db/x"))
    assert report.tables["metrics"].failing and not report.tables["snapshots"].failing
    back = DaemonReport.from_json(report.to_json())
    assert back == report
    assert back is not None and back.tables["metrics"].errors == 1
    assert "hunter2" not in report.to_json() and "ops:***@db" in report.to_json()
    report.record("metrics", T0 + timedelta(seconds=1))
    assert not report.tables["metrics"].failing and report.tables["metrics"].errors == 1


def test_an_unreadable_report_is_no_report() -> None:
    for text in (None, "", "{", "[]", '{"interval_s": 0, "heartbeat_s": 2}', '{"ticks": 3}',
                 '{"interval_s": "x", "heartbeat_s": 2}', '{"interval_s": 1, "heartbeat_s": 2, '
                 '"tables": {"metrics": 5}}'):  # fmt: skip
        assert DaemonReport.from_json(text) is None, text
