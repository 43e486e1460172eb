"""SDP offers shaped to cost the gateway the most: at (or past) the shared SDP limits."""

from __future__ import annotations

from media.sdplimits import SdpLimits

# Payload types aiortc accepts on an m-line: the dynamic range, then static numbers it does
# not forbid (72-76 are RTCP packet types).
PAYLOAD_TYPES = [*range(96, 128), *range(35, 72), *range(77, 96)]
FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)


def _section(kind: str, mid: str, budget: int, limits: SdpLimits, candidates: int) -> list[str]:
    formats = PAYLOAD_TYPES[: min(limits.max_formats, limits.max_codecs // limits.max_sections)]
    codec = "opus/48000/2" if kind == "audio" else "VP8/90000"
    lines = [
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {' '.join(map(str, formats))}",
        "c=IN IP4 0.0.0.0", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        FINGERPRINT, "a=setup:actpass", f"a=mid:{mid}", "a=sendonly", "a=rtcp-mux",
    ]
    lines += [
        f"a=candidate:{i} 1 udp {2130706431 - i} 127.0.0.1 {9 + i} typ host"
        for i in range(candidates)
    ]
    # The expensive lines first: codecs, feedback searched per codec, ssrcs searched per line.
    expensive = [f"a=rtpmap:{pt} {codec}" for pt in formats]
    per_pt = max(1, limits.max_feedback // len(formats))
    expensive += [f"a=rtcp-fb:{pt} nack" for pt in formats for _ in range(per_pt)]
    expensive += [f"a=ssrc:{1000 + i} cname:c" for i in range(limits.max_ssrcs)]
    expensive += [f"a=fmtp:{pt} minptime=10;useinbandfec=1" for pt in formats]
    room = max(0, min(budget, limits.max_section_lines) - len(lines))
    return lines + expensive[:room]


def offer(limits: SdpLimits, sections: int | None = None, *, candidates: int = 0) -> str:
    """A publisher offer with `sections` m-sections (default: the limit) filling the line
    budget with the lines aiortc spends most time on."""
    count = limits.max_sections if sections is None else sections
    mids = [str(i) for i in range(count)]
    head = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE " + " ".join(mids)]
    budget = (limits.max_lines - len(head) - 1) // max(count, 1)
    lines = head
    for i, mid in enumerate(mids):
        kind = "audio" if i % 2 == 0 else "video"
        lines += _section(kind, mid, budget, limits, candidates if i == 0 else 0)
    return "\r\n".join(lines) + "\r\n"


def padded_offer(sections: int, size: int) -> str:
    """`sections` small sendonly sections padded with attribute lines to about `size` bytes
    (the finding: a 1 MB offer with 580 m-sections)."""
    mids = [str(i) for i in range(sections)]
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE " + " ".join(mids)]
    per_section = max(0, size // sections - 400)
    for i, mid in enumerate(mids):
        kind = "audio" if i % 2 == 0 else "video"
        codec = "opus/48000/2" if kind == "audio" else "VP8/90000"
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuvwx", FINGERPRINT, "a=setup:actpass",
            f"a=mid:{mid}", "a=sendonly", "a=rtcp-mux", f"a=rtpmap:96 {codec}",
        ]
        lines += [f"a=x-pad:{'p' * 60}"] * (per_section // 70)
    return "\r\n".join(lines) + "\r\n"
