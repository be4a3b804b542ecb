"""Trust on first use: the controller's self-signed certificate, pinned by its SHA-256 fingerprint.

A UniFi console generates its own certificate, so no CA can vouch for it. `kasify-agent unifi
trust URL` records the certificate's fingerprint once (a person compares it with the console);
from then on every TLS handshake, REST or WebSocket, must present exactly that certificate. The
check runs inside the handshake (a custom `ssl.SSLObject`), before a single byte of HTTP — and so
before the Bearer token — is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from agent.identity import write_file
from agent.locks.unifi.errors import TRUST_COMMAND, ControllerUnreachable, NotConfigured

TRUST_FILE = "unifi.json"
DEFAULT_PORT = 12445  # the Access developer API listens here on every UniFi console
API_PREFIX = "/api/v1/developer"
FETCH_TIMEOUT_S = 10.0  # TCP + TLS handshake to a console on the LAN, generously


class PinMismatch(ssl.SSLCertVerificationError):
    """The peer's certificate is not the pinned one (raised inside the TLS handshake)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"certificate fingerprint {actual} is not the pinned {expected}")
        self.expected = expected
        self.actual = actual


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as colon-separated upper-case hex (as browsers show it)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(value: str) -> str:
    """Accept `AB:CD…`, `abcd…` or `sha256:…`; return the canonical colon form; raise ValueError."""
    text = value.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a SHA-256 fingerprint: {value!r}")
    upper = text.upper()
    return ":".join(upper[i : i + 2] for i in range(0, 64, 2))


def normalize_url(url: str) -> str:
    """`https://host:port` from what a person types (bare host, no port, the full API URL)."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(f"{url!r}: the UniFi Access API is HTTPS only")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host name")
    if parts.path.rstrip("/") not in ("", API_PREFIX):
        raise ValueError(f"{url!r}: give the controller's address, e.g. https://192.168.1.10:12445")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"https://{host}:{parts.port or DEFAULT_PORT}"


def pinned_context(expected: str) -> ssl.SSLContext:
    """A client TLS context that accepts exactly the certificate with this fingerprint."""
    pin = normalize_fingerprint(expected)

    class _Pinned(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            der = self.getpeercert(binary_form=True)
            actual = fingerprint(der) if der else "(no certificate)"
            if actual != pin:
                raise PinMismatch(pin, actual)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Chain and host name cannot be checked for a self-signed console certificate; the exact
    # certificate is checked instead, by _Pinned, before anything is sent.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.sslobject_class = _Pinned
    return context


def find_pin_mismatch(exc: BaseException) -> PinMismatch | None:
    """The PinMismatch somewhere in an exception's causes (httpx and websockets wrap it)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, PinMismatch):
            return item
        todo.extend([item.__cause__, item.__context__, *item.args])
    return None


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """What the controller presented when we asked, for a person to compare."""

    fingerprint: str
    subject: str
    issuer: str
    not_after: str


async def fetch_certificate(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> PeerCertificate:
    """Connect once without a pin and return the certificate (the trust-on-first-use step)."""
    base = normalize_url(url)
    parts = urlsplit(base)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing is sent: we only read the certificate
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(parts.hostname, parts.port, ssl=context)
    except TimeoutError:
        raise ControllerUnreachable(base, f"no TLS handshake within {timeout_s:.0f} s") from None
    except (OSError, ssl.SSLError) as exc:
        raise ControllerUnreachable(base, str(exc) or type(exc).__name__) from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
    if not der:
        raise ControllerUnreachable(base, "the server presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    return PeerCertificate(
        fingerprint=fingerprint(der),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.isoformat(),
    )


@dataclass(frozen=True, slots=True)
class TrustRecord:
    """The controller we trust: its URL and its certificate's fingerprint."""

    url: str
    fingerprint: str
    subject: str = ""
    trusted_at: float = 0.0

    @property
    def api_url(self) -> str:
        """Base URL of the developer API."""
        return self.url + API_PREFIX

    @property
    def websocket_url(self) -> str:
        """The notifications WebSocket."""
        return "wss://" + self.url.removeprefix("https://") + API_PREFIX + "/devices/notifications"

    def context(self) -> ssl.SSLContext:
        """A TLS context pinned to this record's certificate."""
        return pinned_context(self.fingerprint)

    def save(self, state_dir: Path) -> Path:
        """Write `state_dir/unifi.json` atomically."""
        path = state_dir / TRUST_FILE
        write_file(path, json.dumps(asdict(self), indent=2).encode(), secret=True)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> TrustRecord | None:
        """The stored record, or None when nothing was trusted yet (or the file is unreadable)."""
        try:
            data = json.loads((state_dir / TRUST_FILE).read_text())
            return cls(
                url=normalize_url(str(data["url"])),
                fingerprint=normalize_fingerprint(str(data["fingerprint"])),
                subject=str(data.get("subject", "")),
                trusted_at=float(data.get("trusted_at", 0.0)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def of(cls, url: str, cert: PeerCertificate) -> TrustRecord:
        """A new record for a certificate a person just accepted."""
        return cls(normalize_url(url), cert.fingerprint, cert.subject, time.time())


def trusted_controller(state_dir: Path, configured_url: str | None) -> TrustRecord:
    """The trust record to use; NotConfigured names the command when there is none that fits."""
    record = TrustRecord.load(state_dir)
    try:
        wanted = normalize_url(configured_url) if configured_url else None
    except ValueError as exc:
        raise NotConfigured(f"[unifi] url: {exc}") from None
    if record is None:
        target = wanted or "https://<controller>:12445"
        raise NotConfigured(
            f"the UniFi Access controller is not trusted yet: run `{TRUST_COMMAND} {target}`"
        )
    if wanted is not None and wanted != record.url:
        raise NotConfigured(
            f"[unifi] url is {wanted} but the trusted controller is {record.url}: "
            f"run `{TRUST_COMMAND} {wanted}`"
        )
    return record
