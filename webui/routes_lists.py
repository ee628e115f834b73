"""Routes of the list pages (contacts, companies, leads, deals) with their filters, saved views and
exports, and the admin's field hiding. Opening a list needs the room's permission (which rows: each
entity's visibility rule, `crm_core.list_views.visible`); exporting needs LISTS_EXPORT as well."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import field_visibility as fv
from webui.views import list_export, lists

_ONE = {"id": "999999"}
_LIST = {"entity": "contacts"}
_SEE = Action.CONTACTS_VIEW  # every signed-in role; the entity's own permission is checked inside
_EXPORT = Action.LISTS_EXPORT

LIST_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/contacts", lists.contacts_page, "contacts", Action.CONTACTS_VIEW),
    RouteSpec("GET", "/contacts/companies", lists.companies_page, "companies", Action.CONTACTS_VIEW),
    RouteSpec("GET", "/leads", lists.leads_page, "leads", Action.DEALS_VIEW),
    RouteSpec("GET", "/deals", lists.deals_page, "deals", Action.DEALS_VIEW),
    RouteSpec("GET", "/api/v1/lists/{entity}", lists.list_api, "api_list", _SEE, sample=_LIST),
    RouteSpec(
        "GET",
        "/api/v1/lists/{entity}/export.csv",
        list_export.export_csv,
        "api_list_csv",
        _EXPORT,
        sample=_LIST,
    ),
    RouteSpec(
        "GET",
        "/api/v1/lists/{entity}/export.xlsx",
        list_export.export_xlsx,
        "api_list_xlsx",
        _EXPORT,
        sample=_LIST,
    ),
    RouteSpec("GET", "/api/v1/views", lists.views_api, "api_views", _SEE),
    RouteSpec("POST", "/api/v1/views", lists.view_create_api, "api_view_create", _SEE),
    RouteSpec("GET", "/api/v1/views/{id}", lists.view_api, "api_view", _SEE, sample=_ONE),
    RouteSpec("PATCH", "/api/v1/views/{id}", lists.view_update_api, "api_view_update", _SEE, sample=_ONE),
    RouteSpec("DELETE", "/api/v1/views/{id}", lists.view_delete_api, "api_view_delete", _SEE, sample=_ONE),
    RouteSpec(
        "POST", "/api/v1/views/{id}/default", lists.view_default_api, "api_view_default", _SEE, sample=_ONE
    ),
    RouteSpec("GET", "/admin/field-visibility", fv.visibility_page, "field_visibility", Action.FIELDS_MANAGE),
    RouteSpec(
        "POST", "/admin/field-visibility", fv.visibility_form, "field_visibility_save", Action.FIELDS_MANAGE
    ),
)
