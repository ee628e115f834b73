"""Routes of "My tasks": the page with its forms and the JSON API. Everything here needs TASKS_VIEW; which
tasks a caller may change is decided per task by `crm_core.tasks.may_act`."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import tasks

_ONE = {"id": "999999"}
_TASKS = Action.TASKS_VIEW

TASK_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/tasks", tasks.tasks_page, "tasks", _TASKS),
    RouteSpec("POST", "/tasks", tasks.task_create_form, "task_create", _TASKS),
    RouteSpec("POST", "/tasks/{id}/done", tasks.task_done_form, "task_done", _TASKS, sample=_ONE),
    RouteSpec("POST", "/tasks/{id}/cancel", tasks.task_cancel_form, "task_cancel", _TASKS, sample=_ONE),
    RouteSpec("POST", "/tasks/{id}/take", tasks.task_take_form, "task_take", _TASKS, sample=_ONE),
    RouteSpec("POST", "/tasks/{id}/reopen", tasks.task_reopen_form, "task_reopen", _TASKS, sample=_ONE),
    RouteSpec("GET", "/api/v1/tasks", tasks.tasks_api, "api_tasks", _TASKS),
    RouteSpec("POST", "/api/v1/tasks", tasks.task_create_api, "api_task_create", _TASKS),
    RouteSpec("POST", "/api/v1/tasks/{id}/done", tasks.task_done_api, "api_task_done", _TASKS, sample=_ONE),
    RouteSpec(
        "POST", "/api/v1/tasks/{id}/cancel", tasks.task_cancel_api, "api_task_cancel", _TASKS, sample=_ONE
    ),
    RouteSpec("POST", "/api/v1/tasks/{id}/take", tasks.task_take_api, "api_task_take", _TASKS, sample=_ONE),
    RouteSpec(
        "POST", "/api/v1/tasks/{id}/reopen", tasks.task_reopen_api, "api_task_reopen", _TASKS, sample=_ONE
    ),
)
