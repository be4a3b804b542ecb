"""A remote lock action from start to answer: check and sign (`commands.py`), hand the command to
the broker, and wait a while for the gateway's result. Database work runs in short sessions on
worker threads, so nothing holds SQLite's write lock while the gateway works."""

from __future__ import annotations

import time

from fastapi.concurrency import run_in_threadpool

from cloud_api.context import AppContext
from cloud_api.errors import ServiceUnavailable
from cloud_api.models import Command, CommandState, User
from cloud_api.services import commands as command_service
from sync_protocol.mqtt import MqttError


def _prepare(ctx: AppContext, user: User, lock_id: str, action: str) -> tuple[Command, bytes]:
    with ctx.db.session() as session:
        return command_service.prepare_lock_action(
            session,
            user,
            lock_id,
            action,
            ctx.keys.signing_key,
            connected=ctx.sync is not None and ctx.sync.connected,
        )


def _read(ctx: AppContext, command_id: str) -> Command:
    with ctx.db.session() as session:
        return command_service.read_command(session, command_id)


def _undelivered(ctx: AppContext, command_id: str, why: str) -> None:
    with ctx.db.session() as session:
        command_service.mark_undelivered(session, command_id, why)


async def run_lock_action(
    ctx: AppContext, user: User, lock_id: str, action: str, wait_s: float
) -> Command:
    """Send a signed unlock/lock/unlatch to the lock's gateway; return the command once the
    gateway answered or `wait_s` passed (then still pending). Raises the services' errors: not
    found, not allowed, gateway offline (Conflict), broker unreachable (ServiceUnavailable)."""
    command, payload = await run_in_threadpool(_prepare, ctx, user, lock_id, action)
    sync = ctx.sync
    if sync is None:  # prepare refuses when not connected; a stop in between lands here
        raise ServiceUnavailable("the cloud is not connected to the MQTT broker right now; retry")
    try:
        await sync.send_command(command.gateway_id, command.id, payload)
    except MqttError as exc:
        await run_in_threadpool(_undelivered, ctx, command.id, str(exc))
        raise ServiceUnavailable(
            f"command {command.id} could not be handed to the broker ({exc}); retry"
        ) from None
    ctx.metrics.commands.labels(action).inc()
    deadline = time.monotonic() + wait_s
    while True:
        command = await run_in_threadpool(_read, ctx, command.id)
        left = deadline - time.monotonic()
        if command.state is not CommandState.PENDING or left <= 0:
            return command
        await sync.wait_result(command.id, left)
