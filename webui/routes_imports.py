"""Routes of the import wizard and its API. Importing in bulk is for supervisors (into their own branch
only: `crm_core.import_rows`) and admins — CONTACTS_IMPORT; which imports a caller sees is decided in
`crm_core.imports.may_see`. Listed before the contact routes: `/contacts/import` is not a contact id."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import imports as v

_ONE = {"id": "999999"}
_IMPORT = Action.CONTACTS_IMPORT

IMPORT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/contacts/import", v.import_page, "contact_import", _IMPORT),
    RouteSpec("POST", "/contacts/import", v.import_upload_form, "contact_import_upload", _IMPORT),
    RouteSpec("GET", "/contacts/import/{id}", v.import_detail, "contact_import_detail", _IMPORT, sample=_ONE),
    RouteSpec(
        "POST",
        "/contacts/import/{id}/mapping",
        v.import_mapping_form,
        "contact_import_mapping",
        _IMPORT,
        sample=_ONE,
    ),
    RouteSpec(
        "POST", "/contacts/import/{id}/run", v.import_run_form, "contact_import_run", _IMPORT, sample=_ONE
    ),
    RouteSpec("POST", "/api/v1/imports", v.import_create_api, "api_import_create", _IMPORT),
    RouteSpec("GET", "/api/v1/imports/{id}", v.import_get_api, "api_import", _IMPORT, sample=_ONE),
    RouteSpec(
        "PUT",
        "/api/v1/imports/{id}/mapping",
        v.import_mapping_api,
        "api_import_mapping",
        _IMPORT,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/imports/{id}/dry-run",
        v.import_dry_run_api,
        "api_import_dry_run",
        _IMPORT,
        sample=_ONE,
    ),
    RouteSpec("POST", "/api/v1/imports/{id}/run", v.import_run_api, "api_import_run", _IMPORT, sample=_ONE),
    RouteSpec(
        "GET",
        "/api/v1/imports/{id}/errors.csv",
        v.import_errors_csv,
        "api_import_errors",
        _IMPORT,
        sample=_ONE,
    ),
)
