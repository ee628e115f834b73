"""The lead page (`/leads/{id}`) and the deal page (`/deals/{id}`), with their forms and the JSON API under
`/api/v1/leads` and `/api/v1/deals`.

Who may open which lead or deal is `crm_core.leads.may_see` (admins all; supervisors their branch; agents
their branch's and their own); score and owner are locked for agents (`leads.locked_fields`). Every
change runs in one transaction with its audit entry; every refusal is logged with who asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import classifiers, custom_fields, field_visibility, funnel, leads, scoring
from crm_core.funnel import DealView
from crm_core.leads import TRANSITIONS, LeadStatus, LeadView
from switchboard import accounts
from switchboard.accounts import CurrentUser
from switchboard.accounts_model import User
from switchboard.errors import N_, DomainError, Forbidden, Invalid, NotFound
from switchboard.permissions import Role
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.field_visibility import form_keys
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)

LEAD_FORM_FIELDS = (*leads.EDITABLE, *leads.MANAGER_ONLY)
DEAL_FORM_FIELDS = ("amount", "currency", "product", "owner_id", "custom")


# --- finding what the caller may see ----------------------------------------------------------------------


async def _lead(db: AsyncSession, user: CurrentUser, lead_id: int, *, lock: bool = False) -> LeadView:
    lead = await leads.get_lead(db, lead_id, lock=lock)
    if lead is None:
        raise NotFound(N_("No such lead."))
    if not leads.may_see_lead(user.role, user.id, user.branch_id, lead):
        raise Forbidden(N_("This lead belongs to another branch."))
    return lead


async def _deal(db: AsyncSession, user: CurrentUser, deal_id: int, *, lock: bool = False) -> DealView:
    deal = await funnel.get_deal(db, deal_id, lock=lock)
    if deal is None:
        raise NotFound(N_("No such deal."))
    if not funnel.may_see_deal(user.role, user.id, user.branch_id, deal):
        raise Forbidden(N_("This deal belongs to another branch."))
    return deal


async def _experts(db: AsyncSession, user: CurrentUser) -> list[User]:
    """Who can be made a responsible expert: active agents and supervisors — of the caller's branch when
    the caller is a supervisor."""
    query = select(User).where(
        User.active.is_(True), User.role.in_((Role.AGENT.value, Role.SUPERVISOR.value))
    )
    if user.role is not Role.ADMIN:
        query = query.where(User.branch_id == user.branch_id)
    return list(await db.scalars(query.order_by(User.full_name, User.username)))


async def _experts_with(db: AsyncSession, user: CurrentUser, owner_id: int | None) -> list[User]:
    """The experts to pick from, and the current owner even when they are not one of them (another
    branch, deactivated): the form must not clear what it cannot show."""
    people = await _experts(db, user)
    if owner_id is not None and all(p.id != owner_id for p in people):
        owner = await db.get(User, owner_id)
        if owner is not None:
            people.append(owner)
    return people


async def _check_owner_branch(db: AsyncSession, user: CurrentUser, changes: Mapping[str, Any]) -> None:
    """A supervisor hands leads and deals only to people of their own branch."""
    value = changes.get("owner_id")
    if user.role is not Role.SUPERVISOR or value in (None, ""):
        return
    owner = await db.get(User, int(value)) if str(value).isdigit() and len(str(value)) < 11 else None
    if owner is not None and owner.branch_id != user.branch_id:
        raise Forbidden(N_("You can give it only to someone of your branch."), field="owner_id")


async def _hidden(db: AsyncSession, user: CurrentUser, entity: str) -> frozenset[str]:
    """The fields of leads or deals hidden from the caller's role, under every name the pages, forms and
    JSON give them (`branch` → `branch_id`, `branch_name`); none for admins."""
    return form_keys(await field_visibility.hidden(db, entity, user.role))


def _refuse_hidden(changes: Mapping[str, Any], hidden: frozenset[str]) -> None:
    """What a role may not see it may not change either (the pages leave those inputs out)."""
    for name in changes:
        if name in hidden:
            raise Invalid(N_("Unknown field."), field=name)
    forms.refuse_hidden_custom(changes.get("custom"), hidden)


def _lead_json(
    lead: LeadView, user: CurrentUser, card: scoring.ScoreCard | None, hidden: frozenset[str]
) -> dict[str, Any]:
    """The lead with `locked` (what the caller may not change) and `scoring` (breakdown, learned), without
    the hidden fields (a hidden score takes its breakdown with it)."""
    locked = field_visibility.locked_lead_fields(user.role, ()) - hidden
    out = {**lead.as_json(), "locked": sorted(locked)}
    if "score" not in hidden:
        out["scoring"] = card.as_json() if card is not None else None
    return field_visibility.redact(out, hidden)


# --- leads ---------------------------------------------------------------------------------------------


async def _lead_page(
    request: web.Request,
    lead_id: int,
    *,
    error: DomainError | None = None,
    values: Mapping[str, Any] | None = None,
) -> web.Response:
    user = current_user(request)
    locale = i18n.current_locale()
    async with request.app[keys.SESSIONS]() as db:
        lead = await _lead(db, user, lead_id)
        context: dict[str, Any] = {
            "lead": lead,
            "products": await classifiers.list_kind(db, "product"),
            "junk_reasons": await classifiers.list_kind(db, "junk_reason"),
            "product_labels": await classifiers.labels(db, "product", locale),
            "junk_labels": await classifiers.labels(db, "junk_reason", locale),
            "branches": [b for b in await accounts.list_branches(db) if b.active or b.id == lead.branch_id],
            "experts": await _experts_with(db, user, lead.owner_id),
            "score_card": await scoring.score_card(db, lead.id),  # _lead_score.html
            "hidden": await _hidden(db, user, "lead"),
        }
        context["custom_defs"] = await forms.custom_defs(db, "lead", context["hidden"])
    current = LeadStatus(lead.status) if lead.status in set(LeadStatus) else LeadStatus.NEW
    context |= {
        "statuses": [current.value, *sorted(s.value for s in TRANSITIONS[current])],
        "locked": leads.locked_fields(user.role),
        "currencies": leads.CURRENCIES,
        "may_convert": lead.deal_id is None and lead.status != LeadStatus.JUNK,
        "locale": locale,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": values or {},
    }
    return await render("lead.html", request, context, status=error.status if error else 200)


async def lead_page(request: web.Request) -> web.StreamResponse:
    """`GET /leads/{id}`: every field; source and UTM read-only; convert to a deal."""
    return await _lead_page(request, forms.path_int(request, "id"))


async def _update_lead(request: web.Request, lead_id: int, changes: Mapping[str, Any]) -> LeadView:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await _lead(db, user, lead_id, lock=True)
        _refuse_hidden(changes, await _hidden(db, user, "lead"))
        await _check_owner_branch(db, user, changes)
        return await leads.update_lead(db, user.actor(client_ip(request)), user.role, lead_id, changes)


async def _custom_of(request: web.Request, posted: Mapping[str, Any], entity: str) -> dict[str, Any]:
    """The page form's custom-field inputs: those of the fields it showed (hidden ones keep their value)."""
    async with request.app[keys.SESSIONS]() as db:
        defs = await forms.custom_defs(db, entity, await _hidden(db, current_user(request), entity))
    return custom_fields.form_values(posted, defs)


