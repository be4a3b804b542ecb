"""Smart locks of a property with live status, and remote actions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from cloud_api.deps import BriefUser, CtxDep, CurrentUser, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, described
from cloud_api.models import CommandState
from cloud_api.presenters import command_public, smartlock_public
from cloud_api.schemas.commands import CommandPublic, LockActionCreate
from cloud_api.schemas.gateways import SmartLockCreate, SmartLockPublic, SmartLocksList
from cloud_api.services import commands as command_service
from cloud_api.services import smartlocks as service
from cloud_api.services.lock_actions import run_lock_action

router = APIRouter(tags=["SmartLocks"], responses=ERROR_RESPONSES)
DEFAULT_WAIT_S = 5.0  # a Nuki action over BLE takes 2-4 s; UniFi and the relay well under 1 s
MAX_WAIT_S = 20.0


@router.get("/properties/{property_id}/smartlocks", response_model=SmartLocksList)
def list_smartlocks(property_id: str, user: CurrentUser, session: SessionDep) -> SmartLocksList:
    """A property's smart locks with live status (lock state, battery, door, offline, last seen)."""
    locks = service.list_smartlocks(session, user, property_id)
    return SmartLocksList(smartlocks=[smartlock_public(lock) for lock in locks])


@router.post(
    "/properties/{property_id}/smartlocks",
    status_code=status.HTTP_201_CREATED,
    response_model=SmartLockPublic,
    responses={**FORBIDDEN, **described(409, "Lock already on that gateway")},
)
def create_smartlock(
    property_id: str, body: SmartLockCreate, user: CurrentUser, session: SessionDep
) -> SmartLockPublic:
    """Add a smart lock driven by one of the property's gateways."""
    return smartlock_public(service.create_smartlock(session, user, property_id, body))


@router.delete(
    "/properties/{property_id}/smartlocks/{lock_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def delete_smartlock(
    property_id: str, lock_id: str, user: CurrentUser, session: SessionDep
) -> Response:
    """Remove a smart lock from the property; its gateway stops driving it."""
    service.delete_smartlock(session, user, property_id, lock_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/smartlocks/{lock_id}/actions",
    response_model=CommandPublic,
    responses={
        202: {"model": CommandPublic, "description": "Sent; no answer yet: poll the command"},
        **FORBIDDEN,
        **described(409, "The lock's gateway is offline or not enrolled"),
        **described(503, "The cloud is not connected to the broker"),
    },
)
async def lock_action(
    lock_id: str,
    body: LockActionCreate,
    user: BriefUser,
    ctx: CtxDep,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the gateway's answer")
    ] = DEFAULT_WAIT_S,
) -> JSONResponse:
    """Unlock, lock or unlatch remotely: a signed command goes to the lock's gateway. The answer
    is the command with the gateway's result (200), or still pending after `wait` seconds (202:
    poll GET /smartlocks/{lockId}/actions/{commandId})."""
    command = await run_lock_action(ctx, user, lock_id, body.action, wait)
    code = 202 if command.state is CommandState.PENDING else 200
    return JSONResponse(command_public(command).model_dump(mode="json"), status_code=code)


@router.get("/smartlocks/{lock_id}/actions/{command_id}", response_model=CommandPublic)
def get_lock_action(
    lock_id: str, command_id: str, user: CurrentUser, session: SessionDep
) -> CommandPublic:
    """A remote command and its result (pending, ok, failed, rejected or expired)."""
    return command_public(command_service.get_command(session, user, lock_id, command_id))
