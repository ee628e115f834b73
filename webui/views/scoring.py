"""`/admin/scoring`: the lead scoring rules (add, edit, deactivate), the learned model's history with its
"retrain from history" button and thresholds; the JSON API under `/api/v1/scoring`; and a lead's score
explained (`/api/v1/leads/{id}/score`, and `score_card` for the lead page's `_lead_score.html`).

Rules and the model are for admins (`Action.SCORING_MANAGE`); a lead's score is for whoever may see the
lead (`crm_core.leads.may_see_lead`). A changed rule rescores the open leads in the background."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crm_core import classifiers, leads, scoring, scoring_learned, scoring_rules
from crm_core.scoring_rules import Rule, RuleKind
from switchboard import accounts
from switchboard.errors import N_, DomainError, Forbidden, NotFound
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)

CONDITION_FIELDS = ("values", "min", "max", "currency", "item", "entity", "key")
RULE_FIELDS = ("name", "kind", "points", "position", "active", *CONDITION_FIELDS)


def rule_form_values(rule: Rule) -> dict[str, str]:
    """A rule as its edit form shows it: lists joined by commas, absent limits empty."""
    out = {"name": rule.name, "kind": rule.kind, "points": str(rule.points), "position": str(rule.position)}
    out["active"] = "1" if rule.active else "0"
    for name in CONDITION_FIELDS:
        value = rule.params.get(name)
        if isinstance(value, list):
            out[name] = ", ".join(str(v) for v in value)
        elif value is not None:
            out[name] = str(value)
    return out


def _merged(rule: Rule, data: Mapping[str, Any]) -> dict[str, Any]:
    """What a PATCH leaves out keeps its value."""
    current: dict[str, Any] = {"name": rule.name, "kind": rule.kind, "points": rule.points}
    current |= {"position": rule.position, "active": rule.active, **rule.params}
    return {**current, **data}


def _wake(request: web.Request) -> None:
    worker = request.app.get(keys.WORKER)
    if worker is not None:
        worker.wake()


async def _create(request: web.Request, data: Mapping[str, Any]) -> Rule:
    user = current_user(request)
    parsed = scoring_rules.parse_rule(data)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        rule = await scoring_rules.create_rule(db, user.actor(client_ip(request)), parsed)
        await scoring.request_rescore(db)  # the open leads, in the background
    _wake(request)
    return rule


async def _update(request: web.Request, rule_id: int, data: Mapping[str, Any], *, merge: bool) -> Rule:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        current = await scoring_rules.get_rule(db, rule_id)
        if current is None:
            raise NotFound(N_("No such rule."))
        parsed = scoring_rules.parse_rule(_merged(current, data) if merge else data)
        rule, changed = await scoring_rules.update_rule(db, user.actor(client_ip(request)), rule_id, parsed)
        if changed:
            await scoring.request_rescore(db)  # the open leads, in the background
    _wake(request)
    return rule


# --- the page ---------------------------------------------------------------------------------------------


async def _page(
    request: web.Request,
    *,
    edit: int | None = None,
    error: DomainError | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    locale = i18n.current_locale()
    async with request.app[keys.SESSIONS]() as db:
        rules = await scoring_rules.list_rules(db)
        state = await scoring_learned.state(db)
        context: dict[str, Any] = {
            "rules": rules,
            "model": state,
            "history": await scoring_learned.history(db),
            "products": await classifiers.list_kind(db, "product"),
            "product_labels": await classifiers.labels(db, "product", locale),
            "branches": await accounts.list_branches(db),
        }
    editing = next((r for r in rules if r.id == edit), None)
    if edit is not None and editing is None:
        raise NotFound(N_("No such rule."))
    context |= {
        "kinds": list(RuleKind),
        "items": list(scoring_rules.Item),
        "currencies": scoring_rules.CURRENCIES,
        "editing": editing,
        "form": values if values is not None else (rule_form_values(editing) if editing else {}),
        "branch_names": {b.id: b.name for b in context["branches"]},
        "locale": locale,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }
    return await render("admin/scoring.html", request, context, status=error.status if error else 200)


async def scoring_page(request: web.Request) -> web.StreamResponse:
    """`GET /admin/scoring[?edit=<rule id>]`."""
    edit = request.query.get("edit", "")
    return await _page(request, edit=int(edit) if edit.isdigit() and len(edit) < 11 else None)


async def rule_create_form(request: web.Request) -> web.StreamResponse:
    form = await forms.posted(request)
    form.setdefault("active", "0")
    try:
        rule = await _create(request, form)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, error=exc, values=form)
    await forms.flash(
        request, i18n.gettext("Rule “%(name)s” added; leads are being rescored.", name=rule.name)
    )
    raise web.HTTPFound("/admin/scoring")


async def rule_update_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/scoring/rules/{id}`: the whole edit form (`active` is a checkbox: absent is off)."""
    rule_id = forms.path_int(request, "id")
    form = await forms.posted(request)
    form.setdefault("active", "0")
    try:
        rule = await _update(request, rule_id, form, merge=False)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, edit=rule_id, error=exc, values=form)
    await forms.flash(
        request, i18n.gettext("Rule “%(name)s” saved; leads are being rescored.", name=rule.name)
    )
    raise web.HTTPFound("/admin/scoring")


