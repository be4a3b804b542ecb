"""One UniFi door as a lock of the agent (`agent.locks.base.LockDriver`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agent.locks.base import (
    ActionOutcome,
    ActionRefused,
    ActionUnsupported,
    CodeState,
    LockAction,
    LockCode,
    LockError,
    LockSnapshot,
    LockTimeout,
    LockUnreachable,
    NotPaired,
)
from agent.locks.unifi.errors import (
    ApiError,
    CertificateRefused,
    ControllerTimeout,
    NotConfigured,
    NotFound,
    RuleUnsupported,
    ScopeMissing,
    TokenRejected,
    UnifiError,
)
from sync_protocol.models import LockKind

if TYPE_CHECKING:
    from agent.locks.unifi.integration import UnifiIntegration


def lock_error(lock_id: str, error: UnifiError) -> LockError:
    """The agent's error for a UniFi error (translated at the driver boundary)."""
    message = str(error)
    if isinstance(error, NotConfigured | TokenRejected | CertificateRefused):
        return NotPaired(lock_id, message)
    if isinstance(error, ScopeMissing):
        return ActionRefused(lock_id, message, code="missing_scope")
    if isinstance(error, RuleUnsupported):
        return ActionUnsupported(
            lock_id, "this door's UniFi hub has no lock rules, so it cannot be locked remotely"
        )
    if isinstance(error, ControllerTimeout):
        return LockTimeout(lock_id, message)
    if error.retryable:
        return LockUnreachable(lock_id, message)
    if isinstance(error, NotFound):
        return ActionRefused(lock_id, message, code="not_found")
    if isinstance(error, ApiError):
        return ActionRefused(lock_id, message, code=error.code)
    return ActionRefused(lock_id, message)


class UnifiDoorDriver:
    """A door of the UniFi Access controller; the integration holds the connection."""

    kind = LockKind.UNIFI
    stores_codes = True  # the controller's readers check PINs themselves

    def __init__(
        self,
        integration: UnifiIntegration,
        lock_id: str,
        door_id: str,
        settings: Mapping[str, object],
    ) -> None:
        self.lock_id = lock_id
        self.door_id = door_id
        self.settings = dict(settings)
        self._integration = integration

    async def start(self) -> None:
        """Nothing of its own: the integration's session already watches every door."""

    async def stop(self) -> None:
        """Nothing of its own to stop."""

    async def perform(self, action: LockAction) -> ActionOutcome:
        """Unlock (also for unlatch: a UniFi unlock is momentary) or lock through a lock rule."""
        if action is LockAction.LOCK:
            return await self._integration.lock_door(self.lock_id, self.door_id, self.settings)
        return await self._integration.unlock_door(self.lock_id, self.door_id)

    def status(self) -> LockSnapshot:
        """Relay and position sensor as last reported by the controller."""
        return self._integration.snapshot(self.door_id)

    @property
    def problem(self) -> str | None:
        """Why the door is unreachable or its codes are not delivered, for a person."""
        return self._integration.problem_for(self.door_id)

    def set_codes(self, codes: Sequence[LockCode]) -> None:
        """The codes this door must accept; reconciled with the controller in the background."""
        self._integration.set_codes(self.lock_id, codes)

    def code_states(self) -> Mapping[str, CodeState]:
        """Delivery state of each code on this door."""
        return self._integration.code_states(self.lock_id)
