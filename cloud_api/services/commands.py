"""Remote lock actions: a signed command per request, recorded, and its result read back."""

from __future__ import annotations

from datetime import datetime, timedelta

from nacl.signing import SigningKey
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict, NotFound, ServiceUnavailable
from cloud_api.models import Command, CommandState, User
from cloud_api.services.access import Permission
from cloud_api.services.smartlocks import load_lock
from sync_protocol.codec import MAX_COMMAND_TTL, encode_command
from sync_protocol.ids import uuid7
from sync_protocol.models import Command as WireCommand
from sync_protocol.models import CommandAction

COMMAND_TTL = timedelta(minutes=2)  # the agent refuses it afterwards; a door opened late is worse
assert COMMAND_TTL <= MAX_COMMAND_TTL


def prepare_lock_action(
    session: Session,
    user: User,
    lock_id: str,
    action: str,
    signing_key: SigningKey,
    *,
    connected: bool,
    now: datetime | None = None,
) -> tuple[Command, bytes]:
    """Check the caller may operate the lock and its gateway is there; record and sign a command.

    Returns the command row (pending) and the signed envelope to publish.
    """
    lock = load_lock(session, user, lock_id, Permission.OPERATE)
    gateway = lock.gateway
    if gateway.enrolled_at is None or gateway.deleted_at is not None:
        raise Conflict(f"gateway {gateway.id} of lock {lock_id} is not enrolled; enroll it first")
    if not gateway.online:
        seen = (
            f" (last seen {gateway.last_seen_at:%Y-%m-%d %H:%M} UTC)"
            if gateway.last_seen_at
            else ""
        )
        raise Conflict(
            f"gateway {gateway.id} of lock {lock_id} is offline{seen}; remote actions need it "
            "online: check the property's internet and the gateway's power"
        )
    if not connected:
        raise ServiceUnavailable(
            "the cloud is not connected to the MQTT broker right now; retry in a few seconds"
        )
    now = now or utcnow()
    command = Command(
        id=uuid7(),
        gateway_id=gateway.id,
        property_id=lock.property_id,
        lock_id=lock.id,
        action=action,
        requested_by=user.id,
        issued_at=now,
        expires_at=now + COMMAND_TTL,
        state=CommandState.PENDING,
        detail="",
    )
    wire = WireCommand(
        id=command.id,
        gateway_id=gateway.id,
        action=CommandAction(action),
        lock_id=lock.id,
        issued_at=now,
        expires_at=command.expires_at,
        requested_by=(user.email or user.id)[:200],
    )
    session.add(command)
    session.commit()
    return command, encode_command(wire, signing_key)


def mark_undelivered(session: Session, command_id: str, why: str) -> None:
    """The broker never took the command: it failed without reaching the gateway."""
    command = session.get(Command, command_id)
    if command is not None and command.state is CommandState.PENDING:
        command.state = CommandState.FAILED
        command.reason = "not_delivered"
        command.detail = why[:200]
        command.finished_at = utcnow()
        session.commit()


def read_command(session: Session, command_id: str) -> Command:
    """A command by id (no access check: for the request that just created it)."""
    command = session.get(Command, command_id)
    if command is None:
        raise NotFound(f"command {command_id} not found")
    return _expire(session, command)


def get_command(session: Session, user: User, lock_id: str, command_id: str) -> Command:
    """A command on a lock the caller may see."""
    load_lock(session, user, lock_id, Permission.VIEW)
    command = session.get(Command, command_id)
    if command is None or command.lock_id != lock_id:
        raise NotFound(f"command {command_id} not found on lock {lock_id}")
    return _expire(session, command)


def _expire(session: Session, command: Command) -> Command:
    if command.state is CommandState.PENDING and command.expires_at <= utcnow():
        command.state = CommandState.EXPIRED
        command.detail = "the gateway did not answer before the command expired"
        command.finished_at = command.expires_at
        session.commit()
    return command
