"""`/metrics`: a per-app Prometheus registry with the room metrics under both the documented
`live_*` names and the upstream code's `webrtc_*` names, plus process metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from gateway.live.service import LiveService

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PREFIXES = ("live", "webrtc")


class RoomCollector(Collector):
    def __init__(self, service: LiveService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        rooms = self._service.list_rooms()
        traffic = self._service.traffic()
        for prefix in PREFIXES:
            yield GaugeMetricFamily(f"{prefix}_rooms", "Active room count", value=len(rooms))
            subscribers = GaugeMetricFamily(
                f"{prefix}_subscribers", "Subscribers per room", labels=["room"]
            )
            for room in rooms:
                subscribers.add_metric([str(room["name"])], float(room["subscribers"]))  # type: ignore[arg-type]
            yield subscribers
            rtp_bytes = CounterMetricFamily(
                f"{prefix}_rtp_bytes", "Total RTP bytes", labels=["room"]
            )
            rtp_packets = CounterMetricFamily(
                f"{prefix}_rtp_packets", "Total RTP packets", labels=["room"]
            )
            for room_name, totals in sorted(traffic.items()):
                rtp_bytes.add_metric([room_name], totals.bytes)
                rtp_packets.add_metric([room_name], totals.packets)
            yield rtp_bytes
            yield rtp_packets


def build_registry(service: LiveService) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(RoomCollector(service))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
