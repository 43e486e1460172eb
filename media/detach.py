"""Work that outlives the call that started it runs in an empty `contextvars` context.

A task, a timer or a socket reader copies the context current where it is created. Created
under an HTTP handler that is the request's context, and Quart keeps the request (headers,
body, its whole context) there: a peer's connect watchdog, or aiortc's ICE, DTLS and retry
tasks and its sockets' readers, would keep the request alive until the peer connects or
times out. Started from here they keep nothing of the caller's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


def spawn(work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """A task for `work` in an empty context."""
    return asyncio.get_running_loop().create_task(work, name=name,
                                                  context=contextvars.Context())


def detached(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """The decorated coroutine runs as a task in an empty context, so everything it starts
    does too; awaiting it is awaiting that task (results, errors and cancellation pass)."""

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await spawn(method(*args, **kwargs))

    return run
