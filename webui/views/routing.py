"""Presence and the routing desk: an agent sets their own presence (the header) and keeps it alive with
heartbeats; supervisors see every agent's presence and load, change presence and capacity, and ask "who
would get this now?" (a dry run that writes nothing)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from router.hours import WorkingHours
from router.model import AgentView, LoggedDecision, Presence, RoutingRequest, Skills, phone_endpoint
from router.rules import RoutingRule
from switchboard import accounts, audit
from switchboard.audit import AuditAction, Category
from switchboard.errors import N_, DomainError, Invalid, NotFound
from switchboard.permissions import Action, can
from webui import forms, keys
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)

MAX_CAPACITY = 50
DESK_DECISIONS = 30
CHANNEL_CHOICES = (
    "webchat",
    "telegram",
    "viber",
    "whatsapp",
    "sms",
    "messenger",
    "instagram",
    "email",
    "phone",
)


def agent_json(agent: AgentView) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "name": agent.name,
        "presence": agent.presence.value,
        "presence_since": agent.presence_since.isoformat() if agent.presence_since else None,
        "chats": agent.chats,
        "capacity": agent.capacity,
        "on_call": agent.on_call,
        "chats_during_call": agent.chats_during_call,
        "assignments_today": agent.assignments_today,
        "idle_since": agent.idle_since.isoformat() if agent.idle_since else None,
        "load": round(agent.load, 3),
        "skills": agent.skills.to_json(),
        "phone_endpoint": agent.phone_endpoint,
    }


def _presence(data: dict[str, Any]) -> Presence:
    try:
        return Presence(str(data.get("presence", "")))
    except ValueError:
        raise Invalid(N_("Choose online, after-call work, away or offline."), field="presence") from None


async def _one(request: web.Request, agent_id: int) -> AgentView:
    found = await _find(request, agent_id)
    if found is None:
        raise NotFound(N_("No such agent."))
    return found


async def _find(request: web.Request, agent_id: int) -> AgentView | None:
    return await request.app[keys.ROUTER].agent(agent_id)


def _mine(agent: AgentView | None) -> dict[str, Any]:
    """A supervisor or admin who never took part in routing is simply offline."""
    if agent is None:
        return {"presence": Presence.OFFLINE.value, "chats": 0, "capacity": 0}
    return {"presence": agent.presence.value, "chats": agent.chats, "capacity": agent.capacity}


# --- the agent's own presence ------------------------------------------------------------------------------


async def my_presence_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/me/presence`; `POST {"presence": "away"}` sets it."""
    user = current_user(request)
    router = request.app[keys.ROUTER]
    if request.method == "POST":
        await router.set_presence(user.id, _presence(await _json_object(request)))
    return web.json_response(_mine(await _find(request, user.id)))


async def heartbeat_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/me/heartbeat`: the person is at the screen (the router sets idle agents away)."""
    user = current_user(request)
    await request.app[keys.ROUTER].heartbeat(user.id)
    return web.json_response({"presence": _mine(await _find(request, user.id))["presence"]})


# --- the routing desk --------------------------------------------------------------------------------------


async def routing_page(request: web.Request) -> web.StreamResponse:
    async with request.app[keys.SESSIONS]() as db:
        branches = await accounts.list_branches(db)
    router = request.app[keys.ROUTER]
    agents = await router.agents()
    context = {
        "agents": agents,
        "rules": await router.rules(),
        "can_edit_rules": can(current_user(request).role, Action.ROUTING_RULES),
        "sticky_modes": ("owner", "last"),
        "presences": [p.value for p in Presence],
        "branches": branches,
        "branch_names": {b.id: b.name for b in branches},
        "channels": CHANNEL_CHOICES,
        "max_capacity": MAX_CAPACITY,
        "decisions": await router.decisions(limit=DESK_DECISIONS),
        "reply_languages": (("ro", "Română"), ("en", "English"), ("ru", "Русский")),
    }
    return await render("routing.html", request, context)


async def agents_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/routing/agents`: presence and load of every agent, for the desk's live refresh."""
    return web.json_response({"agents": [agent_json(a) for a in await request.app[keys.ROUTER].agents()]})


