"""Issue 13 follow-up: the Calls per-session rate limiter (gateway/ratelimit.py, capped at 100k
keys) kept a bucket for every session it had seen. A session's bucket is freed when the
session closes or expires, and again when the closed session is forgotten (calls on a closed
session still count, in a bucket of their own)."""

from __future__ import annotations

import time

import pytest
from quart import Quart

from gateway.calls import service as calls_module
from gateway.state import EXTENSION
from tests.calls.helpers import CallsApi, push_camera, wait_for


async def test_a_sessions_bucket_goes_with_the_session(
        app: Quart, api: CallsApi, monkeypatch: pytest.MonkeyPatch) -> None:
    service = app.extensions[EXTENSION].services["calls"]
    limiter = service.limiter

    # a session that negotiated closes when its client goes away
    publisher, _ = await push_camera(api)
    sid = publisher.session_id
    await api.state(sid)
    assert sid in limiter
    await publisher.close()
    await wait_for(lambda: service.sessions[sid].closed, 10)
    assert sid not in limiter

    # a session that never negotiates expires
    monkeypatch.setattr(calls_module, "PEERLESS_SESSION_TTL", 0.5)
    idle = await api.new_session()
    await api.state(idle)
    assert idle in limiter
    await wait_for(lambda: service.sessions[idle].closed, 10)
    assert idle not in limiter

    # calls on a closed session are still limited; forgetting the session frees that bucket
    await api.state(sid)
    assert sid in limiter
    service.purge_closed(time.monotonic() + calls_module.CLOSED_SESSION_TTL + 1)
    assert sid not in service.sessions and idle not in service.sessions
    assert sid not in limiter and idle not in limiter
    assert len(limiter) == 0
