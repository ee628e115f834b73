"""Routes of lead scoring: the rules and the learned model are for admins (SCORING_MANAGE); a lead's score
for whoever may see the lead (DEALS_VIEW, then `crm_core.leads.may_see_lead`)."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import scoring

_ONE = {"id": "999999"}
_MANAGE = Action.SCORING_MANAGE

SCORING_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/scoring", scoring.scoring_page, "scoring", _MANAGE),
    RouteSpec("POST", "/admin/scoring/rules", scoring.rule_create_form, "scoring_rule_create", _MANAGE),
    RouteSpec(
        "POST",
        "/admin/scoring/rules/{id}",
        scoring.rule_update_form,
        "scoring_rule_update",
        _MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/admin/scoring/rules/{id}/active",
        scoring.rule_active_form,
        "scoring_rule_active",
        _MANAGE,
        sample=_ONE,
    ),
    RouteSpec("POST", "/admin/scoring/retrain", scoring.retrain_form, "scoring_retrain", _MANAGE),
    RouteSpec("POST", "/admin/scoring/model", scoring.model_form, "scoring_model", _MANAGE),
    RouteSpec("GET", "/api/v1/scoring/rules", scoring.rules_api, "api_scoring_rules", _MANAGE),
    RouteSpec("POST", "/api/v1/scoring/rules", scoring.rule_create_api, "api_scoring_rule_create", _MANAGE),
    RouteSpec(
        "PATCH",
        "/api/v1/scoring/rules/{id}",
        scoring.rule_update_api,
        "api_scoring_rule_update",
        _MANAGE,
        sample=_ONE,
    ),
    RouteSpec("GET", "/api/v1/scoring/model", scoring.model_api, "api_scoring_model", _MANAGE),
    RouteSpec(
        "PATCH", "/api/v1/scoring/model", scoring.model_update_api, "api_scoring_model_update", _MANAGE
    ),
    RouteSpec("POST", "/api/v1/scoring/retrain", scoring.retrain_api, "api_scoring_retrain", _MANAGE),
    RouteSpec(
        "GET",
        "/api/v1/leads/{id}/score",
        scoring.lead_score_api,
        "api_lead_score",
        Action.DEALS_VIEW,
        sample=_ONE,
    ),
)
