"""Routes of the custom-fields admin: the page and its forms, and the JSON API. Defining fields needs
FIELDS_MANAGE (admins); reading the definitions is for everyone signed in, since every form, the API and
the import need them."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import custom_fields_admin as v

_ONE = {"id": "999999"}
_MANAGE = Action.FIELDS_MANAGE

CUSTOM_FIELD_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/custom-fields", v.custom_fields_page, "custom_fields", _MANAGE),
    RouteSpec("POST", "/admin/custom-fields", v.custom_field_create_form, "custom_field_create", _MANAGE),
    RouteSpec(
        "POST",
        "/admin/custom-fields/{id}",
        v.custom_field_update_form,
        "custom_field_update",
        _MANAGE,
        sample=_ONE,
    ),
    RouteSpec("GET", "/api/v1/custom-fields", v.custom_fields_api, "api_custom_fields", Action.PROFILE_EDIT),
    RouteSpec("POST", "/api/v1/custom-fields", v.custom_field_create_api, "api_custom_field_create", _MANAGE),
    RouteSpec(
        "PATCH",
        "/api/v1/custom-fields/{id}",
        v.custom_field_update_api,
        "api_custom_field_update",
        _MANAGE,
        sample=_ONE,
    ),
)