async def agent_update_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/agents/{id}` with `presence` and / or `capacity` + `chats_during_call`:
    a supervisor's change, audited; `phone_endpoint` (`PJSIP/1001`, blank or null: none) only by an
    admin — it decides whose phone rings for a call."""
    agent_id = forms.path_int(request, "id")
    data = await _json_object(request)
    before = await _one(request, agent_id)
    router = request.app[keys.ROUTER]
    changes: dict[str, list[Any]] = {}
    if "phone_endpoint" in data:  # first: the one change that can still be refused (taken by another)
        endpoint = _endpoint_of(request, agent_id, data)
        try:
            await router.set_endpoint(agent_id, endpoint)
        except DomainError as exc:
            log.info("phone endpoint for agent %s refused: %s", agent_id, exc.message)
            raise
        changes["phone_endpoint"] = [before.phone_endpoint, endpoint]
    if "capacity" in data or "chats_during_call" in data:
        capacity = data.get("capacity", before.capacity)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
            raise Invalid(N_("Capacity is a number from 0 to %(n)s."), field="capacity", n=MAX_CAPACITY)
        during = data.get("chats_during_call", before.chats_during_call)
        if not isinstance(during, bool):
            raise Invalid(N_("Choose yes or no."), field="chats_during_call")
        await router.set_capacity(agent_id, capacity, during)
        changes["capacity"] = [before.capacity, capacity]
        changes["chats_during_call"] = [before.chats_during_call, during]
    if "presence" in data:
        presence = _presence(data)
        await router.set_presence(agent_id, presence)
        changes["presence"] = [before.presence.value, presence.value]
    if not changes:
        raise Invalid(N_("Nothing to change."), field="body")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record(
            db,
            current_user(request).actor(client_ip(request)),
            category=Category.ADMIN,
            module="routing",
            action=AuditAction.UPDATE,
            record_type="agent",
            record_id=agent_id,
            changes=changes,
        )
    return web.json_response({"agent": agent_json(await _one(request, agent_id))})


def _endpoint_of(request: web.Request, agent_id: int, data: dict[str, Any]) -> str | None:
    """The checked `phone_endpoint` of an agent update, before anything changes: only an admin sets it
    (it decides whose phone rings for a call)."""
    user = current_user(request)
    if not can(user.role, Action.ROUTING_RULES):
        log.info("user %s may not set agent %s's phone endpoint", user.id, agent_id)
        raise web.HTTPForbidden(reason="only an admin sets phone endpoints")
    try:
        return phone_endpoint(data["phone_endpoint"])
    except DomainError as exc:
        log.info("phone endpoint for agent %s refused: %s", agent_id, exc.message)
        raise


def decision_json(decision: LoggedDecision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "kind": decision.kind,
        "item_id": decision.item_id,
        "agent_id": decision.agent_id,
        "agent": decision.agent_name,
        "reason": decision.reason,
        "skipped": list(decision.skipped),
        "load_before": decision.load_before,
        "load_after": decision.load_after,
        "capacity": decision.capacity,
        "at": decision.at.isoformat(),
    }


async def decisions_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/routing/decisions?kind=chat&item_id=42&limit=50`: the decision log, newest first — one
    conversation's or call's routing history (who got it, who let it time out, why), or the hub's latest."""
    kind = request.query.get("kind") or None
    if kind not in (None, "chat", "call"):
        raise Invalid(N_("Choose chat or call."), field="kind")
    item_id = request.query.get("item_id") or None
    if item_id is not None and len(item_id) > 120:
        raise Invalid(N_("Choose from the list."), field="item_id")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise Invalid(N_("Enter a whole number."), field="limit") from None
    found = await request.app[keys.ROUTER].decisions(kind=kind, item_id=item_id, limit=limit)
    return web.json_response({"decisions": [decision_json(d) for d in found]})


SKILL_LISTS = ("branches", "languages", "products", "channels")
LANGUAGES = ("ro", "ru", "en")


async def agent_skills_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/agents/{id}/skills {"branches": [1], "languages": ["ro"], "products": [...],
    "channels": [...]}`: what the agent may be given (an empty list: any), audited."""
    agent_id = forms.path_int(request, "id")
    data = await _json_object(request)
    before = await _one(request, agent_id)
    lists: dict[str, list[Any]] = {}
    for name in SKILL_LISTS:
        value = data.get(name) or []
        if not isinstance(value, list) or len(value) > 100:
            raise Invalid(N_("Choose from the list."), field=name)
        lists[name] = value
    skills = Skills.of(**lists)
    if not set(skills.languages) <= set(LANGUAGES):
        raise Invalid(N_("Choose a language."), field="languages")
    if not set(skills.channels) <= set(CHANNEL_CHOICES):
        raise Invalid(N_("Choose a channel."), field="channels")
    async with request.app[keys.SESSIONS]() as db:
        known = {b.id for b in await accounts.list_branches(db)}
    if not set(skills.branches) <= known:
        raise Invalid(N_("Branches must be chosen from the list."), field="branches")
    await request.app[keys.ROUTER].set_skills(agent_id, skills)
    await _audit(
        request, AuditAction.UPDATE, "agent", str(agent_id), {"skills": skills.to_json()},
        before={"skills": before.skills.to_json()},
    )  # fmt: skip
    return web.json_response({"agent": agent_json(await _one(request, agent_id))})


async def dry_run_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/dry-run {"channel", "branch_id", "language", "kind"}`: who would get such an
    item now, and why — nothing is stored or taken."""
    data = await _json_object(request)
    channel = str(data.get("channel") or "webchat")
    if channel not in CHANNEL_CHOICES:
        raise Invalid(N_("Choose a channel."), field="channel")
    kind = "call" if data.get("kind") == "call" else "chat"
    branch = data.get("branch_id")
    if branch is not None and (isinstance(branch, bool) or not isinstance(branch, int)):
        raise Invalid(N_("Choose a branch."), field="branch_id")
    language = data.get("language") or None
    if language is not None and language not in ("ro", "ru", "en"):
        raise Invalid(N_("Choose a language."), field="language")
    request_ = RoutingRequest(
        kind=kind, item_id="dry-run", channel=channel, branch_id=branch, language=language
    )
    decision = await request.app[keys.ROUTER].dry_run(request_)
    chosen = None if decision.agent_id is None else await _find(request, decision.agent_id)
    name = chosen.name if chosen is not None else None
    return web.json_response({"agent_id": decision.agent_id, "agent": name, "reason": decision.reason})


# --- rules and working hours (admins) -------------------------------------------------------------------

RULE_FIELDS = (
    "sticky_mode",
    "sticky_wait_seconds",
    "accept_timeout_seconds",
    "overflow_branch_after_seconds",
    "overflow_any_after_seconds",
    "timeouts_before_away",
)


def rule_json(rule: RoutingRule) -> dict[str, Any]:
    return {
        "branch_id": rule.branch_id,
        "channel": rule.channel,
        **{f: getattr(rule, f) for f in RULE_FIELDS},
    }


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(N_("Enter a whole number."), field=name)
    return value


async def rules_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/routing/rules`: every rule (per branch / channel) and every branch's working hours."""
    router = request.app[keys.ROUTER]
    async with request.app[keys.SESSIONS]() as db:
        branches = await accounts.list_branches(db)
    hours = []
    for branch in branches:
        found = await router.working_hours(branch.id)
        if found is not None:
            hours.append(
                {
                    "branch_id": branch.id,
                    "timezone": found.timezone,
                    "week": found.week_json(),
                    "holidays": found.holidays_json(),
                    "replies": found.replies,
                }
            )
    return web.json_response({"rules": [rule_json(r) for r in await router.rules()], "hours": hours})