async def lead_update_form(request: web.Request) -> web.StreamResponse:
    """`POST /leads/{id}`: the page's form. Locked fields are not in an agent's form (disabled inputs are
    not sent), so they stay as they are."""
    lead_id = forms.path_int(request, "id")
    posted = await request.post()
    form: dict[str, Any] = {k: v for k, v in posted.items() if isinstance(v, str)}
    changes = {name: form[name] for name in LEAD_FORM_FIELDS if name in form}
    changes["custom"] = form["custom"] = await _custom_of(request, posted, "lead")
    try:
        await _update_lead(request, lead_id, changes)
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _lead_page(request, lead_id, error=exc, values=form)
    await forms.flash(request, i18n.gettext("Lead saved."))
    raise web.HTTPFound(f"/leads/{lead_id}")


async def _convert(request: web.Request, lead_id: int) -> tuple[DealView, bool]:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        lead = await _lead(db, user, lead_id, lock=True)
        deal = await funnel.convert_lead(
            db, lead_id, by_user_id=user.id, actor=user.actor(client_ip(request))
        )
    return deal, lead.deal_id is None


async def lead_convert_form(request: web.Request) -> web.StreamResponse:
    """`POST /leads/{id}/convert`: make the deal (or find the one made before) and open it."""
    deal, _ = await _convert(request, forms.path_int(request, "id"))
    await forms.flash(request, i18n.gettext("The lead is now deal #%(id)s.", id=deal.id))
    raise web.HTTPFound(f"/deals/{deal.id}")


async def lead_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/leads/{id}`: the lead, with `locked`: the fields the caller may not change."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        lead = await _lead(db, user, forms.path_int(request, "id"))
        card = await scoring.score_card(db, lead.id)
        hidden = await _hidden(db, user, "lead")
    return web.json_response({"lead": _lead_json(lead, user, card, hidden)})


async def lead_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/leads/{id} {"status", "junk_reason", "product", "amount", "currency", "term_months",
    "branch_id", "campaign", "score", "owner_id"}`: only the fields given change."""
    lead_id = forms.path_int(request, "id")
    data = await _json_object(request)
    lead = await _update_lead(request, lead_id, data)
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        card = await scoring.score_card(db, lead_id)
        hidden = await _hidden(db, user, "lead")
    return web.json_response({"lead": _lead_json(lead, user, card, hidden)})


async def lead_convert_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/leads/{id}/convert`: 201 with the new deal, 200 with the deal made before."""
    deal, created = await _convert(request, forms.path_int(request, "id"))
    body = await _deal_json(request, deal)
    return web.json_response({"deal": body}, status=201 if created else 200)


# --- deals ---------------------------------------------------------------------------------------------


