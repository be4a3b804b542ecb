"""Properties."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response, status

from cloud_api.deps import CtxDep, CurrentUser, PageDep, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN
from cloud_api.presenters import property_public
from cloud_api.schemas.properties import (
    PropertiesPage,
    PropertyCreate,
    PropertyPublic,
    PropertyUpdate,
)
from cloud_api.services import properties as service

router = APIRouter(tags=["Properties"], responses=ERROR_RESPONSES)


@router.get("/properties", response_model=PropertiesPage)
def list_properties(user: CurrentUser, session: SessionDep, paging: PageDep) -> PropertiesPage:
    """Properties the caller is a member of, by name."""
    rows, total = service.list_properties(session, user, paging.page, paging.size)
    return PropertiesPage(
        properties=[property_public(p, role) for p, role in rows],
        page=paging.page,
        size=paging.size,
        total=total,
    )


@router.post("/properties", status_code=status.HTTP_201_CREATED, response_model=PropertyPublic)
def create_property(body: PropertyCreate, user: CurrentUser, session: SessionDep) -> PropertyPublic:
    """Create a property; the caller becomes its owner."""
    return property_public(*service.create_property(session, user, body))


@router.get("/properties/{property_id}", response_model=PropertyPublic)
def get_property(property_id: str, user: CurrentUser, session: SessionDep) -> PropertyPublic:
    """A property by id."""
    return property_public(*service.get_property(session, user, property_id))


@router.put("/properties/{property_id}", response_model=PropertyPublic, responses=FORBIDDEN)
def update_property(
    property_id: str, body: PropertyUpdate, user: CurrentUser, session: SessionDep
) -> PropertyPublic:
    """Update a property; omitted fields stay. Guest codes follow time and zone changes."""
    return property_public(*service.update_property(session, user, property_id, body))


@router.delete(
    "/properties/{property_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def delete_property(
    property_id: str,
    user: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    background: BackgroundTasks,
) -> Response:
    """Delete a property (owners only): its gateways are revoked (and disconnected), its codes
    stop working."""
    revoked = service.delete_property(session, user, property_id)
    if revoked:
        ctx.revocations.refresh()
        if ctx.sync is not None:
            background.add_task(ctx.sync.disconnect_gateways, revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