async def rule_active_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/scoring/rules/{id}/active {active: 1|0}`: switch a rule on or off."""
    rule_id = forms.path_int(request, "id")
    form = await forms.posted(request)
    try:
        rule = await _update(request, rule_id, {"active": form.get("active", "0")}, merge=True)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, error=exc)
    message = N_("Rule “%(name)s” is on.") if rule.active else N_("Rule “%(name)s” is off.")
    await forms.flash(request, i18n.gettext(message, name=rule.name))
    raise web.HTTPFound("/admin/scoring")


async def _retrain(request: web.Request) -> scoring_learned.ModelState:
    async with request.app[keys.SESSIONS]() as db, db.begin():
        return await scoring_learned.retrain(db)


async def retrain_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/scoring/retrain`: rebuild the learned model from every won and lost deal."""
    state = await _retrain(request)
    await forms.flash(
        request,
        i18n.gettext(
            "Learned again from %(n)s closed leads (%(won)s won, %(lost)s lost).",
            n=state.closed,
            won=state.won,
            lost=state.lost,
        ),
    )
    raise web.HTTPFound("/admin/scoring")


async def _thresholds(request: web.Request, data: Mapping[str, Any]) -> scoring_learned.ModelState:
    async with request.app[keys.SESSIONS]() as db, db.begin():
        current = await scoring_learned.state(db)
        merged = {"min_closed": current.min_closed, "min_won": current.min_won, "min_lost": current.min_lost}
        merged |= {k: data[k] for k in merged if k in data}
        return await scoring_learned.set_thresholds(db, **merged)


async def model_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/scoring/model`: how much history the learned score needs before it is shown."""
    form = await forms.posted(request)
    try:
        await _thresholds(request, form)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, error=exc)
    await forms.flash(request, i18n.gettext("Thresholds saved."))
    raise web.HTTPFound("/admin/scoring")


# --- JSON API ---------------------------------------------------------------------------------------------


def _model_json(state: scoring_learned.ModelState, history: Mapping[str, int]) -> dict[str, Any]:
    return {
        "ready": state.ready,
        "learned": {"closed": state.closed, "won": state.won, "lost": state.lost},
        "needs": {"closed": state.min_closed, "won": state.min_won, "lost": state.min_lost},
        "history": dict(history),
        "retrained_at": state.retrained_at.isoformat() if state.retrained_at else None,
    }


async def rules_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scoring/rules`: every rule, inactive ones too, in order."""
    async with request.app[keys.SESSIONS]() as db:
        rules = await scoring_rules.list_rules(db)
    return web.json_response({"rules": [r.as_json() for r in rules]})


async def rule_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scoring/rules {"name", "kind", "points", "position", "active", "values" | "min",
    "max", "currency" | "item", "entity", "key"}`."""
    rule = await _create(request, await _json_object(request))
    return web.json_response({"rule": rule.as_json()}, status=201)


async def rule_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/scoring/rules/{id}`: only the fields given change."""
    rule_id = forms.path_int(request, "id")
    rule = await _update(request, rule_id, await _json_object(request), merge=True)
    return web.json_response({"rule": rule.as_json()})


async def model_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scoring/model`: what the learned model has counted and what it needs."""
    async with request.app[keys.SESSIONS]() as db:
        state = await scoring_learned.state(db)
        history = await scoring_learned.history(db)
    return web.json_response({"model": _model_json(state, history)})


async def model_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/scoring/model {"min_closed", "min_won", "min_lost"}`."""
    state = await _thresholds(request, await _json_object(request))
    async with request.app[keys.SESSIONS]() as db:
        history = await scoring_learned.history(db)
    return web.json_response({"model": _model_json(state, history)})


async def retrain_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scoring/retrain`."""
    state = await _retrain(request)
    async with request.app[keys.SESSIONS]() as db:
        history = await scoring_learned.history(db)
    return web.json_response({"model": _model_json(state, history)})


# --- a lead's score -----------------------------------------------------------------------------------------


async def lead_score_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/leads/{id}/score`: the score, its breakdown and the learned probability."""
    user = current_user(request)
    lead_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        lead = await leads.get_lead(db, lead_id)
        if lead is None:
            raise NotFound(N_("No such lead."))
        if not leads.may_see_lead(user.role, user.id, user.branch_id, lead):
            raise Forbidden(N_("This lead belongs to another branch."))
        card = await scoring.score_card(db, lead_id)
    assert card is not None
    return web.json_response({"score": card.as_json()})
