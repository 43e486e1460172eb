"""Plain data types shared by the media core and its consumers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as received from a publisher.

    `timestamp` is on the publisher's RTP clock (rebased to start near 0 by aiortc);
    `codec` is a MIME type such as ``video/VP8``, ``video/H264`` or ``audio/opus``.
    """

    data: bytes
    timestamp: int
    codec: str
    keyframe: bool
    clock_rate: int

    @property
    def kind(self) -> Kind:
        return "video" if self.codec.startswith("video/") else "audio"


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """Metadata of a published track, as registered in the core."""

    track_id: str
    peer_id: str
    kind: Kind
    mid: str
    codec: str
    clock_rate: int


@dataclass(frozen=True, slots=True)
class TrackPublished:
    """A track id was registered (answer created); media may not flow yet."""

    track: TrackInfo


@dataclass(frozen=True, slots=True)
class TrackStarted:
    """The first frame of a published track arrived."""

    track: TrackInfo


@dataclass(frozen=True, slots=True)
class TrackEnded:
    """A published track ended; every subscription and tap of it has been closed."""

    track: TrackInfo
    reason: str


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """A peer was torn down (closed by the API, ICE/DTLS failure or core shutdown)."""

    peer_id: str
    reason: str
    published: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IceRestart:
    """Our side of an ICE restart (`Peer.restart_ice`): what the remote needs to resume."""

    ufrag: str
    pwd: str
    kind: str
    """Kind of the m-line owning the (bundled) transport: "audio", "video" or "application"."""
    mid: str | None
    candidates: list[str]
    """Our gathered candidates (unchanged by the restart) as ``candidate:...`` values."""


MediaEvent = TrackPublished | TrackStarted | TrackEnded | PeerClosed


class MediaError(Exception):
    """Base class of errors raised by the media core's public interface."""


class UnknownTrack(MediaError, KeyError):
    """No published track has this id."""


class TrackExists(MediaError):
    """A published track with this id is already registered."""


class NegotiationError(MediaError):
    """The SDP could not be applied (malformed, no common codec, wrong signaling state)."""


class PeerClosedError(MediaError):
    """The peer has been closed."""


class PeerLimitReached(MediaError):
    """Too many peers have not connected yet: from one client (`scope` "client") or in all
    (`scope` "global"). `retry_after`: seconds until the oldest of them times out."""

    def __init__(self, scope: str, limit: int, retry_after: int) -> None:
        who = "from this client" if scope == "client" else "on this server"
        super().__init__(
            f"too many connections {who} that have not connected yet (at most {limit}); "
            f"retry in {retry_after} s"
        )
        self.scope = scope
        self.limit = limit
        self.retry_after = retry_after
