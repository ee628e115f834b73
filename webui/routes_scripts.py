"""Routes of sales-script authoring and analytics: admins and supervisors (SCRIPTS_VIEW). The inbox's
running side panel has its own routes (`routes_script_runs`)."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import scripts_analytics as a
from webui.views import scripts_api as api
from webui.views import scripts_editor as e

_ONE = {"id": "999999"}
_VIEW = Action.SCRIPTS_VIEW
_PAGE = "/scripts/versions/{id}"
_API = "/api/v1/scripts/versions/{id}"

SCRIPT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/scripts", e.scripts_page, "scripts", _VIEW),
    RouteSpec("POST", "/scripts", e.script_create_form, "script_create", _VIEW),
    RouteSpec("POST", "/scripts/import", e.script_import_form, "script_import", _VIEW),
    RouteSpec("GET", _PAGE, e.version_page, "script_version", _VIEW, sample=_ONE),
    RouteSpec("POST", _PAGE, e.version_save_form, "script_version_save", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_PAGE}/yaml", e.version_yaml_form, "script_version_yaml", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_PAGE}/publish", e.version_publish_form, "script_publish", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_PAGE}/archive", e.version_archive_form, "script_archive", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_PAGE}/new-draft", e.version_new_draft_form, "script_new_draft", _VIEW, sample=_ONE),
    RouteSpec("GET", f"{_PAGE}/analytics", a.analytics_page, "script_analytics", _VIEW, sample=_ONE),
    # REST API
    RouteSpec("GET", "/api/v1/scripts", api.scripts_api, "api_scripts", _VIEW),
    RouteSpec("POST", "/api/v1/scripts", api.script_create_api, "api_script_create", _VIEW),
    RouteSpec("POST", "/api/v1/scripts/import", api.import_api, "api_script_import", _VIEW),
    RouteSpec("GET", _API, api.version_api, "api_script_version", _VIEW, sample=_ONE),
    RouteSpec("PUT", _API, api.version_save_api, "api_script_version_save", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_API}/check", api.version_check_api, "api_script_check", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_API}/publish", api.version_publish_api, "api_script_publish", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_API}/archive", api.version_archive_api, "api_script_archive", _VIEW, sample=_ONE),
    RouteSpec("POST", f"{_API}/drafts", api.version_new_draft_api, "api_script_draft", _VIEW, sample=_ONE),
    RouteSpec("GET", f"{_API}/yaml", api.version_yaml, "api_script_yaml", _VIEW, sample=_ONE),
    RouteSpec("PUT", f"{_API}/yaml", api.version_yaml_put_api, "api_script_yaml_put", _VIEW, sample=_ONE),
    RouteSpec("GET", f"{_API}/funnel", a.funnel_api, "api_script_funnel", _VIEW, sample=_ONE),
)
