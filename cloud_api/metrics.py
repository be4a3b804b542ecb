"""Prometheus metrics of one cloud process, in a registry of its own (one per app or worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series are noise


class GatewaysOnline(Collector):
    """`kasify_gateways_online` / `kasify_gateways_enrolled`, counted in the database at scrape."""

    def __init__(self, count: Callable[[], tuple[int, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample each; nothing when the database does not answer."""
        try:
            online, enrolled = self._count()
        except Exception:
            return
        yield GaugeMetricFamily(
            "kasify_gateways_online", "Enrolled gateways whose presence is online", value=online
        )
        yield GaugeMetricFamily(
            "kasify_gateways_enrolled", "Enrolled gateways not deleted", value=enrolled
        )


class Metrics:
    """Every metric the cloud exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "kasify_http_request_duration_seconds",
            "API request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest_messages = Counter(
            "kasify_ingest_messages",
            "MQTT messages ingested, by channel and outcome (stored, dropped, failed)",
            ["channel", "outcome"],
            registry=r,
        )
        self.ingest_events = Counter(
            "kasify_ingest_events_stored",
            "New events stored (rate() is the ingest rate)",
            registry=r,
        )
        self.ingest_batch_seconds = Histogram(
            "kasify_ingest_batch_seconds",
            "Time to store one batch of messages, commit included",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.publish_lag = Histogram(
            "kasify_desired_publish_lag_seconds",
            "From a change that affects a gateway to its new desired state acknowledged by the "
            "broker",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.desired_published = Counter(
            "kasify_desired_published", "Desired-state documents published", registry=r
        )
        self.commands = Counter(
            "kasify_commands", "Remote lock commands sent, by action", ["action"], registry=r
        )

    def watch_gateways(self, count: Callable[[], tuple[int, int]]) -> None:
        """Export gateway presence, counted by `count` at each scrape."""
        self.registry.register(GatewaysOnline(count))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
