"""The CRL the broker reads: rewritten from the database and followed by a broker reload."""

from __future__ import annotations

import logging
import subprocess
import threading

from sqlalchemy import select

from cloud_api.db import Database
from cloud_api.keys import CloudKeys, write_crl
from cloud_api.models import Gateway
from cloud_api.pki import Revoked

log = logging.getLogger(__name__)

RELOAD_TIMEOUT_S = 10.0  # `pkill -HUP` or `systemctl reload` answer in well under a second


class Revocations:
    """Writes DATA_DIR/crl.pem from every revoked gateway certificate and reloads the broker."""

    def __init__(self, db: Database, keys: CloudKeys, reload_argv: list[str] | None) -> None:
        self._db = db
        self._keys = keys
        self._reload_argv = reload_argv
        self._lock = threading.Lock()  # last writer must have read last

    def revoked(self) -> list[Revoked]:
        """Every revoked certificate serial, from the database."""
        with self._db.session() as session:
            rows = session.execute(
                select(Gateway.cert_serial, Gateway.cert_revoked_at).where(
                    Gateway.cert_serial.is_not(None), Gateway.cert_revoked_at.is_not(None)
                )
            ).all()
        return [Revoked(int(serial, 16), at) for serial, at in rows if serial and at]

    def refresh(self) -> None:
        """Re-sign the CRL (it expires) and tell the broker to reload it."""
        with self._lock:
            revoked = self.revoked()
            write_crl(self._keys, revoked)
        log.info("wrote %s listing %d revoked certificates", self._keys.paths.crl, len(revoked))
        self._reload()

    def _reload(self) -> None:
        if not self._reload_argv:
            return
        command = " ".join(self._reload_argv)
        try:
            done = subprocess.run(
                self._reload_argv,
                capture_output=True,
                timeout=RELOAD_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("broker reload command %r failed: %s", command, exc)
            return
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip()[:300]
            log.error(
                "broker reload command %r exited %d: %s; the broker still uses its old CRL "
                "until it reloads (check KASIFY_BROKER_RELOAD_COMMAND)",
                command,
                done.returncode,
                stderr or "no output",
            )
        else:
            log.info("broker reload command %r done", command)
