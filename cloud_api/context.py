"""What the running app holds: settings, database, keys, revocations and the sync service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloud_api.db import Database
from cloud_api.keys import CloudKeys
from cloud_api.metrics import Metrics
from cloud_api.services.login_throttle import LoginThrottle
from cloud_api.services.revocation import Revocations
from cloud_api.settings import Settings

if TYPE_CHECKING:
    from cloud_api.sync.service import SyncService


@dataclass
class AppContext:
    """Shared state of one app instance (on `app.state.ctx`)."""

    settings: Settings
    db: Database
    keys: CloudKeys
    revocations: Revocations
    metrics: Metrics = field(default_factory=Metrics)
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    sync: SyncService | None = field(default=None)
