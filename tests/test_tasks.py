"""Background tasks: kept until done, failures logged, cancelled together."""

from __future__ import annotations

import asyncio

import pytest

from gateway.tasks import BackgroundTasks


async def test_spawned_work_runs_is_awaited_and_released() -> None:
    tasks, done = BackgroundTasks(), []

    async def work(n: int) -> None:
        await asyncio.sleep(0.01 * n)
        done.append(n)
        if n == 1:
            tasks.spawn(work(3))  # spawned while waiting: wait_idle waits for it too

    tasks.spawn(work(1))
    tasks.spawn(work(2))
    await tasks.wait_idle()
    assert sorted(done) == [1, 2, 3] and len(tasks) == 0


async def test_failures_are_logged_and_cancel_all_stops_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks()

    async def boom() -> None:
        raise RuntimeError("lost work")

    forever = tasks.spawn(asyncio.sleep(3600))
    tasks.spawn(boom())
    await asyncio.sleep(0.01)
    assert any("background task failed" in r.getMessage() for r in caplog.records)
    await tasks.cancel_all()
    assert forever.cancelled() and len(tasks) == 0
