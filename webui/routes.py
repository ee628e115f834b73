"""Every route of the hub and the permission it needs. The permission tests are generated from ROUTES, so
a route added without a rule cannot slip through."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from switchboard.permissions import Action
from webui import keys, metrics
from webui.routes_calls import CALL_ROUTES
from webui.routes_channels import CHANNEL_ROUTES
from webui.routes_contacts import CONTACT_ROUTES
from webui.routes_custom_fields import CUSTOM_FIELD_ROUTES
from webui.routes_imports import IMPORT_ROUTES
from webui.routes_inbox import INBOX_ROUTES
from webui.routes_inbox_tools import INBOX_TOOLS_ROUTES
from webui.routes_leads import LEAD_ROUTES
from webui.routes_lists import LIST_ROUTES
from webui.routes_routing import ROUTING_ROUTES
from webui.routes_scoring import SCORING_ROUTES
from webui.routes_script_runs import SCRIPT_RUN_ROUTES
from webui.routes_scripts import SCRIPT_ROUTES
from webui.routes_search import SEARCH_ROUTES
from webui.routes_spec import PUBLIC, RouteSpec
from webui.routes_tasks import TASK_ROUTES
from webui.routes_webhooks import WEBHOOK_ROUTES
from webui.routes_widget import WIDGET_ROUTES
from webui.views import admin, api, auth, home, profile, system

STATIC_DIR = Path(__file__).parent / "static"

CORE_ROUTES: tuple[RouteSpec, ...] = (
    # public
    RouteSpec("GET", "/login", auth.login_page, "login_page", PUBLIC),
    RouteSpec("POST", "/login", auth.login, "login", PUBLIC),
    RouteSpec("POST", "/language", auth.set_language, "set_language", PUBLIC),
    RouteSpec("GET", "/healthz", system.healthz, "healthz", PUBLIC, uses_session=False),
    RouteSpec("GET", "/metrics", metrics.metrics_view, "metrics", PUBLIC, uses_session=False),
    # every signed-in user
    RouteSpec("GET", "/", home.home, "home", Action.HOME_VIEW),
    RouteSpec("POST", "/logout", auth.logout, "logout", Action.PROFILE_EDIT),
    RouteSpec("GET", "/profile", profile.profile, "profile", Action.PROFILE_EDIT),
    RouteSpec("POST", "/profile/tokens", profile.token_create, "token_create", Action.PROFILE_EDIT),
    RouteSpec(
        "POST",
        "/profile/tokens/{id}/revoke",
        profile.token_revoke,
        "token_revoke",
        Action.PROFILE_EDIT,
        sample={"id": "999999"},
    ),
    # rooms
    RouteSpec("GET", "/campaigns", home.room, "campaigns", Action.CAMPAIGNS_MANAGE),
    RouteSpec("GET", "/reports", home.room, "reports", Action.REPORTS_VIEW),
    # administration
    RouteSpec("GET", "/admin/users", admin.users_list, "users", Action.USERS_MANAGE),
    RouteSpec("POST", "/admin/users", admin.user_create, "user_create", Action.USERS_MANAGE),
    RouteSpec(
        "GET",
        "/admin/users/{id}",
        admin.user_detail_view,
        "user_detail",
        Action.USERS_MANAGE,
        sample={"id": "999999"},
    ),
    RouteSpec(
        "POST",
        "/admin/users/{id}",
        admin.user_update,
        "user_update",
        Action.USERS_MANAGE,
        sample={"id": "999999"},
    ),
    RouteSpec("GET", "/admin/jobs", admin.jobs_page, "jobs", Action.JOBS_MANAGE),
    RouteSpec(
        "POST",
        "/admin/jobs/{id}/retry",
        admin.job_retry,
        "job_retry",
        Action.JOBS_MANAGE,
        sample={"id": "999999"},
    ),
    RouteSpec(
        "POST",
        "/admin/jobs/{id}/discard",
        admin.job_discard,
        "job_discard",
        Action.JOBS_MANAGE,
        sample={"id": "999999"},
    ),
    RouteSpec("GET", "/admin/audit", admin.audit_page, "audit", Action.AUDIT_VIEW),
    # REST API
    RouteSpec("GET", "/api/v1/me", api.me, "api_me", Action.PROFILE_EDIT),
    RouteSpec("GET", "/api/v1/jobs", api.jobs_list, "api_jobs", Action.JOBS_MANAGE),
    RouteSpec(
        "POST",
        "/api/v1/jobs/{id}/retry",
        api.job_retry,
        "api_job_retry",
        Action.JOBS_MANAGE,
        sample={"id": "999999"},
    ),
    RouteSpec("GET", "/api/v1/audit", api.audit_list, "api_audit", Action.AUDIT_VIEW),
)

ROUTES: tuple[RouteSpec, ...] = (
    CORE_ROUTES
    + INBOX_TOOLS_ROUTES
    + INBOX_ROUTES
    + WIDGET_ROUTES
    + CHANNEL_ROUTES
    + WEBHOOK_ROUTES
    + ROUTING_ROUTES
    + TASK_ROUTES
    + LEAD_ROUTES
    + CALL_ROUTES
    + LIST_ROUTES  # before CONTACT_ROUTES: /contacts/companies before /contacts/{id}
    + IMPORT_ROUTES  # before CONTACT_ROUTES: /contacts/import before /contacts/{id}
    + CONTACT_ROUTES
    + SEARCH_ROUTES
    + SCORING_ROUTES
    + CUSTOM_FIELD_ROUTES
    + SCRIPT_RUN_ROUTES
    + SCRIPT_ROUTES
)

STATIC_ROUTE = "static"


def setup_routes(app: web.Application) -> None:
    specs: dict[str, RouteSpec] = {}
    for spec in ROUTES:
        if spec.name in specs:
            raise ValueError(f"duplicate route name {spec.name}")
        specs[spec.name] = spec
        app.router.add_route(spec.method, spec.path, spec.handler, name=spec.name)
    app.router.add_static("/static", STATIC_DIR, name=STATIC_ROUTE, append_version=True)
    # Static assets are public: they hold no data, and the login page needs them.
    specs[STATIC_ROUTE] = RouteSpec(
        "GET", "/static/{filename}", _unused, STATIC_ROUTE, PUBLIC, uses_session=False
    )
    app[keys.ROUTE_SPECS] = specs


async def _unused(request: web.Request) -> web.StreamResponse:  # pragma: no cover - static files bypass it
    raise web.HTTPNotFound()
