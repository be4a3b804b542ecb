"""Integrations (Nuki, UniFi) and the devices their gateways can reach."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response, status

from cloud_api.deps import CurrentUser, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, described
from cloud_api.models import IntegrationType
from cloud_api.presenters import integration_public
from cloud_api.schemas.integrations import (
    IntegrationCreate,
    IntegrationPublic,
    IntegrationsResponse,
    IntegrationUpdate,
    NukiSmartlocksResponse,
    UnifilocksResponse,
)
from cloud_api.services import integrations as service

router = APIRouter(tags=["Integrations"], responses=ERROR_RESPONSES)
TypePath = Path(description="Integration type: nuki or unifi")
CLASH = described(409, "The gateway already has an integration of this type")


@router.get("/integrations", response_model=IntegrationsResponse)
def list_integrations(user: CurrentUser, session: SessionDep) -> IntegrationsResponse:
    """Every integration at the properties the caller manages; `type` tells them apart."""
    rows = service.list_integrations(session, user)
    return IntegrationsResponse(integrations=[integration_public(i) for i in rows])


@router.get("/integrations/nuki/{integration_id}/smartlocks", response_model=NukiSmartlocksResponse)
def nuki_smartlocks(
    integration_id: str, user: CurrentUser, session: SessionDep
) -> NukiSmartlocksResponse:
    """Nuki locks the integration's gateway can reach, and the property each is assigned to.
    When the gateway is offline this is its last report, with `nuki_status: unreachable`."""
    return service.nuki_smartlocks(session, user, integration_id)


@router.get("/integrations/unifi/{integration_id}/smartlocks", response_model=UnifilocksResponse)
def unifi_doors(integration_id: str, user: CurrentUser, session: SessionDep) -> UnifilocksResponse:
    """UniFi Access doors the integration's gateway reports, and the property each is assigned
    to."""
    return service.unifi_doors(session, user, integration_id)


@router.get("/integrations/{integration}", response_model=IntegrationsResponse)
def list_integrations_of_type(
    user: CurrentUser, session: SessionDep, integration: IntegrationType = TypePath
) -> IntegrationsResponse:
    """Integrations of one type."""
    rows = service.list_integrations(session, user, integration)
    return IntegrationsResponse(integrations=[integration_public(i) for i in rows])


@router.post(
    "/integrations/{integration}",
    status_code=status.HTTP_201_CREATED,
    response_model=IntegrationPublic,
    responses={**FORBIDDEN, **CLASH},
)
def create_integration(
    body: IntegrationCreate,
    user: CurrentUser,
    session: SessionDep,
    integration: IntegrationType = TypePath,
) -> IntegrationPublic:
    """Create an integration bound to the gateway that reaches its locks on site."""
    return integration_public(service.create_integration(session, user, integration, body))


@router.put(
    "/integrations/{integration}/{integration_id}",
    response_model=IntegrationPublic,
    responses={**FORBIDDEN, **CLASH},
)
def update_integration(
    integration_id: str,
    body: IntegrationUpdate,
    user: CurrentUser,
    session: SessionDep,
    integration: IntegrationType = TypePath,
) -> IntegrationPublic:
    """Rename an integration or move it to another gateway."""
    updated = service.update_integration(session, user, integration, integration_id, body)
    return integration_public(updated)


@router.delete(
    "/integrations/{integration}/{integration_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def delete_integration(
    integration_id: str,
    user: CurrentUser,
    session: SessionDep,
    integration: IntegrationType = TypePath,
) -> Response:
    """Delete an integration (its locks stay on the property until removed)."""
    service.delete_integration(session, user, integration, integration_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
