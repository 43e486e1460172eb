"""What the host is: name, LAN address, encoders PyAV can really use, and its port map."""

from __future__ import annotations

import ipaddress
import logging
import socket

import av

from gateway.settings import Settings

log = logging.getLogger("mediagate.host")

# GameStream versions advertised to Moonlight (a GFE-era host generation it pairs with).
APP_VERSION = "7.1.431.-1"
GFE_VERSION = "3.23.0.74"

SOFTWARE_ENCODERS = {
    "h264": ("libx264", "libopenh264"),
    "h265": ("libx265",),
    "av1": ("libsvtav1", "libaom-av1", "librav1e"),
}
HARDWARE_ENCODERS = {
    "h264": ("h264_nvenc", "h264_qsv", "h264_amf", "h264_v4l2m2m"),
    "h265": ("hevc_nvenc", "hevc_qsv", "hevc_amf", "hevc_v4l2m2m"),
    "av1": ("av1_nvenc", "av1_qsv", "av1_amf"),
}


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


def _hardware_opens(name: str) -> bool:
    """Whether a hardware encoder really opens (present in FFmpeg is not enough)."""
    if not _has_encoder(name):
        return False
    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height = 256, 144
        context.pix_fmt = "nv12" if "qsv" in name else "yuv420p"
        context.time_base = "1/30"  # type: ignore[assignment]
        context.open()
        context.close()
    except Exception:
        return False
    return True


def detect_codecs() -> list[str]:
    """Codecs (contract names) with a usable encoder; slow-ish, call once in a thread."""
    found: list[str] = []
    for codec in ("h264", "h265", "av1"):
        if any(_has_encoder(n) for n in SOFTWARE_ENCODERS[codec]) or any(
            _hardware_opens(n) for n in HARDWARE_ENCODERS[codec]
        ):
            found.append(codec)
    return found


def local_ip(settings: Settings) -> str:
    """Best effort: the bind address if specific, else the source address of the default
    route (a UDP connect sends nothing), else loopback."""
    host, _ = settings.bind_host_port
    try:
        address = ipaddress.ip_address(host)
        if not address.is_unspecified:
            return str(address)
    except ValueError:
        pass
    for target in ("192.0.2.1", "10.255.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return "127.0.0.1"


def port_map(settings: Settings) -> dict[str, int]:
    """Moonlight derives the stream ports from the HTTP base (47989): these are reported so
    a control pane need not; mediagate serves only `mgmt`, `http` and `https` itself."""
    _, mgmt = settings.bind_host_port
    http = settings.gamestream_http_port
    base = http or 47989
    return {
        "mgmt": mgmt,
        "http": http,
        "https": settings.gamestream_https_port,
        "rtsp": base + 21,
        "video": base + 9,
        "control": base + 10,
        "audio": base + 11,
    }


def hostname() -> str:
    return socket.gethostname() or "mediagate"
