"""mediagate media core: WebRTC peers, published tracks and encoded-frame forwarding.

Knows nothing about HTTP; the gateway drives it through `MediaCore` and `Peer`.
"""

from .core import MediaConfig, MediaCore
from .forward import Tap
from .peer import Peer, Subscription
from .stats import CoreStats, PeerStats, SubscriptionStats, TrackStats
from .types import (
    EncodedFrame,
    IceRestart,
    MediaError,
    MediaEvent,
    NegotiationError,
    PeerClosed,
    PeerClosedError,
    PeerLimitReached,
    TrackEnded,
    TrackExists,
    TrackInfo,
    TrackPublished,
    TrackStarted,
    UnknownTrack,
)

__all__ = [
    "CoreStats",
    "EncodedFrame",
    "IceRestart",
    "MediaConfig",
    "MediaCore",
    "MediaError",
    "MediaEvent",
    "NegotiationError",
    "Peer",
    "PeerClosed",
    "PeerClosedError",
    "PeerLimitReached",
    "PeerStats",
    "Subscription",
    "SubscriptionStats",
    "Tap",
    "TrackEnded",
    "TrackExists",
    "TrackInfo",
    "TrackPublished",
    "TrackStarted",
    "TrackStats",
    "UnknownTrack",
]
