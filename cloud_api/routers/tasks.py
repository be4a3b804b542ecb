"""Tasks and their crew codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from cloud_api.deps import CurrentUser, PageDep, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, described
from cloud_api.models import Task, TaskStatus, User
from cloud_api.presenters import task_public
from cloud_api.schemas.tasks import TaskCreate, TaskPublic, TasksPage, TaskUpdate
from cloud_api.services import tasks as service
from cloud_api.services.code_views import code_extras

router = APIRouter(tags=["Tasks"], responses=ERROR_RESPONSES)

MineFilter = Annotated[bool, Query(description="Only tasks assigned to the caller")]
WRONG_STATE = described(409, "The task is not in a state that allows this")


def present(session: Session, user: User, tasks: list[Task]) -> list[TaskPublic]:
    """Tasks with their crew codes."""
    codes = service.task_codes(session, tasks)
    extras = code_extras(session, list(codes.values()), user)
    return [task_public(t, codes.get(t.id), extras) for t in tasks]


def _page(
    session: Session, user: User, rows: list[Task], total: int, page: int, size: int
) -> TasksPage:
    return TasksPage(tasks=present(session, user, rows), page=page, size=size, total=total)


@router.get("/tasks", response_model=TasksPage)
def list_tasks(
    user: CurrentUser,
    session: SessionDep,
    paging: PageDep,
    task_status: Annotated[
        TaskStatus | None, Query(alias="status", description="Only tasks in this status")
    ] = None,
    mine: MineFilter = False,
) -> TasksPage:
    """Tasks the caller may see, soonest first (contractors: those assigned to them)."""
    rows, total = service.list_tasks(
        session, user, paging.page, paging.size, status=task_status, mine=mine
    )
    return _page(session, user, rows, total, paging.page, paging.size)


@router.post(
    "/tasks", status_code=status.HTTP_201_CREATED, response_model=TaskPublic, responses=FORBIDDEN
)
def create_task(body: TaskCreate, user: CurrentUser, session: SessionDep) -> TaskPublic:
    """Create a task; it gets a crew code for its window unless `needsAccess` is false."""
    return present(session, user, [service.create_task(session, user, body)])[0]


@router.get("/properties/{property_id}/tasks", response_model=TasksPage)
def list_property_tasks(
    property_id: str,
    user: CurrentUser,
    session: SessionDep,
    paging: PageDep,
    task_status: Annotated[
        TaskStatus | None, Query(alias="status", description="Only tasks in this status")
    ] = None,
    mine: MineFilter = False,
) -> TasksPage:
    """A property's tasks, soonest first (contractors: those assigned to them)."""
    rows, total = service.list_tasks(
        session,
        user,
        paging.page,
        paging.size,
        property_id=property_id,
        status=task_status,
        mine=mine,
    )
    return _page(session, user, rows, total, paging.page, paging.size)


@router.get("/tasks/{task_id}", response_model=TaskPublic)
def get_task(task_id: str, user: CurrentUser, session: SessionDep) -> TaskPublic:
    """A task by id."""
    return present(session, user, [service.get_task(session, user, task_id)])[0]


@router.patch("/tasks/{task_id}", response_model=TaskPublic, responses={**FORBIDDEN, **WRONG_STATE})
def update_task(
    task_id: str, body: TaskUpdate, user: CurrentUser, session: SessionDep
) -> TaskPublic:
    """Change a task: its crew code moves with the window and gets a new PIN for a new assignee."""
    return present(session, user, [service.update_task(session, user, task_id, body)])[0]


@router.delete(
    "/tasks/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def delete_task(task_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a task; its crew code is revoked."""
    service.delete_task(session, user, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tasks/{task_id}/start", response_model=TaskPublic, responses={**FORBIDDEN, **WRONG_STATE}
)
def start_task(task_id: str, user: CurrentUser, session: SessionDep) -> TaskPublic:
    """Start a pending task (its assignee, or staff of the property)."""
    return present(session, user, [service.start_task(session, user, task_id)])[0]


@router.post(
    "/tasks/{task_id}/complete", response_model=TaskPublic, responses={**FORBIDDEN, **WRONG_STATE}
)
def complete_task(task_id: str, user: CurrentUser, session: SessionDep) -> TaskPublic:
    """Complete a task; its crew code stops working at once."""
    return present(session, user, [service.complete_task(session, user, task_id)])[0]
