"""A destination that drops is retried without stopping the others; stream keys never leak."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.studio.live_helpers import Api, make_clip, start_gateway
from tests.studio.rtmp import NginxRtmp, RtmpReader

KEY_A = "live_sk_AAAA-1111-keep-streaming"
KEY_B = "live_sk_BBBB-2222-gets-killed"
KEY_DEAD = "live_sk_DEAD-3333-nobody-listens"
KEY_OLD = "live_sk_OLD-4444-replaced-by-patch"
KEY_LATE = "live_sk_LATE-5555-added-while-live"


def test_dropped_destination_errors_recovers_and_keys_never_leak(tmp_path: Path) -> None:
    server_a = NginxRtmp(tmp_path / "nginx-a").start()
    server_b = NginxRtmp(tmp_path / "nginx-b").start()
    dead_port = NginxRtmp(tmp_path / "nginx-dead").port  # never started
    gateway = start_gateway(tmp_path / "data", MEDIAGATE_LOG_LEVEL="DEBUG")
    api = Api(gateway)
    try:
        clip = api.upload_clip(make_clip(tmp_path / "clip.mp4", seconds=3, size="320x240"))
        sid, _, (dest_a, dest_b, dest_dead) = api.studio_with(
            {"name": "loop", "type": "media", "url": clip},
            [(server_a.url, KEY_A), (server_b.url, KEY_OLD),
             (f"rtmp://127.0.0.1:{dead_port}/live", KEY_DEAD)])
        patched = api("PATCH", f"/v1/studios/{sid}/destinations/{dest_b}",
                      {"streamKey": KEY_B}, expect=200)
        assert patched.json()["hasStreamKey"] is True
        api("POST", f"/v1/studios/{sid}/go-live", expect=200)
        api.wait_for(lambda: api.statuses(sid)[dest_a][0] == "live"
                     and api.statuses(sid)[dest_b][0] == "live", 15, "A and B live")
        dead_status, dead_reason = api.statuses(sid)[dest_dead]
        assert dead_status == "error" and dead_reason, dead_reason

        watcher_a = RtmpReader(f"{server_a.url}/{KEY_A}", duration=60).start()
        api.wait_for(lambda: watcher_a.packets > 0, 10, "A playing")

        server_b.kill()
        api.wait_for(lambda: api.statuses(sid)[dest_b][0] == "error", 15, "B in error")
        reason = api.statuses(sid)[dest_b][1]
        assert reason
        during = watcher_a.packets
        time.sleep(2)
        assert watcher_a.packets > during + 30, "A stopped while B was down"
        assert api.statuses(sid)[dest_a][0] == "live"

        server_b.start()  # same port
        api.wait_for(lambda: api.statuses(sid)[dest_b][0] == "live", 20, "B to recover")
        reader_b = RtmpReader(f"{server_b.url}/{KEY_B}", duration=3).start().join()
        assert reader_b.error is None and reader_b.video_frames >= 30, reader_b
        assert watcher_a.ended_at is None and watcher_a.error is None

        # while live: a disabled destination stops, a new one starts at once
        api("PATCH", f"/v1/studios/{sid}/destinations/{dest_dead}", {"enabled": False},
            expect=200)
        assert api.statuses(sid)[dest_dead][0] == "offline"
        late = api("POST", f"/v1/studios/{sid}/destinations",
                   {"name": "late", "platform": "custom", "rtmpUrl": server_a.url,
                    "streamKey": KEY_LATE}, expect=201).json()["id"]
        api.wait_for(lambda: api.statuses(sid)[late][0] == "live", 15, "the late destination")
        reader_late = RtmpReader(f"{server_a.url}/{KEY_LATE}", duration=2).start().join()
        assert reader_late.error is None and reader_late.video_frames >= 20, reader_late
        assert late in api("POST", f"/v1/studios/{sid}/go-live", expect=200).json()[
            "destinationIds"]

        api("POST", f"/v1/studios/{sid}/go-offline", expect=200)
        watcher_a.join(15)
        for path in (f"/v1/studios/{sid}/destinations", f"/v1/studios/{sid}",
                     f"/v1/studios/{sid}/stream-status", "/v1/openapi.json"):
            api("GET", path, expect=200)
    finally:
        api.close()
        assert gateway.stop() == 0, gateway.log()
        server_a.stop()
        server_b.stop()

    secrets = [KEY_A, KEY_B, KEY_DEAD, KEY_OLD, KEY_LATE]
    bodies = b"\n".join(api.bodies)
    log = gateway.log()
    assert "destination" in log and dest_b in log  # the failure was logged...
    database = gateway.data_dir / "mediagate.db"
    rows = sqlite3.connect(database).execute("SELECT * FROM studio_destinations").fetchall()
    assert len(rows) == 4
    cells = " ".join(str(cell) for row in rows for cell in row)
    raw = b"".join(p.read_bytes() for p in gateway.data_dir.glob("mediagate.db*"))
    for secret in secrets:
        assert secret.encode() not in bodies, secret  # ...but no key in any response,
        assert secret not in log, secret  # log line,
        assert secret not in cells and secret.encode() not in raw, secret  # or column
