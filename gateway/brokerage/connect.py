"""Ready-to-paste connection strings for each encoder format, per peer and direction.

Rendezvous is symmetric: each peer binds its own registered port and targets the other's
public address. Two tools cannot do that and get the mode that works for them instead:

* FFmpeg's libsrt binds a rendezvous socket to the *remote* address and has no local
  port option, so its strings pair a listener (the receiver, on its registered port)
  with a caller (the sender).
* In relay mode every format is a caller to the gateway's relay port for that peer.

`srt-live-transmit` bridges SRT to UDP on loopback: the sender reads, the receiver
writes, at `udp://127.0.0.1:<registered SRT port + 1>` (or -1 at 65535).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

Role = Literal["sender", "receiver"]
FORMATS = ("ffmpeg", "obs", "vmix", "gstreamer", "srt-live-transmit")
FFMPEG_PKT_SIZE = 1316
FFMPEG_LINGER_S = 2


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Link:
    """Everything one peer needs: where it listens/binds and whom it reaches."""

    local_port: int
    remote: Endpoint
    role: Role
    latency_ms: int
    passphrase: str
    pbkeylen: int
    stream_id: str
    relay: bool = False
    """True: `remote` is the gateway's relay and this peer calls it."""


def bridge_port(srt_port: int) -> int:
    return srt_port + 1 if srt_port < 65535 else srt_port - 1


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _srt_uri(host: str, port: int, params: dict[str, object]) -> str:
    return f"srt://{_host(host)}:{port}?{urlencode(params)}"


def _crypto(link: Link) -> dict[str, object]:
    return {"passphrase": link.passphrase, "pbkeylen": link.pbkeylen}


def ffmpeg(link: Link) -> str:
    latency_us = link.latency_ms * 1000
    common: dict[str, object] = {"latency": latency_us, **_crypto(link),
                                 "pkt_size": FFMPEG_PKT_SIZE}
    if link.role == "sender":
        common["linger"] = FFMPEG_LINGER_S  # deliver the tail before closing
    if link.relay or link.role == "sender":
        # callers: to the relay, or the sender to the receiver's listener
        uri = _srt_uri(link.remote.host, link.remote.port, {"mode": "caller", **common})
    else:
        uri = _srt_uri("0.0.0.0", link.local_port, {"mode": "listener", **common})
    if link.role == "sender":
        return f"ffmpeg -re -i input.ts -c copy -f mpegts {shlex.quote(uri)}"
    return f"ffmpeg -i {shlex.quote(uri)} -c copy -f mpegts output.ts"


def obs(link: Link) -> str:
    latency_us = link.latency_ms * 1000
    if link.relay:
        params: dict[str, object] = {"mode": "caller"}
    else:
        params = {"mode": "rendezvous", "localip": "0.0.0.0", "localport": link.local_port}
    params.update({"latency": latency_us, **_crypto(link)})
    return _srt_uri(link.remote.host, link.remote.port, params)


def vmix(link: Link) -> str:
    mode = "Caller" if link.relay else "Rendezvous"
    lines = [
        f"Use: {'Output > SRT' if link.role == 'sender' else 'Input > SRT'}",
        f"Stream Type: SRT ({mode})",
        f"Hostname: {link.remote.host}",
        f"Port: {link.remote.port}",
    ]
    if not link.relay:
        lines.append(f"Local Port: {link.local_port}")
    lines += [
        f"Latency (ms): {link.latency_ms}",
        f"Passphrase: {link.passphrase}",
        f"Key Length: AES-{link.pbkeylen * 8}",
        f"Mode: {mode}",
        f"Stream ID: {link.stream_id}",
    ]
    if not link.relay and link.local_port != link.remote.port:
        lines.append("Note: vMix rendezvous uses the same port on both sides; "
                     "register both peers with one port to use vMix")
    return "\n".join(lines)


def gstreamer(link: Link) -> str:
    params: dict[str, object] = (
        {"mode": "caller"} if link.relay
        else {"mode": "rendezvous", "localport": link.local_port}
    )
    uri = _srt_uri(link.remote.host, link.remote.port, params)
    props = (f"uri={shlex.quote(uri)} latency={link.latency_ms} "
             f"passphrase={shlex.quote(link.passphrase)} pbkeylen={link.pbkeylen}")
    udp = bridge_port(link.local_port)
    if link.role == "sender":
        return f"gst-launch-1.0 udpsrc port={udp} ! srtsink {props}"
    return f"gst-launch-1.0 srtsrc {props} ! udpsink host=127.0.0.1 port={udp}"


def srt_live_transmit(link: Link) -> str:
    common = {"latency": link.latency_ms, **_crypto(link)}
    if link.relay:
        params: dict[str, object] = {"mode": "caller", **common}
    else:
        params = {"mode": "rendezvous", "port": link.local_port, **common}
    srt = shlex.quote(_srt_uri(link.remote.host, link.remote.port, params))
    udp = f"udp://127.0.0.1:{bridge_port(link.local_port)}"
    if link.role == "sender":
        return f"srt-live-transmit {udp} {srt}"
    return f"srt-live-transmit {srt} {udp}"


def formats(link: Link) -> dict[str, str]:
    return {
        "ffmpeg": ffmpeg(link),
        "obs": obs(link),
        "vmix": vmix(link),
        "gstreamer": gstreamer(link),
        "srt-live-transmit": srt_live_transmit(link),
    }


def other(role: Role) -> Role:
    return "receiver" if role == "sender" else "sender"