async def _deal_json(request: web.Request, deal: DealView) -> dict[str, Any]:
    """The deal without the fields hidden from the caller."""
    async with request.app[keys.SESSIONS]() as db:
        hidden = await _hidden(db, current_user(request), "deal")
    return field_visibility.redact(deal.as_json(), hidden)


async def _deal_page(
    request: web.Request,
    deal_id: int,
    *,
    error: DomainError | None = None,
    values: Mapping[str, Any] | None = None,
) -> web.Response:
    user = current_user(request)
    locale = i18n.current_locale()
    async with request.app[keys.SESSIONS]() as db:
        deal = await _deal(db, user, deal_id)
        pipeline = await funnel.get_pipeline(db, deal.pipeline_id)
        context: dict[str, Any] = {
            "deal": deal,
            "pipeline": pipeline,
            "products": await classifiers.list_kind(db, "product"),
            "loss_reasons": await classifiers.list_kind(db, "loss_reason"),
            "product_labels": await classifiers.labels(db, "product", locale),
            "loss_labels": await classifiers.labels(db, "loss_reason", locale),
            "experts": await _experts_with(db, user, deal.owner_id),
            "hidden": await _hidden(db, user, "deal"),
        }
        context["custom_defs"] = await forms.custom_defs(db, "deal", context["hidden"])
    context |= {
        "owner_locked": user.role not in (Role.ADMIN, Role.SUPERVISOR),
        "currencies": leads.CURRENCIES,
        "locale": locale,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": values or {},
    }
    return await render("deal.html", request, context, status=error.status if error else 200)


async def deal_page(request: web.Request) -> web.StreamResponse:
    """`GET /deals/{id}`: amount, product, stage with its probability, owner, win / lose."""
    return await _deal_page(request, forms.path_int(request, "id"))


async def _change_deal(request: web.Request, deal_id: int, data: Mapping[str, Any], action: str) -> DealView:
    """`edit` (fields and `stage_id`), `win` or `lose` (`lost_reason`), on the locked row, audited."""
    user = current_user(request)
    actor = user.actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db, db.begin():
        deal = await _deal(db, user, deal_id, lock=True)
        _refuse_hidden(data, await _hidden(db, user, "deal"))
        if action == "win":
            return await funnel.win(db, actor, deal_id)
        if action == "lose":
            return await funnel.lose(db, actor, deal_id, data.get("lost_reason"))
        changes = {name: data[name] for name in DEAL_FORM_FIELDS if name in data}
        for name in data:
            if name not in (*DEAL_FORM_FIELDS, "stage_id", "_csrf"):
                raise Invalid(N_("Unknown field."), field=name)
        if changes:
            await _check_owner_branch(db, user, changes)
            deal = await funnel.update_deal(db, actor, user.role, deal_id, changes)
        stage_id = data.get("stage_id")
        if stage_id not in (None, "") and str(stage_id) != str(deal.stage_id):
            deal = await funnel.move_deal(db, actor, deal_id, stage_id)
        return deal


async def _deal_form(request: web.Request, action: str) -> web.StreamResponse:
    deal_id = forms.path_int(request, "id")
    posted = await request.post()
    form: dict[str, Any] = {k: v for k, v in posted.items() if isinstance(v, str)}
    data: dict[str, Any] = {k: v for k, v in form.items() if k != "_csrf" and not k.startswith("custom.")}
    if action == "edit":
        data["custom"] = form["custom"] = await _custom_of(request, posted, "deal")
    try:
        await _change_deal(request, deal_id, data, action)
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _deal_page(request, deal_id, error=exc, values=form)
    messages = {"edit": N_("Deal saved."), "win": N_("Deal won."), "lose": N_("Deal lost.")}
    await forms.flash(request, i18n.gettext(messages[action]))
    raise web.HTTPFound(f"/deals/{deal_id}")


async def deal_update_form(request: web.Request) -> web.StreamResponse:
    return await _deal_form(request, "edit")


async def deal_win_form(request: web.Request) -> web.StreamResponse:
    return await _deal_form(request, "win")


async def deal_lose_form(request: web.Request) -> web.StreamResponse:
    return await _deal_form(request, "lose")


async def deal_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/deals/{id}`."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        deal = await _deal(db, user, forms.path_int(request, "id"))
        hidden = await _hidden(db, user, "deal")
    return web.json_response({"deal": field_visibility.redact(deal.as_json(), hidden)})


async def deal_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/deals/{id} {"amount", "currency", "product", "owner_id", "stage_id"}`."""
    deal_id = forms.path_int(request, "id")
    data = await _json_object(request)
    deal = await _change_deal(request, deal_id, data, "edit")
    return web.json_response({"deal": await _deal_json(request, deal)})


async def deal_win_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/deals/{id}/win`."""
    deal = await _change_deal(request, forms.path_int(request, "id"), {}, "win")
    return web.json_response({"deal": await _deal_json(request, deal)})


async def deal_lose_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/deals/{id}/lose {"lost_reason": "<loss_reason code>"}`."""
    deal_id = forms.path_int(request, "id")
    data = await _json_object(request)
    deal = await _change_deal(request, deal_id, data, "lose")
    return web.json_response({"deal": await _deal_json(request, deal)})
