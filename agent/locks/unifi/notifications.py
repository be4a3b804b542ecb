"""The controller's notifications WebSocket: pinned TLS, Bearer token, heartbeat watchdog."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.locks.unifi.client import NOTIFICATIONS
from agent.locks.unifi.errors import (
    CertificateRefused,
    ControllerTimeout,
    ControllerUnreachable,
    ScopeMissing,
    TokenRejected,
)
from agent.locks.unifi.messages import Notification, parse_message
from agent.locks.unifi.trust import find_pin_mismatch

HEARTBEAT_TIMEOUT_S: Final = 15.0  # "Hello" comes about every 5 s: three missed = a dead link
OPEN_TIMEOUT_S: Final = 10.0  # TCP + TLS + upgrade on the LAN
CLOSE_TIMEOUT_S: Final = 2.0  # do not wait long for a close handshake of a link we gave up on
MAX_MESSAGE_BYTES: Final = 1 << 20


class HeartbeatLost(ControllerUnreachable):
    """The controller stayed silent longer than the heartbeat allows."""


async def open_notifications(
    url: str, token: str, context: ssl.SSLContext, *, open_timeout_s: float = OPEN_TIMEOUT_S
) -> ClientConnection:
    """Open the WebSocket; errors become the client's error tree."""
    try:
        return await connect(
            url,
            ssl=context,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=open_timeout_s,
            close_timeout=CLOSE_TIMEOUT_S,
            ping_interval=None,  # the controller's own heartbeat is what we watch
            max_size=MAX_MESSAGE_BYTES,
            proxy=None,
            compression=None,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            raise TokenRejected(
                str(NOTIFICATIONS), status, None, "WebSocket upgrade refused"
            ) from None
        if status == 403:
            raise ScopeMissing(
                str(NOTIFICATIONS), status, None, "WebSocket upgrade refused", NOTIFICATIONS.scope
            ) from None
        raise ControllerUnreachable(url, f"WebSocket upgrade refused with HTTP {status}") from None
    except TimeoutError:
        raise ControllerTimeout(url, "WebSocket did not open in time") from None
    except (OSError, InvalidHandshake, ssl.SSLError) as exc:
        mismatch = find_pin_mismatch(exc)
        if mismatch is not None:
            raise CertificateRefused(url, mismatch.expected, mismatch.actual) from None
        raise ControllerUnreachable(url, f"WebSocket: {exc or type(exc).__name__}") from None


async def listen(
    connection: ClientConnection,
    on_notification: Callable[[Notification], Awaitable[None]],
    *,
    heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
    url: str = "",
) -> None:
    """Hand every notification on until the link ends; raise HeartbeatLost when it goes silent."""
    while True:
        try:
            async with asyncio.timeout(heartbeat_timeout_s):
                message = await connection.recv()
        except TimeoutError:
            raise HeartbeatLost(
                url, f"no heartbeat for {heartbeat_timeout_s:.0f} s on the notifications link"
            ) from None
        except ConnectionClosed as exc:
            raise ControllerUnreachable(url, f"notifications link closed ({exc})") from None
        parsed = parse_message(message)
        if isinstance(parsed, Notification):
            await on_notification(parsed)
