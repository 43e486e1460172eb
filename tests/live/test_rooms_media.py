"""aiortc publishers and viewers through the real HTTP API of a `mediagate serve` process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.live.helpers import play, publish, request, rooms, start_live_server
from tests.media.media_clients import Publisher, Subscriber, decode_numbers, wait_for
from tests.server import RunningServer

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_live_server(
        tmp_path_factory.mktemp("live") / "data",
        MAX_SUBS_PER_ROOM="2",
        ADMIN_TOKEN="admin-secret",
    )
    yield server
    assert server.stop() == 0, server.log()


async def close_all(*peers: Publisher | Subscriber) -> None:
    await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)


async def test_publish_play_and_the_room_lifecycle(http: httpx.AsyncClient) -> None:
    publisher, viewer = Publisher(), Subscriber()
    try:
        response = await publish(http, "lifecycle", publisher)
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        location = response.headers["location"]
        assert re.fullmatch(r"/api/whip/publish/lifecycle/[0-9a-f]{32}", location)
        assert response.headers["etag"].startswith('"')
        await wait_for(lambda: publisher.pc.connectionState == "connected", 15)

        listed = (await rooms(http))["lifecycle"]
        assert listed == {"name": "lifecycle", "hasPublisher": True, "tracks": 2,
                          "subscribers": 0}

        response = await play(http, "lifecycle", viewer)
        assert response.status_code == 201, response.text
        assert response.headers["location"].startswith("/api/whep/play/lifecycle/")
        await wait_for(lambda: len(viewer.captures) == 2 and
                       len(viewer.capture("video").frames) >= 15, 20)
        numbers = [n for n in decode_numbers(viewer.capture("video").frames) if n is not None]
        assert len(numbers) >= 10 and numbers == sorted(numbers)
        await wait_for(lambda: len(viewer.capture("audio").frames) >= 10, 10)
        assert (await rooms(http))["lifecycle"]["subscribers"] == 1

        # the publisher leaves through its session resource: the room has no publisher
        response = await request(http, "DELETE", location)
        assert response.status_code == 200 and response.content == b""
        listed = (await rooms(http))["lifecycle"]
        assert listed["hasPublisher"] is False and listed["subscribers"] == 1
        response = await request(http, "DELETE", location)
        assert response.status_code == 404
        assert response.json() == {"error": "session not found"}

        # and the last viewer leaving removes the room
        await viewer.close()
        await wait_for_room_gone(http, "lifecycle", within=40)
    finally:
        await close_all(publisher, viewer)


async def wait_for_room_gone(http: httpx.AsyncClient, room: str, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while room in await rooms(http):
        assert asyncio.get_running_loop().time() < deadline, f"room {room} still listed"
        await asyncio.sleep(0.5)


async def test_second_publisher_conflict_empty_room_and_bad_input(
    http: httpx.AsyncClient,
) -> None:
    first, second, early = Publisher(), Publisher(), Subscriber()
    try:
        response = await play(http, "conflict", early)
        assert response.status_code == 404
        assert response.json() == {"error": "no active publisher in room"}
        assert "conflict" not in await rooms(http)  # playing never creates a room

        assert (await publish(http, "conflict", first)).status_code == 201
        response = await publish(http, "conflict", second)
        assert response.status_code == 409
        assert response.json() == {"error": "publisher already exists in this room"}

        for path in ("/api/whip/publish/conflict", "/api/whep/play/conflict"):
            response = await request(http, "POST", path, content="v=0",
                                      headers={"Content-Type": "application/sdp"})
            assert response.status_code == 400
            assert response.json() == {"error": "invalid SDP"}
        response = await request(http, "POST", "/api/whip/publish/bad.name", content="v=0")
        assert response.status_code == 400 and response.json() == {"error": "invalid room"}
        response = await request(http, "POST", "/api/whep/play/" + "r" * 65, content="v=0")
        assert response.status_code == 400
    finally:
        await close_all(first, second, early)
        await request(http, "POST", "/api/admin/rooms/conflict/close", headers=ADMIN)


async def test_subscriber_limit_delete_one_viewer_and_admin_close(
    http: httpx.AsyncClient,
) -> None:
    publisher = Publisher()
    viewers = [Subscriber(kinds=("video",)) for _ in range(3)]
    try:
        assert (await publish(http, "limits", publisher)).status_code == 201
        first = await play(http, "limits", viewers[0])
        second = await play(http, "limits", viewers[1])
        assert first.status_code == second.status_code == 201
        response = await play(http, "limits", viewers[2])
        assert response.status_code == 403
        assert response.json() == {"error": "subscriber limit reached"}

        await wait_for(lambda: all(
            v.captures and len(v.capture("video").frames) >= 5 for v in viewers[:2]), 20)
        assert (await rooms(http))["limits"]["subscribers"] == 2

        # DELETE on one viewer's resource ends that viewer only
        response = await request(http, "DELETE", first.headers["location"])
        assert response.status_code == 200
        assert (await rooms(http))["limits"] == {
            "name": "limits", "hasPublisher": True, "tracks": 2, "subscribers": 1}
        await asyncio.sleep(0.5)
        before = [len(v.capture("video").frames) for v in viewers[:2]]
        await asyncio.sleep(1.5)
        after = [len(v.capture("video").frames) for v in viewers[:2]]
        assert after[0] - before[0] <= 2, "the deleted viewer still receives media"
        assert after[1] - before[1] >= 10, "the other viewer stopped receiving"

        # metrics count this room under both name sets
        response = await request(http, "GET", "/metrics")
        text = response.text
        assert re.search(r'^live_subscribers\{room="limits"\} 1\.0$', text, re.M)
        assert re.search(r'^webrtc_subscribers\{room="limits"\} 1\.0$', text, re.M)
        for name in ("live_rtp_bytes_total", "webrtc_rtp_packets_total"):
            value = re.search(rf'^{name}\{{room="limits"\}} (\S+)$', text, re.M)
            assert value and float(value.group(1)) > 0, name
        assert re.search(r"^live_rooms [1-9]", text, re.M)
        assert "process_cpu_seconds_total" in text

        # admin close: 401 without the admin token, then everyone is disconnected
        response = await request(http, "POST", "/api/admin/rooms/limits/close")
        assert response.status_code == 401 and response.text.strip() == "unauthorized"
        response = await request(http, "POST", "/api/admin/rooms/limits/close", headers=ADMIN)
        assert response.status_code == 200
        assert "limits" not in await rooms(http)
        await wait_for(lambda: publisher.pc.connectionState in ("closed", "failed"), 40)
        await wait_for(lambda: viewers[1].pc.connectionState in ("closed", "failed"), 40)
        response = await request(http, "POST", "/api/admin/rooms/limits/close", headers=ADMIN)
        assert response.status_code == 404 and response.json() == {"error": "room not found"}
        response = await request(http, "DELETE", second.headers["location"])
        assert response.status_code == 404
    finally:
        await close_all(publisher, *viewers)
