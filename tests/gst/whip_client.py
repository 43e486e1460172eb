"""A real second WebRTC stack for the tests: GStreamer ``webrtcbin`` (Debian's 1.22) as a WHIP
publisher or a WHEP viewer. Run with Debian's ``/usr/bin/python3`` (the project's virtualenv
cannot import ``gi``); pytest drives it as a subprocess (tests/gst/driver.py).

    whip_client.py publish URL [--video vp8|h264] [options]
    whip_client.py play URL [--video vp8|h264] [options]

The publisher sends videotestsrc (VP8, or H.264 constrained baseline with
packetization-mode 1) and audiotestsrc (Opus) on one webrtcbin with ``max-bundle``, so the
offer has GStreamer's real shape: ``BUNDLE audio0 video1``, the video ``m=video 0`` +
``a=bundle-only``. The viewer offers two recvonly transceivers and decodes what arrives.
Both POST the offer as soon as it is created (no candidates yet), then trickle every local
candidate in a ``PATCH`` ``application/trickle-ice-sdpfrag`` to the ``Location`` (RFC 9725)
and finish with ``a=end-of-candidates``; at the end they DELETE the session.

Everything the program observes is printed as one JSON object per line (``{"event": ...}``),
with ``counts`` (frames sent/decoded, audio buffers) every 100 ms; the last line is
``{"event": "done", ...}`` or ``{"event": "error", ...}``. It runs ``--seconds`` at most, or
until a ``stop`` line (or EOF) on stdin.

Options: ``--ice-address A`` makes libnice gather on that local address only (UPnP is always
off); ``--setup active|passive`` rewrites the ``a=setup`` of the POSTed offer (a client that
wants a fixed DTLS role); ``--wrong-fingerprint`` POSTs fingerprints of no certificate (a
DTLS failure on purpose); ``--token`` sends ``Authorization: Bearer``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO = {
    "vp8": (
        "vp8enc name=encoder deadline=1 cpu-used=8 target-bitrate=600000 keyframe-max-dist=60 "
        "error-resilient=partitions ! rtpvp8pay pt=96 mtu=1200 ! "
        "capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96,"
        "clock-rate=90000"
    ),
    "h264": (
        "x264enc name=encoder tune=zerolatency speed-preset=ultrafast bitrate=600 key-int-max=60 ! "
        "video/x-h264,profile=constrained-baseline ! "
        "rtph264pay pt=102 mtu=1200 config-interval=-1 aggregate-mode=zero-latency ! "
        "capsfilter caps=application/x-rtp,media=video,encoding-name=H264,payload=102,"
        "clock-rate=90000,packetization-mode=(string)1"
    ),
}
AUDIO = (
    "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
    "opusenc name=encoder bitrate=32000 ! rtpopuspay pt=111 ! "
    "capsfilter caps=application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
)
MID_EXTENSION = "urn:ietf:params:rtp-hdrext:sdes:mid"
RECV_CAPS = {
    "audio": "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000",
    "video": "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
    "video-h264": (
        "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
        "packetization-mode=(string)1,profile-level-id=(string)42e01f"
    ),
}
DECODERS = {
    "VP8": "rtpvp8depay ! vp8dec",
    "H264": "rtph264depay ! avdec_h264",
    "OPUS": "rtpopusdepay ! opusdec",
}


_OUTPUT = threading.Lock()  # GStreamer, GLib and HTTP threads all report


def emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields})
    with _OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@dataclass
class Counters:
    sent_video: int = 0
    sent_audio: int = 0
    video_frames: int = 0
    audio_buffers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {
                "sent_video": self.sent_video,
                "sent_audio": self.sent_audio,
                "video_frames": self.video_frames,
                "audio_buffers": self.audio_buffers,
            }


class Signalling(threading.Thread):
    """WHIP/WHEP HTTP in order, off the GStreamer threads: the POST, then each PATCH."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.location: str | None = None

    def request(self, method: str, url: str, body: str, content_type: str,
                ) -> tuple[int, Message, str]:
        headers = {"Content-Type": content_type}
        if self.client.args.token:
            headers["Authorization"] = f"Bearer {self.client.args.token}"
        req = urllib.request.Request(url, data=body.encode(), method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode(errors="replace")

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            kind, payload = job
            try:
                if kind == "offer":
                    self.post(payload)
                else:
                    self.patch(payload)
            except Exception as exc:  # reported, then the program stops
                self.client.fail(f"{kind}: {exc!r}")
                return

    def post(self, offer: str) -> None:
        url = self.client.args.url
        status, headers, body = self.request("POST", url, offer, "application/sdp")
        emit("post", status=status, location=headers.get("Location"), body=body[:2000])
        if status != 201:
            raise RuntimeError(f"POST answered {status}: {body[:300]}")
        self.location = urllib.parse.urljoin(url, headers["Location"])
        self.client.set_answer(body)

    def patch(self, fragment: str) -> None:
        assert self.location is not None
        status, _, body = self.request("PATCH", self.location, fragment,
                                       "application/trickle-ice-sdpfrag")
        emit("patch", status=status, fragment=fragment, body=body[:300])
        if status not in (200, 204):
            raise RuntimeError(f"PATCH answered {status}: {body[:300]}")


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.counters = Counters()
        self.signalling = Signalling(self)
        self.pipeline = Gst.Pipeline.new("client")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        policy = {"max-bundle": GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE,
                  "balanced": GstWebRTC.WebRTCBundlePolicy.BALANCED,
                  "none": GstWebRTC.WebRTCBundlePolicy.NONE}[args.bundle_policy]
        self.webrtc.set_property("bundle-policy", policy)
        self.pipeline.add(self.webrtc)
        # webrtcbin 1.22 never sinks its GstWebRTCNice's floating reference, so the Python
        # wrapper takes it over: keep the wrapper for the whole run
        self.ice_agent = self.webrtc.get_property("ice-agent")
        # no UPnP port mapping (libnice would search the LAN for a gateway)
        self.ice_agent.get_property("agent").set_property("upnp", False)
        if args.ice_address:
            self.ice_agent.emit("add-local-ip-address", args.ice_address)
        self.sections: list[dict[str, str]] = []  # per offered m-line: kind, mid, ufrag, pwd
        self.offered = False
        self.ended_candidates = False
        self.failure: str | None = None
        self.connected_at: float | None = None
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering_state)
        self.webrtc.connect("notify::ice-connection-state", self.on_state)
        self.webrtc.connect("notify::connection-state", self.on_state)
        self.webrtc.connect("pad-added", self.on_pad_added)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_bus_error)

    # -- media ------------------------------------------------------------------------

    def add_branch(self, description: str) -> Gst.Element:
        branch = Gst.parse_bin_from_description(description, True)
        self.pipeline.add(branch)
        return branch

    def build_publisher(self) -> None:
        extension = f",extmap-1=(string){MID_EXTENSION}" if self.args.mid_extension else ""
        # audio first: GStreamer then offers `BUNDLE audio0 video1`, the video bundle-only
        audio = self.add_branch(AUDIO + extension)
        encoder = audio.get_by_name("encoder")
        encoder.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.count, "sent_audio")
        audio.link(self.webrtc)
        video = self.add_branch(
            "videotestsrc is-live=true pattern=ball ! "
            f"video/x-raw,width=320,height=240,framerate={self.args.fps}/1 ! "
            f"videoconvert ! queue ! {VIDEO[self.args.video]}{extension}"
        )
        encoder = video.get_by_name("encoder")
        encoder.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.count, "sent_video")
        video.link(self.webrtc)
        for transceiver in self.transceivers():
            transceiver.set_property("direction",
                                     GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            transceiver.set_property("do-nack", self.args.nack)

    def build_viewer(self) -> None:
        recvonly = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        video_caps = "video-h264" if self.args.video == "h264" else "video"
        for kind in ("audio", video_caps):
            caps = Gst.Caps.from_string(RECV_CAPS[kind])
            self.webrtc.emit("add-transceiver", recvonly, caps)

    def transceivers(self) -> list[GstWebRTC.WebRTCRTPTransceiver]:
        found = []
        index = 0
        while (t := self.webrtc.emit("get-transceiver", index)) is not None:
            found.append(t)
            index += 1
        return found

    def count(self, pad: Gst.Pad, info: Gst.PadProbeInfo, name: str) -> Gst.PadProbeReturn:
        self.counters.add(name)
        return Gst.PadProbeReturn.OK

    def on_pad_added(self, element: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        structure = caps.get_structure(0)
        encoding = (structure.get_string("encoding-name") or "").upper()
        emit("pad", caps=caps.to_string())
        decoder = DECODERS.get(encoding)
        if decoder is None:
            sink = self.add_branch("fakesink sync=false")
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad("sink"))
            return
        name = "audio_buffers" if encoding == "OPUS" else "video_frames"
        branch = self.add_branch(f"queue ! {decoder} ! fakesink name=sink sync=false")
        sink = branch.get_by_name("sink")
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.count, name)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))

    # -- signalling -------------------------------------------------------------------

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        if self.offered:
            return
        self.offered = True
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        element.emit("create-offer", None, promise)

    def on_offer_created(self, promise: Gst.Promise, _data: Any) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        if offer is None:
            self.fail(f"create-offer failed: {reply.to_string() if reply else None}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        text = offer.sdp.as_text()
        self.remember_ice(text)
        if self.args.setup:
            text = text.replace("a=setup:actpass", f"a=setup:{self.args.setup}")
        if self.args.wrong_fingerprint:  # names a certificate GStreamer does not have
            text = re.sub(r"(a=fingerprint:\S+ )(\S)",
                          lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), text)
        emit("offer", sdp=text)
        # posted before gathering completes: the candidates follow in PATCHes
        self.signalling.jobs.put(("offer", text))

    def remember_ice(self, sdp: str) -> None:
        for line in sdp.splitlines():
            if line.startswith("m="):
                self.sections.append({"kind": line[2:].split()[0]})
            elif self.sections and line.startswith(("a=ice-ufrag:", "a=ice-pwd:", "a=mid:")):
                name, value = line[2:].split(":", 1)
                self.sections[-1][name.removeprefix("ice-")] = value

    def set_answer(self, text: str) -> None:
        ok, message = GstSdp.SDPMessage.new_from_text(text)
        if ok != GstSdp.SDPResult.OK:
            self.fail("cannot parse the answer")
            return
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", answer, promise)
        promise.wait()
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            self.fail(f"set-remote-description: {reply.get_value('error')}")
            return
        emit("answer", sdp=text)

    def fragment(self, mline: int, lines: list[str]) -> str:
        """RFC 8840 fragment for the m-line `mline` (its own ICE credentials and mid)."""
        section = self.sections[mline]
        head = [
            f"a=ice-ufrag:{section['ufrag']}",
            f"a=ice-pwd:{section['pwd']}",
            f"m={section['kind']} 9 UDP/TLS/RTP/SAVPF 0",
            f"a=mid:{section['mid']}",
        ]
        return "\r\n".join(head + lines) + "\r\n"

    def on_ice_candidate(self, element: Gst.Element, mline: int, candidate: str) -> None:
        emit("candidate", mline=mline, candidate=candidate)
        if not candidate:  # some GStreamer versions signal the end this way
            self.end_of_candidates()
            return
        # with max-bundle every candidate belongs to the first m-line's transport
        self.signalling.jobs.put(("patch", self.fragment(mline, [f"a={candidate}"])))

    def on_gathering_state(self, element: Gst.Element, _spec: Any) -> None:
        state = element.get_property("ice-gathering-state")
        emit("gathering", state=state.value_nick)
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.end_of_candidates()

    def end_of_candidates(self) -> None:
        if not self.ended_candidates:
            self.ended_candidates = True
            # one transport per distinct ufrag: end each of them
            ends = {s["ufrag"]: m for m, s in reversed(list(enumerate(self.sections)))}
            for mline in sorted(ends.values()):
                self.signalling.jobs.put(("patch", self.fragment(mline, ["a=end-of-candidates"])))

    def on_state(self, element: Gst.Element, spec: Any) -> None:
        state = element.get_property(spec.name)
        emit("state", name=spec.name, state=state.value_nick)
        if spec.name == "connection-state":
            if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
                self.connected_at = time.monotonic()
            elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
                self.fail("connection failed")

    def on_bus_error(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        self.fail(f"{message.src.get_name()}: {error.message} ({debug})")

    # -- run --------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        GLib.idle_add(self.loop.quit)

    def watch_stdin(self) -> None:
        """The driver writes "stop" (or closes stdin) to end the run early."""
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        GLib.idle_add(self.loop.quit)

    def tick(self) -> bool:
        emit("counts", **self.counters.snapshot())
        return True

    def run(self) -> int:
        if self.args.mode == "publish":
            self.build_publisher()
        else:
            self.build_viewer()
        self.signalling.start()
        threading.Thread(target=self.watch_stdin, daemon=True).start()
        GLib.timeout_add(100, self.tick)
        GLib.timeout_add(int(self.args.seconds * 1000), self.loop.quit)
        self.pipeline.set_state(Gst.State.PLAYING)
        try:
            self.loop.run()
        finally:
            self.signalling.jobs.put(None)
            emit("counts", **self.counters.snapshot())
            self.pipeline.set_state(Gst.State.NULL)
            location = self.signalling.location
            if location:  # a WHIP/WHEP client ends its session
                status, _, _ = self.signalling.request("DELETE", location, "", "text/plain")
                emit("delete", status=status)
        if self.failure is not None:
            emit("error", reason=self.failure)
            return 1
        emit("done", connected=self.connected_at is not None)
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["publish", "play"])
    parser.add_argument("url")
    parser.add_argument("--video", choices=sorted(VIDEO), default="vp8")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--token")
    parser.add_argument("--setup", choices=["active", "passive"])
    parser.add_argument("--ice-address")
    parser.add_argument("--wrong-fingerprint", action="store_true")
    parser.add_argument("--bundle-policy", choices=["max-bundle", "balanced", "none"],
                        default="max-bundle")
    parser.add_argument("--nack", action="store_true", help="offer NACK and RTX")
    parser.add_argument("--mid-extension", action="store_true",
                        help="send the RTP header extension that names each packet's mid")
    Gst.init(None)
    code = Client(parser.parse_args()).run()
    sys.stdout.flush()
    # skip interpreter teardown: finalising GStreamer's objects from Python at exit is noisy
    os._exit(code)


if __name__ == "__main__":
    main()
