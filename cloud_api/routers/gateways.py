"""Gateways, their enrollment, and smart locks."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, Response, status

from cloud_api.db import utcnow
from cloud_api.deps import CtxDep, CurrentUser, SessionDep
from cloud_api.errors import (
    ERROR_RESPONSES,
    FORBIDDEN,
    ErrorPublic,
    ValidationErrorPublic,
)
from cloud_api.keys import verify_key_b64
from cloud_api.presenters import gateway_fields, gateway_public
from cloud_api.schemas.gateways import (
    BrokerAddress,
    EnrollRequest,
    EnrollResponse,
    GatewayCreate,
    GatewayCreated,
    GatewayPublic,
    GatewaysList,
)
from cloud_api.services import gateways as service

router = APIRouter(tags=["Gateways"], responses=ERROR_RESPONSES)


@router.get("/properties/{property_id}/gateways", response_model=GatewaysList)
def list_gateways(property_id: str, user: CurrentUser, session: SessionDep) -> GatewaysList:
    """A property's gateways."""
    now = utcnow()
    gateways = service.list_gateways(session, user, property_id)
    return GatewaysList(gateways=[gateway_public(g, now) for g in gateways])


@router.post(
    "/properties/{property_id}/gateways",
    status_code=status.HTTP_201_CREATED,
    response_model=GatewayCreated,
    responses=FORBIDDEN,
)
def create_gateway(
    property_id: str, body: GatewayCreate, user: CurrentUser, session: SessionDep, ctx: CtxDep
) -> GatewayCreated:
    """Create a gateway; the response holds its one-time enrollment token and command."""
    ttl = timedelta(hours=ctx.settings.enrollment_token_ttl_hours)
    gateway, token = service.create_gateway(session, user, property_id, body, ttl)
    command = service.enroll_command(ctx.settings.public_url, token)
    return GatewayCreated.model_validate(
        {**gateway_fields(gateway, utcnow()), "enrollment_token": token, "enroll_command": command}
    )


@router.get("/gateways/{gateway_id}", response_model=GatewayPublic)
def get_gateway(gateway_id: str, user: CurrentUser, session: SessionDep) -> GatewayPublic:
    """A gateway by id."""
    return gateway_public(service.get_gateway(session, user, gateway_id), utcnow())


@router.delete(
    "/gateways/{gateway_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def delete_gateway(
    gateway_id: str,
    user: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    background: BackgroundTasks,
) -> Response:
    """Delete a gateway and its locks; its certificate goes on the CRL, the broker reloads, and
    a live connection of the gateway is closed."""
    if service.delete_gateway(session, user, gateway_id):
        ctx.revocations.refresh()
        if ctx.sync is not None:
            background.add_task(ctx.sync.disconnect_gateways, [gateway_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/gateways/enroll",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollResponse,
    responses={
        401: {"model": ErrorPublic, "description": "Unknown, used or expired enrollment token"},
        422: {"model": ValidationErrorPublic, "description": "Bad CSR or seal key"},
    },
)
def enroll(body: EnrollRequest, session: SessionDep, ctx: CtxDep) -> EnrollResponse:
    """Enroll an agent with its one-time token (no bearer auth): sign its CSR, pin our keys."""
    done = service.enroll(session, ctx.keys.ca, body)
    host, port = ctx.settings.advertised_broker
    return EnrollResponse(
        gateway_id=done.gateway.id,
        property_id=done.gateway.property_id,
        certificate=done.certificate_pem,
        ca_certificate=ctx.keys.ca_pem,
        broker=BrokerAddress(host=host, port=port),
        verify_keys=[verify_key_b64(ctx.keys.signing_key)],
    )
