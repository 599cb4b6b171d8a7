"""Scheduler job runs: one row per run with start, finish, duration and outcome (`store.jobs`).

A run is written as `running` when it starts and finished with `ok`, `failed` (the error) or
`skipped` (why). A row still `running` after the process died is closed by
`recover_interrupted` when the next scheduler starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, insert, select, update

from optterm.store.dialect import inserted_id
from optterm.store.schema import jobs
from optterm.store.timecodec import from_us, from_us_or_none, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["OUTCOMES", "JobRepository", "JobRun"]

OUTCOMES: Final[tuple[str, ...]] = ("running", "ok", "failed", "skipped")
_FINAL: Final = frozenset(OUTCOMES) - {"running"}
_MAX_NAME: Final = 64
# Details are one line for a table: an error message, a count. Bound them anyway.
_MAX_DETAIL: Final = 2000


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a scheduler job. Times are UTC; `finished_at`/`duration_ms` are None while
    the run is still `running`. `id` is None for a run that could not be recorded."""

    id: int | None
    name: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    outcome: str
    detail: str

    @property
    def finished(self) -> bool:
        return self.outcome != "running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def _detail(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _row(r: Row[*tuple[Any, ...]]) -> JobRun:
    return JobRun(
        id=int(r.id),
        name=r.name,
        started_at=from_us(r.started_at),
        finished_at=from_us_or_none(r.finished_at),
        duration_ms=r.duration_ms,
        outcome=r.outcome,
        detail=r.detail,
    )


class JobRepository:
    """`store.jobs`: the scheduler's record of what it ran, when, and how it went."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start(self, name: str, at: datetime) -> int:
        """Record that job `name` started at `at`; returns the run's id for `finish`."""
        if not name or len(name) > _MAX_NAME:
            raise ValueError(f"job name must be 1–{_MAX_NAME} characters, got {name!r}")
        values = {
            "name": name,
            "started_at": to_us(at, "at"),
            "outcome": "running",
            "detail": "",
        }
        async with self._store.write_transaction(f"Recording the start of job {name}") as conn:
            result = await conn.execute(insert(jobs).values(values))
            return inserted_id(result)

    async def finish(
        self,
        job_id: int,
        outcome: str,
        detail: str,
        at: datetime,
        *,
        duration_ms: float | None = None,
    ) -> bool:
        """Close run `job_id` with `outcome` (ok, failed or skipped) at `at`.

        `duration_ms` defaults to `at` minus the recorded start. False if there is no such run.
        """
        if outcome not in _FINAL:
            raise ValueError(f"outcome must be one of {', '.join(sorted(_FINAL))}, got {outcome!r}")
        at_us = to_us(at, "at")
        async with self._store.write_transaction(f"Recording the end of job run {job_id}") as conn:
            started = await conn.scalar(select(jobs.c.started_at).where(jobs.c.id == job_id))
            if started is None:
                return False
            if duration_ms is None:
                duration_ms = max(0.0, (at_us - started) / 1000.0)
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    finished_at=at_us,
                    duration_ms=float(duration_ms),
                    outcome=outcome,
                    detail=_detail(detail),
                )
            )
        return True

    async def runs(self, name: str | None = None, limit: int = 50) -> list[JobRun]:
        """The most recent runs (of job `name`, or of every job), newest first."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        stmt = select(jobs).order_by(jobs.c.started_at.desc(), jobs.c.id.desc()).limit(limit)
        if name is not None:
            stmt = stmt.where(jobs.c.name == name)
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_row(r) for r in rows]

    async def last_run(
        self, name: str, outcome: str | Sequence[str] | None = "ok"
    ) -> JobRun | None:
        """The latest run of job `name` that ended with `outcome` (one or several; None = any
        outcome, `running` included)."""
        stmt = (
            select(jobs)
            .where(jobs.c.name == name)
            .order_by(jobs.c.started_at.desc(), jobs.c.id.desc())
            .limit(1)
        )
        if isinstance(outcome, str):
            stmt = stmt.where(jobs.c.outcome == outcome)
        elif outcome is not None:
            stmt = stmt.where(jobs.c.outcome.in_(list(outcome)))
        async with self._store.read_connection() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _row(row)

    async def recover_interrupted(self, at: datetime) -> int:
        """Mark runs left `running` (their process stopped mid-job) as failed; returns how
        many."""
        stmt = (
            update(jobs)
            .where(jobs.c.outcome == "running")
            .values(
                finished_at=to_us(at, "at"),
                outcome="failed",
                detail="interrupted: the process stopped before the job finished",
            )
        )
        async with self._store.write_transaction("Closing interrupted job runs") as conn:
            return int((await conn.execute(stmt)).rowcount or 0)
