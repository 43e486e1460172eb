"""100 publish/subscribe/close cycles must not leak file descriptors, sockets, tasks or threads."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest
from media_clients import Publisher, Subscriber, wait_for

from media import MediaCore

pytestmark = pytest.mark.usefixtures("loopback_ice")

CYCLES = 100


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def udp_sockets() -> int:
    inodes = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                inodes.add(line.split()[9])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def threads() -> tuple[int, int]:
    """(threads outside the loop's default executor, executor threads)."""
    names = [t.name for t in threading.enumerate()]
    executor = sum(1 for n in names if n.startswith("asyncio_"))
    return len(names) - executor, executor


async def cycle(core: MediaCore, n: int, during: list[int] | None = None) -> None:
    publisher = Publisher("video/VP8", audio=n % 2 == 0)
    publisher_peer = await core.create_peer()
    await publisher.publish(publisher_peer, f"churn/{n}")
    ids = sorted(t.track_id for t in core.list_tracks(f"churn/{n}/"))
    viewer = Subscriber(kinds=["audio", "video"] if n % 2 == 0 else ["video"])
    viewer_peer = await core.create_peer()
    await viewer.play(viewer_peer, ids)
    await wait_for(lambda: len(viewer.capture("video").frames) >= 1, 10)
    if during is not None:
        during.append(udp_sockets())
    if n % 3 == 0:
        tap = core.tap(ids[0])
        tap.close()
    # alternate who leaves first: publisher (ends subscriptions) or viewer
    if n % 2 == 0:
        await publisher.close()
        await publisher_peer.close()
        await viewer.close()
    else:
        await viewer.close()
        await viewer_peer.close()
        await publisher.close()
    await wait_for(lambda: not core.peers and not core.list_tracks(), 10)


async def settle(core: MediaCore) -> None:
    await wait_for(lambda: not core._tasks, 10)
    for _ in range(5):
        await asyncio.sleep(0.05)
    gc.collect()


async def test_churn_returns_to_baseline(core: MediaCore) -> None:
    # Warm up once: the event loop's default executor (used by aiortc to encode on the
    # publisher side and by getaddrinfo) creates its worker threads lazily, up to
    # min(32, cpu_count + 4); those stay alive for the loop's lifetime and are not leaks.
    await cycle(core, -1)
    await settle(core)
    base_fds, base_udp = open_fds(), udp_sockets()
    base_tasks = len(asyncio.all_tasks())
    base_threads, _ = threads()

    during: list[int] = []
    for n in range(CYCLES):
        await cycle(core, n, during)
    assert min(during) >= base_udp + 4  # the probe sees the 4 peers' ICE sockets
    await settle(core)

    assert udp_sockets() == base_udp
    assert open_fds() == base_fds
    assert len(asyncio.all_tasks()) == base_tasks
    other_threads, executor_threads = threads()
    assert other_threads == base_threads
    assert executor_threads <= min(32, (os.cpu_count() or 1) + 4)
    assert core._subscriptions == {} and core._taps == {} and core._watchdogs == {}
