"""Routes of the contacts room: the contact page and its form, duplicates and their merge screen, companies,
and the contacts API (the lists: `webui.routes_lists`). Reading needs CONTACTS_VIEW, writing CONTACTS_EDIT;
which contacts a caller sees is decided per contact (`crm_core.profile.visible_contacts`)."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import contact_merge_pages as m
from webui.views import contacts_pages as v

_ONE = {"id": "999999"}
_VIEW = Action.CONTACTS_VIEW
_EDIT = Action.CONTACTS_EDIT

CONTACT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/contacts/new", v.contact_new_page, "contact_new", _EDIT),
    RouteSpec("POST", "/contacts/new", v.contact_create_form, "contact_create", _EDIT),
    RouteSpec("GET", "/contacts/duplicates", v.duplicates_page, "contact_duplicates", _VIEW),
    RouteSpec(
        "POST",
        "/contacts/duplicates/{id}/dismiss",
        v.duplicate_dismiss_form,
        "contact_duplicate_dismiss",
        _EDIT,
        sample=_ONE,
    ),
    RouteSpec("GET", "/contacts/merge", m.merge_page, "contact_merge_page", _EDIT),
    RouteSpec("POST", "/contacts/merge", m.merge_form, "contact_merge_form", _EDIT),
    RouteSpec("GET", "/contacts/merges", m.merges_page, "contact_merges", _EDIT),
    RouteSpec("GET", "/contacts/merges/{id}", m.merge_detail_page, "contact_merge", _EDIT, sample=_ONE),
    RouteSpec(
        "POST", "/contacts/merges/{id}/undo", m.merge_undo_form, "contact_merge_undo", _EDIT, sample=_ONE
    ),
    RouteSpec("GET", "/api/v1/contact-merges", m.merges_api, "api_contact_merges", _EDIT),
    RouteSpec(
        "POST",
        "/api/v1/contact-merges/{id}/undo",
        m.merge_undo_api,
        "api_contact_merge_undo",
        _EDIT,
        sample=_ONE,
    ),
    RouteSpec("GET", "/contacts/companies/new", v.company_new_page, "company_new", _EDIT),
    RouteSpec("POST", "/contacts/companies/new", v.company_create_form, "company_create", _EDIT),
    RouteSpec("GET", "/contacts/companies/{id}", v.company_page, "company", _VIEW, sample=_ONE),
    RouteSpec("POST", "/contacts/companies/{id}", v.company_save_form, "company_save", _EDIT, sample=_ONE),
    RouteSpec("GET", "/contacts/{id}", v.contact_page, "contact", _VIEW, sample=_ONE),
    RouteSpec("POST", "/contacts/{id}", v.contact_save_form, "contact_save", _EDIT, sample=_ONE),
    RouteSpec("GET", "/api/v1/contacts", v.contacts_api, "api_contacts", _VIEW),
    RouteSpec("POST", "/api/v1/contacts", v.contact_create_api, "api_contact_create", _EDIT),
    RouteSpec(
        "GET", "/api/v1/contacts/{id}/profile", v.contact_get_api, "api_contact_profile", _VIEW, sample=_ONE
    ),
    RouteSpec(
        "POST",
        "/api/v1/contacts/{id}/profile",
        v.contact_profile_update_api,
        "api_contact_profile_update",
        _EDIT,
        sample=_ONE,
    ),
)
