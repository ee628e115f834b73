"""Routes of presence (every person who answers customers) and of the routing desk (supervisors, admins)."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import routing

_ONE = {"id": "999999"}

ROUTING_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/routing", routing.routing_page, "routing", Action.ROUTING_MANAGE),
    RouteSpec("GET", "/api/v1/me/presence", routing.my_presence_api, "api_my_presence", Action.INBOX_VIEW),
    RouteSpec(
        "POST", "/api/v1/me/presence", routing.my_presence_api, "api_my_presence_set", Action.INBOX_VIEW
    ),
    RouteSpec("POST", "/api/v1/me/heartbeat", routing.heartbeat_api, "api_my_heartbeat", Action.INBOX_VIEW),
    RouteSpec(
        "GET", "/api/v1/routing/agents", routing.agents_api, "api_routing_agents", Action.ROUTING_MANAGE
    ),
    RouteSpec(
        "POST",
        "/api/v1/routing/agents/{id}",
        routing.agent_update_api,
        "api_routing_agent",
        Action.ROUTING_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/routing/agents/{id}/skills",
        routing.agent_skills_api,
        "api_routing_agent_skills",
        Action.ROUTING_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "GET",
        "/api/v1/routing/decisions",
        routing.decisions_api,
        "api_routing_decisions",
        Action.ROUTING_MANAGE,
    ),
    RouteSpec("GET", "/api/v1/routing/rules", routing.rules_api, "api_routing_rules", Action.ROUTING_MANAGE),
    RouteSpec(
        "POST", "/api/v1/routing/rules", routing.rule_save_api, "api_routing_rule_save", Action.ROUTING_RULES
    ),
    RouteSpec(
        "POST",
        "/api/v1/routing/rules/delete",
        routing.rule_delete_api,
        "api_routing_rule_delete",
        Action.ROUTING_RULES,
    ),
    RouteSpec(
        "POST", "/api/v1/routing/hours", routing.hours_save_api, "api_routing_hours", Action.ROUTING_RULES
    ),
    RouteSpec(
        "POST", "/api/v1/routing/dry-run", routing.dry_run_api, "api_routing_dry_run", Action.ROUTING_MANAGE
    ),
)
