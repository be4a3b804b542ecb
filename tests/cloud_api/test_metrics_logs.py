"""Prometheus metrics, structured logs, the CLI's commands, and the publisher's coalescing."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from cloud_api.cli import build_parser
from cloud_api.logs import JsonFormatter
from cloud_api.metrics import Metrics
from cloud_api.models import Gateway
from cloud_api.sync.ingest import Ingest
from cloud_api.sync.publisher import DesiredPublisher, Outgoing
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, new_site

HORIZON = timedelta(days=14)


async def test_metrics_export_latency_ingest_gateways_and_publish_lag(
    alice: Host, cloud: Cloud, client: httpx.AsyncClient
) -> None:
    site = await new_site(alice)
    await alice.get(f"/properties/{site.id}")
    Ingest(cloud.ctx.db).handle(topic(site.gateway_id, Channel.PRESENCE), b"online")
    text = (await client.get("/metrics")).text
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")
    # Latency by route template (no ids in the labels), gateways from the database.
    assert (
        'kasify_http_request_duration_seconds_count{method="GET",'
        'route="/properties/{property_id}",status="200"}' in text
    )
    assert "kasify_gateways_online " in text
    assert "kasify_gateways_enrolled " in text
    for declared in (
        "# TYPE kasify_ingest_events_stored_total counter",
        "# TYPE kasify_ingest_batch_seconds histogram",
        "# TYPE kasify_desired_publish_lag_seconds histogram",
        "# TYPE kasify_commands_total counter",
    ):
        assert declared in text
    online = next(line for line in text.splitlines() if line.startswith("kasify_gateways_online "))
    assert float(online.split()[1]) >= 1


def test_json_logs_carry_the_request_fields() -> None:
    record = logging.LogRecord("cloud_api.access", logging.INFO, "x", 1, "GET /x 200", None, None)
    record.http_status = 200
    record.duration_ms = 1.5
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["msg"]) == (
        "info",
        "cloud_api.access",
        "GET /x 200",
    )
    assert (line["http_status"], line["duration_ms"]) == (200, 1.5)
    assert line["ts"].endswith("+00:00")


async def test_invitation_tokens_never_reach_the_log(
    alice: Host, carol: Host, caplog: pytest.LogCaptureFixture
) -> None:
    prop = await alice.new_property()
    with caplog.at_level(logging.INFO, logger="cloud_api.access"):
        invitation = await alice.invite(prop["id"], carol, "crew")
    lines = [r.getMessage() for r in caplog.records if r.name == "cloud_api.access"]
    assert any(line.startswith("POST /invitations/***/accept 200") for line in lines), lines
    assert invitation["token"] not in "\n".join(lines)


def test_cli_has_serve_ingest_migrate_and_create_user() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--no-ingest"]).no_ingest is True
    assert parser.parse_args(["serve"]).no_ingest is False
    assert parser.parse_args(["ingest", "--metrics-port", "9100"]).metrics_port == 9100
    assert parser.parse_args(["migrate"]).command == "migrate"
    assert parser.parse_args(["create-user", "--email", "a@b.co"]).command == "create-user"


class Captured:
    """A broker link that records what would be published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.session = self  # quacks like a connected MqttSession
        self.is_connected = True
        self.published = asyncio.Event()

    async def publish(self, name: str, payload: bytes, **_: object) -> None:
        """Record a publish."""
        self.sent.append((name, payload))
        self.published.set()


async def test_a_burst_of_changes_is_one_new_version(
    alice: Host, cloud: Cloud, client: httpx.AsyncClient
) -> None:
    site = await new_site(alice)
    link = Captured()
    metrics = Metrics()
    with ThreadPoolExecutor(1) as executor:
        publisher = DesiredPublisher(
            cloud.ctx.db,
            cloud.ctx.keys,
            HORIZON,
            executor,
            link,
            metrics,  # type: ignore[arg-type]
        )
        with cloud.ctx.db.session() as session:
            before = session.get(Gateway, site.gateway_id)
            assert before is not None
            version = before.desired_version
        for _ in range(50):  # fifty notices before the publisher gets to run
            publisher.notify(frozenset({site.gateway_id}))
        task = asyncio.create_task(publisher.run())
        try:
            async with asyncio.timeout(5):
                await link.published.wait()
            await asyncio.sleep(0.1)  # nothing else may follow
        finally:
            task.cancel()
    assert [name for name, _ in link.sent] == [topic(site.gateway_id, Channel.DESIRED)]
    with cloud.ctx.db.session() as session:
        after = session.get(Gateway, site.gateway_id)
        assert after is not None
        assert after.desired_version == version + 1
    lag = metrics.registry.get_sample_value("kasify_desired_publish_lag_seconds_count")
    assert lag == 1


async def test_a_newer_version_signed_elsewhere_is_published_again(
    alice: Host, cloud: Cloud
) -> None:
    site = await new_site(alice)
    with ThreadPoolExecutor(1) as executor:
        ours = DesiredPublisher(cloud.ctx.db, cloud.ctx.keys, HORIZON, executor, Captured())  # type: ignore[arg-type]
        [mine] = ours._build([site.gateway_id])
        # Another process signs a newer version before our publish is recorded.
        with cloud.ctx.db.session() as session:
            gateway = session.get(Gateway, site.gateway_id)
            assert gateway is not None
            gateway.desired_dirty = True
            session.commit()
        [theirs] = ours._build([site.gateway_id])
        newer = ours._mark_published([mine])
    assert newer == [Outgoing(site.gateway_id, theirs.payload, theirs.version)]
    assert theirs.version == mine.version + 1
