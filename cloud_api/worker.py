"""`kasify-cloud ingest`: an ingest worker on its own, next to (or instead of) the API's ingest."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from cloud_api.db import Database, migrate
from cloud_api.keys import load_keys
from cloud_api.metrics import Metrics
from cloud_api.services.gateways import count_gateways
from cloud_api.settings import Settings, SettingsError
from cloud_api.sync.service import SyncService

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, metrics_port: int | None = None, stop: asyncio.Event | None = None
) -> None:
    """Ingest (and publish what that changes) until SIGTERM/SIGINT or `stop` is set.

    Several workers split the events through the shared subscription; each needs its own stable
    KASIFY_MQTT_CLIENT_ID so the broker keeps its share while it restarts.
    """
    if not settings.mqtt_enabled:
        raise SettingsError("KASIFY_MQTT_ENABLED is false: an ingest worker needs the broker")
    keys = load_keys(settings.data_dir)
    db = Database(settings.db_url)
    await asyncio.to_thread(migrate, db.engine)
    metrics = Metrics()
    metrics.watch_gateways(lambda: count_gateways(db))
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
        log.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
    service = SyncService(settings, db, keys, metrics, ingest=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    log.info("ingest worker %s running", settings.client_id)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await service.stop()
        db.dispose()
        log.info("ingest worker %s stopped", settings.client_id)
