"""Several replicas on one PostgreSQL, and draining on SIGTERM: real server processes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import contract
from tests.live.helpers import SDP, play, publish
from tests.media.media_clients import Publisher, Subscriber, wait_for
from tests.pg import PostgresServer, free_port
from tests.server import RunningServer, start_server


def start_replica(root: Path, name: str, database_url: str, **env: str) -> RunningServer:
    port = free_port()
    return start_server(root / name, port=port, ready_path="/readyz", env={
        "MEDIAGATE_DATABASE_URL": database_url,
        "MEDIAGATE_REPLICA_URL": f"http://127.0.0.1:{port}",
        "MEDIAGATE_SECRET_KEY": "shared-instance-secret-" + "k" * 24,
        **env,
    })


@pytest.fixture
def replicas(postgres: PostgresServer, tmp_path: Path) -> Iterator[tuple[RunningServer, ...]]:
    url = postgres.create_database()
    first = start_replica(tmp_path, "a", url)
    second = start_replica(tmp_path, "b", url, MEDIAGATE_MIGRATE_ON_START="false")
    yield first, second
    for replica in (first, second):
        replica.stop()


async def video_frames(subscriber: Subscriber) -> int:
    return len(subscriber.capture("video").frames)


async def test_whep_on_the_wrong_replica_plays_from_the_publishers(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    a, b = replicas
    publisher, viewer, local_viewer = Publisher(), Subscriber(), Subscriber()
    async with httpx.AsyncClient(base_url=a.base_url) as on_a, \
            httpx.AsyncClient(base_url=b.base_url) as on_b:
        try:
            assert (await publish(on_a, "stage", publisher)).status_code == 201
            # the viewer asks replica b, which holds nothing of the room
            played = await play(on_b, "stage", viewer)
            assert played.status_code == 201, played.text
            await wait_for(lambda: len(viewer.capture("video").frames) >= 30, within=20)
            assert (await play(on_a, "stage", local_viewer)).status_code == 201
            rooms = (await on_a.get("/api/rooms")).json()
            assert rooms == [{"name": "stage", "hasPublisher": True, "tracks": 2,
                              "subscribers": 2}]
            assert (await on_b.get("/api/rooms")).json() == []  # rooms are per replica
            # the session resource answers on any replica too
            location = played.headers["Location"]
            ended = await on_b.delete(location)
            contract.check("live", "DELETE", location, ended)
            assert ended.status_code == 200
            await wait_for(
                lambda: (httpx.get(a.base_url + "/api/rooms").json()[0]["subscribers"] == 1),
                within=10,
            )
            # a second publisher on the other replica is refused as upstream does
            second = await on_b.post("/api/whip/publish/stage", content=(
                await offer_of(Publisher())), headers=SDP)
            assert second.status_code == 409
            assert second.json() == {"error": "publisher already exists in this room"}
        finally:
            for peer in (publisher, viewer, local_viewer):
                await peer.close()


async def offer_of(publisher: Publisher) -> str:
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    return publisher.pc.localDescription.sdp


async def test_a_killed_replica_loses_only_its_media_sessions(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    a, b = replicas
    publisher, viewer = Publisher(), Subscriber()
    async with httpx.AsyncClient(base_url=a.base_url) as on_a, \
            httpx.AsyncClient(base_url=b.base_url) as on_b:
        try:
            assert (await publish(on_a, "doomed", publisher)).status_code == 201
            a.stop(signal.SIGKILL)
            response = await on_b.post("/api/whep/play/doomed", content=await offer_of_viewer(
                viewer), headers=SDP)
            assert response.status_code == 404
            assert response.json() == {"error": "no active publisher in room"}
            # b serves on, and a new publisher may take the room there
            assert (await on_b.get("/readyz")).status_code == 200
            retaken = await publish(on_b, "doomed", Publisher())
            assert retaken.status_code == 201, retaken.text
        finally:
            await publisher.close()
            await viewer.close()


async def offer_of_viewer(viewer: Subscriber) -> str:
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    return viewer.pc.localDescription.sdp


async def test_sigterm_drains_active_whep_sessions(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", ready_path="/readyz",
                          env={"MEDIAGATE_SHUTDOWN_GRACE": "4"})
    publisher, viewer = Publisher(), Subscriber()
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await publish(http, "drain", publisher)).status_code == 201
            assert (await play(http, "drain", viewer)).status_code == 201
            await wait_for(lambda: len(viewer.capture("video").frames) >= 10, within=20)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "draining"}
            refused = await http.post("/api/whep/play/drain", content=await offer_of_viewer(
                Subscriber()), headers=SDP)
            assert refused.status_code == 503
            before = len(viewer.capture("video").frames)
            await asyncio.sleep(2.5)
            assert len(viewer.capture("video").frames) > before + 30  # still flowing
        code = await asyncio.to_thread(server.process.wait, 30)
        assert code == 0, server.log()
        assert time.monotonic() - signalled >= 3.5  # it waited for the grace period
    finally:
        await publisher.close()
        await viewer.close()
        server.stop()


async def test_punch_sessions_and_signalling_span_replicas(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    from tests.brokerage.helpers import Api, Peer

    a, b = replicas
    on_a, on_b = Api(a.base_url), Api(b.base_url)
    try:
        created = on_a.create("spanning", latency=120)
        name, admin = created["session"], created["token"]
        seen = on_b.request("GET", f"/api/session/{name}", token=admin)
        assert seen.status_code == 200 and seen.json()["state"] == "WAITING"
        assert on_b.request("POST", "/api/session", json={"name": name}).status_code == 409
        # one peer on each replica: each learns the other's address through the bus
        first = await Peer.connect(a.base_url, name, admin)
        second = await Peer.connect(b.base_url, name, admin)
        try:
            await first.send({"type": "register", "port": 6001})
            await first.expect("registered")
            await second.send({"type": "register", "port": 6002, "stream": "default"})
            await second.expect("registered")
            to_first, to_second = await first.expect("peer"), await second.expect("peer")
            assert to_first["port"] == 6002 and to_second["port"] == 6001
            assert to_first["passphrase"] == to_second["passphrase"]
            await first.expect("state", state="READY")
            await second.expect("state", state="READY")
            assert on_a.request("GET", f"/api/session/{name}", token=admin).json()["state"] \
                == "READY"
            # closing on one replica tells the sockets held by the other
            assert on_a.request("DELETE", f"/api/session/{name}", token=admin).status_code \
                == 204
            await second.expect("state", state="CLOSED")
        finally:
            await first.close()
            await second.close()
    finally:
        on_a.close()
        on_b.close()


def test_studio_keys_and_studios_are_shared_by_replicas(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    import json
    import subprocess
    import sys

    a, b = replicas
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "studio-key", "create", "--owner", "alice",
         "--all-scopes"],
        env=a.env, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    headers = {"Authorization": f"Bearer {key}"}
    studio = httpx.post(a.base_url + "/v1/studios", json={"name": "Morning show"},
                        headers=headers)
    contract.check("studio", "POST", "/v1/studios", studio)
    assert studio.status_code == 201
    studio_id = studio.json()["id"]
    on_b = httpx.get(b.base_url + f"/v1/studios/{studio_id}", headers=headers)
    contract.check("studio", "GET", f"/v1/studios/{studio_id}", on_b)
    assert on_b.status_code == 200 and on_b.json()["name"] == "Morning show"
    a.stop(signal.SIGKILL)  # stored data outlives the replica that wrote it
    listed = httpx.get(b.base_url + "/v1/studios", headers={"X-API-Key": key})
    assert [s["id"] for s in listed.json()["data"]] == [studio_id]
