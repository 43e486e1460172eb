"""SDP offers and `application/trickle-ice-sdpfrag` bodies (RFC 8840), parsed just enough
for WHIP/WHEP: which m-lines an offer sends or receives, and the ICE parts of a fragment."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiortc import sdp as aiortc_sdp

from media import IceRestart
from media.sdpfix import accept_bundle_only

MEDIA_KINDS = ("audio", "video")


class SdpError(ValueError):
    """The body is not an SDP offer (or fragment) this API can use."""


@dataclass(frozen=True)
class OfferSummary:
    sending: Counter[str]
    """m-lines per kind the offerer sends on (a publisher's tracks)."""
    receiving: Counter[str]
    """m-lines per kind the offerer can receive on (a viewer's slots)."""


def summarize_offer(text: str) -> OfferSummary:
    if not text.strip().startswith("v=0"):
        raise SdpError("not an SDP document")
    try:
        # a bundle-only section (port 0, RFC 8843) is bundled media, not a rejected one
        description = aiortc_sdp.SessionDescription.parse(accept_bundle_only(text))
    except Exception as exc:
        raise SdpError(str(exc)) from exc
    sending: Counter[str] = Counter()
    receiving: Counter[str] = Counter()
    for media in description.media:
        if media.kind not in MEDIA_KINDS or media.port == 0 or not media.rtp.codecs:
            continue
        if media.direction in ("sendonly", "sendrecv", None):
            sending[media.kind] += 1
        if media.direction in ("recvonly", "sendrecv", None):
            receiving[media.kind] += 1
    if not sending and not receiving:
        raise SdpError("no audio or video media")
    return OfferSummary(sending, receiving)


@dataclass(frozen=True)
class TrickledCandidate:
    line: str
    """``candidate:...`` (checked to parse)."""
    mid: str | None
    """The `a=mid` of the section it appeared in."""


@dataclass
class SdpFragment:
    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[TrickledCandidate] = field(default_factory=list)
    end_of_candidates: bool = False


def parse_fragment(text: str) -> SdpFragment:
    fragment = SdpFragment()
    mid: str | None = None
    understood = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            mid = None
            understood = True
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=ice-ufrag:"):
            fragment.ufrag = line[12:].strip()
            understood = True
        elif line.startswith("a=ice-pwd:"):
            fragment.pwd = line[10:].strip()
            understood = True
        elif line.startswith("a=end-of-candidates"):
            fragment.end_of_candidates = True
            understood = True
        elif line.startswith("a=candidate:"):
            try:
                aiortc_sdp.candidate_from_sdp(line[12:])
            except Exception as exc:
                raise SdpError(f"bad candidate line: {line[:80]}") from exc
            fragment.candidates.append(TrickledCandidate(line[2:], mid))
            understood = True
        elif not (line[:2] in ("a=", "c=", "b=") or line[0] in "vostz"):
            raise SdpError(f"unexpected line: {line[:80]}")
    if not understood:
        raise SdpError("no ICE attributes")
    if (fragment.ufrag is None) != (fragment.pwd is None) and fragment.pwd is not None:
        raise SdpError("ice-pwd without ice-ufrag")
    return fragment


def build_fragment(restart: IceRestart) -> str:
    """The server's answer fragment to an ICE restart (first m-line of the bundle)."""
    lines = [f"a=ice-ufrag:{restart.ufrag}", f"a=ice-pwd:{restart.pwd}"]
    lines.append(f"m={restart.kind} 9 UDP/TLS/RTP/SAVPF 0")
    if restart.mid is not None:
        lines.append(f"a=mid:{restart.mid}")
    lines += [f"a={candidate}" for candidate in restart.candidates]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
