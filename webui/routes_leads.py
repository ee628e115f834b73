"""Routes of leads, deals and the classifiers admin. Leads and deals need DEALS_VIEW (which ones: the
branch rule of `crm_core.leads.may_see`); reading classifiers is for everyone signed in (every form needs
them), changing them for admins."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import classifiers_admin as cls
from webui.views import leads

_ONE = {"id": "999999"}
_DEALS = Action.DEALS_VIEW
_CLS = Action.CLASSIFIERS_MANAGE

LEAD_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/leads/{id}", leads.lead_page, "lead", _DEALS, sample=_ONE),
    RouteSpec("POST", "/leads/{id}", leads.lead_update_form, "lead_update", _DEALS, sample=_ONE),
    RouteSpec("POST", "/leads/{id}/convert", leads.lead_convert_form, "lead_convert", _DEALS, sample=_ONE),
    RouteSpec("GET", "/deals/{id}", leads.deal_page, "deal", _DEALS, sample=_ONE),
    RouteSpec("POST", "/deals/{id}", leads.deal_update_form, "deal_update", _DEALS, sample=_ONE),
    RouteSpec("POST", "/deals/{id}/win", leads.deal_win_form, "deal_win", _DEALS, sample=_ONE),
    RouteSpec("POST", "/deals/{id}/lose", leads.deal_lose_form, "deal_lose", _DEALS, sample=_ONE),
    RouteSpec("GET", "/api/v1/leads/{id}", leads.lead_api, "api_lead", _DEALS, sample=_ONE),
    RouteSpec("PATCH", "/api/v1/leads/{id}", leads.lead_update_api, "api_lead_update", _DEALS, sample=_ONE),
    RouteSpec(
        "POST", "/api/v1/leads/{id}/convert", leads.lead_convert_api, "api_lead_convert", _DEALS, sample=_ONE
    ),
    RouteSpec("GET", "/api/v1/deals/{id}", leads.deal_api, "api_deal", _DEALS, sample=_ONE),
    RouteSpec("PATCH", "/api/v1/deals/{id}", leads.deal_update_api, "api_deal_update", _DEALS, sample=_ONE),
    RouteSpec("POST", "/api/v1/deals/{id}/win", leads.deal_win_api, "api_deal_win", _DEALS, sample=_ONE),
    RouteSpec("POST", "/api/v1/deals/{id}/lose", leads.deal_lose_api, "api_deal_lose", _DEALS, sample=_ONE),
    RouteSpec("GET", "/admin/classifiers", cls.classifiers_page, "classifiers", _CLS),
    RouteSpec("POST", "/admin/classifiers", cls.classifier_create_form, "classifier_create", _CLS),
    RouteSpec(
        "POST", "/admin/classifiers/{id}", cls.classifier_update_form, "classifier_update", _CLS, sample=_ONE
    ),
    RouteSpec("GET", "/api/v1/classifiers", cls.classifiers_api, "api_classifiers", Action.PROFILE_EDIT),
    RouteSpec("POST", "/api/v1/classifiers", cls.classifier_create_api, "api_classifier_create", _CLS),
    RouteSpec(
        "PATCH",
        "/api/v1/classifiers/{id}",
        cls.classifier_update_api,
        "api_classifier_update",
        _CLS,
        sample=_ONE,
    ),
)