async def rule_save_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/rules`: create or replace the rule of a branch / channel (either may be null:
    every branch, every channel); validated by `router.rules.RoutingRule`, audited."""
    data = await _json_object(request)
    values: dict[str, Any] = {
        "branch_id": _optional_int(data, "branch_id"),
        "channel": (str(data["channel"]) if data.get("channel") else None),
    }
    defaults = RoutingRule()
    for name in RULE_FIELDS:
        if name == "sticky_mode":
            values[name] = str(data.get(name) or defaults.sticky_mode)
        elif name.startswith("overflow"):
            values[name] = _optional_int(data, name)
        else:
            given = _optional_int(data, name)
            values[name] = getattr(defaults, name) if given is None else given
    rule = await request.app[keys.ROUTER].save_rule(RoutingRule(**values))
    await _audit(request, AuditAction.UPDATE, "routing_rule", rule.scope, rule_json(rule))
    return web.json_response({"rule": rule_json(rule)})


async def rule_delete_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/rules/delete {"branch_id", "channel"}`: back to the wider rule."""
    data = await _json_object(request)
    branch_id = _optional_int(data, "branch_id")
    channel = str(data["channel"]) if data.get("channel") else None
    await request.app[keys.ROUTER].delete_rule(branch_id, channel)
    scope = RoutingRule(branch_id=branch_id, channel=channel).scope
    await _audit(request, AuditAction.DELETE, "routing_rule", scope, {})
    return web.json_response({"ok": True})


async def hours_save_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/routing/hours {"branch_id", "timezone", "week": {"mon": [["09:00","18:00"]], …},
    "holidays": ["2026-12-25"], "replies": {"ro": "…", "en": "…"}}`: a branch's opening hours and its
    off-hours reply per language (validated by `router.hours.WorkingHours`)."""
    data = await _json_object(request)
    branch_id = _optional_int(data, "branch_id")
    if branch_id is None:
        raise Invalid(N_("Choose a branch."), field="branch_id")
    week = data.get("week") or {}
    holidays = data.get("holidays") or []
    replies = data.get("replies") or {}
    if not isinstance(week, dict) or not isinstance(holidays, list):
        raise Invalid(N_("Give opening hours for each of the seven days."), field="week")
    if not isinstance(replies, dict):
        raise Invalid(N_("An off-hours reply is text."), field="replies")
    timezone = str(data.get("timezone") or "Europe/Chisinau")
    hours = WorkingHours.parse(branch_id, timezone, week, holidays, replies)
    saved = await request.app[keys.ROUTER].save_hours(hours)
    detail = {
        "timezone": saved.timezone,
        "week": saved.week_json(),
        "holidays": saved.holidays_json(),
        "replies": saved.replies,
    }
    await _audit(request, AuditAction.UPDATE, "branch_hours", str(branch_id), detail)
    return web.json_response({"hours": {"branch_id": branch_id, **detail}})


async def _audit(
    request: web.Request,
    action: AuditAction,
    record_type: str,
    record_id: str,
    values: dict[str, Any],
    *,
    before: dict[str, Any] | None = None,
) -> None:
    before = before or {}
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record(
            db,
            current_user(request).actor(client_ip(request)),
            category=Category.ADMIN,
            module="routing",
            action=action,
            record_type=record_type,
            record_id=record_id,
            changes={k: [before.get(k), v] for k, v in values.items()},
        )
