"""Administration of channel accounts: for now the website chat widgets (list, create, edit, regenerate
the key, the embed snippet), and the public demo website that embeds the demo widget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.types import User
from aiohttp import web

from channels import accounts as channel_accounts
from channels import webchat
from channels.base import TransientChannelError
from channels.model import Channel
from channels.telegram.client import InvalidToken, TelegramClient
from channels.webchat import WidgetConfig
from channels.webchat_model import ANY_ORIGIN
from switchboard import accounts, audit
from switchboard.errors import N_, DomainError, Invalid
from switchboard.jobs import PermanentJobError
from webui import forms, i18n, keys
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.widget import forget_widgets

LANGUAGE_CHOICES: tuple[tuple[str, str], ...] = (("ro", "Română"), ("en", "English"), ("ru", "Русский"))
DEFAULTS: dict[str, Any] = {
    "name": "",
    "allowed_origins": "",
    "colour": "#206bc4",
    "greeting": "",
    "language": "ro",
    "position": "right",
    "prechat": False,
    "branch_id": None,
    "active": True,
}


def hub_url(request: web.Request) -> str:
    """The hub's address as this browser reaches it: what a site's `<script src>` must point at."""
    return f"{request.scheme}://{request.host}"


def _values_of(widget: WidgetConfig) -> dict[str, Any]:
    return {
        "name": widget.name,
        "allowed_origins": "\n".join(widget.allowed_origins),
        "colour": widget.colour,
        "greeting": widget.greeting,
        "language": widget.language,
        "position": widget.position,
        "prechat": widget.prechat,
        "branch_id": widget.branch_id,
        "active": widget.active,
    }


def _values_from(form: Mapping[str, Any]) -> dict[str, Any]:
    """What the person typed, to show again next to the error (never trusted beyond that)."""
    branch = form.get("branch_id")
    return {
        "name": str(form.get("name", ""))[:200],
        "allowed_origins": str(form.get("allowed_origins", ""))[:5000],
        "colour": str(form.get("colour", ""))[:7],
        "greeting": str(form.get("greeting", ""))[:400],
        "language": str(form.get("language", "")),
        "position": str(form.get("position", "")),
        "prechat": form.get("prechat") == "on",
        "branch_id": int(branch) if isinstance(branch, str) and branch.isdigit() else None,
        "active": form.get("active") == "on",
    }


def _fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The widget settings from a submitted form; `WidgetInvalid` / `Invalid` name the bad field."""
    choice = forms.text(form, "language", max_len=5)
    position = forms.text(form, "position", max_len=5)
    return {
        "name": forms.text(form, "name", max_len=120, required=True),
        "allowed_origins": forms.text(form, "allowed_origins", max_len=5000),
        "colour": forms.text(form, "colour", max_len=7) or "#206bc4",
        "greeting": forms.text(form, "greeting", max_len=300),
        "language": choice,
        "position": position,
        "prechat": form.get("prechat") == "on",
        "branch_id": forms.integer(form, "branch_id", minimum=1),
    }


def _error_context(error: DomainError | None) -> dict[str, Any]:
    return {
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }


def _any_origin(values: Mapping[str, Any]) -> bool:
    return any(line.strip() == ANY_ORIGIN for line in str(values.get("allowed_origins", "")).splitlines())


# --- the list and the new-widget form --------------------------------------------------------------------


async def channels_page(
    request: web.Request,
    *,
    error: DomainError | None = None,
    values: dict[str, Any] | None = None,
    form: str = "widget",
) -> web.Response:
    box = request.app[keys.CHANNEL_SECRETS]
    async with request.app[keys.SESSIONS]() as db:
        widgets = await webchat.list_widgets(db)
        branches = await accounts.list_branches(db)
        bots = await channel_accounts.list_accounts(db, Channel.TELEGRAM)
    base = hub_url(request)
    form_values = dict(values or {}) if form == "widget" and values else dict(DEFAULTS)
    telegram_values = dict(values or {}) if form == "telegram" else {}
    if form == "telegram":
        widget_error: DomainError | None = None
        telegram_error = error
    else:
        widget_error, telegram_error = error, None
    context = {
        "widgets": [(w, webchat.embed_snippet(base, w)) for w in widgets],
        "branches": branches,
        "branch_names": {b.id: b.name for b in branches},
        "widget_languages": LANGUAGE_CHOICES,
        "values": form_values,
        "any_origin": _any_origin(form_values),
        "any_origin_value": ANY_ORIGIN,
        "telegram_accounts": [channel_accounts.view_of(bot, box) for bot in bots],
        "telegram_values": telegram_values,
        "telegram_error": (
            i18n.translate_error(telegram_error.message, telegram_error.params) if telegram_error else None
        ),
        **_error_context(widget_error),
    }
    return await render("admin/channels.html", request, context, status=error.status if error else 200)


async def channels_list(request: web.Request) -> web.StreamResponse:
    return await channels_page(request)


async def widget_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            widget = await webchat.create_widget(db, actor=actor, **_fields(form))
    except DomainError as exc:
        return await channels_page(request, error=exc, values=_values_from(form))
    await forms.flash(request, i18n.gettext("Widget %(name)s created.", name=widget.name))
    raise web.HTTPFound(f"/admin/channels/widgets/{widget.id}")


# --- one widget ---------------------------------------------------------------------------------------------


async def widget_page(
    request: web.Request, *, error: DomainError | None = None, values: dict[str, Any] | None = None
) -> web.Response:
    widget_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        widget = await webchat.get_widget(db, widget_id)
        branches = await accounts.list_branches(db)
        history, _ = await audit.search(
            db,
            audit.AuditFilter(record_type=webchat.AUDIT_RECORD, record_id=str(widget.id)),
            limit=20,
        )
    form_values = values or _values_of(widget)
    context = {
        "widget": widget,
        "snippet": webchat.embed_snippet(hub_url(request), widget),
        "branches": branches,
        "widget_languages": LANGUAGE_CHOICES,
        "values": form_values,
        "any_origin": _any_origin(form_values),
        "any_origin_value": ANY_ORIGIN,
        "history": history,
        **_error_context(error),
    }
    return await render("admin/widget.html", request, context, status=error.status if error else 200)


async def widget_detail(request: web.Request) -> web.StreamResponse:
    return await widget_page(request)


async def widget_update(request: web.Request) -> web.StreamResponse:
    widget_id = forms.path_int(request, "id")
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    try:
        fields = _fields(form)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            await webchat.update_widget(db, actor, widget_id, active=form.get("active") == "on", **fields)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await widget_page(request, error=exc, values=_values_from(form))
    await forms.flash(request, i18n.gettext("Changes saved."))
    forget_widgets(request.app)
    raise web.HTTPFound(f"/admin/channels/widgets/{widget_id}")


async def widget_regenerate_key(request: web.Request) -> web.StreamResponse:
    """A new key, only when the confirmation box is ticked: every page with the old snippet stops
    showing the widget until the snippet is replaced."""
    widget_id = forms.path_int(request, "id")
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    if form.get("confirm") != "yes":
        error = Invalid(N_("Tick the box to confirm: the old snippet stops working."), field="confirm")
        return await widget_page(request, error=error)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await webchat.regenerate_key(db, actor, widget_id)
    await forms.flash(
        request, i18n.gettext("New key made. Replace the snippet on every site that embeds this widget.")
    )
    forget_widgets(request.app)
    raise web.HTTPFound(f"/admin/channels/widgets/{widget_id}")


# --- the demo website --------------------------------------------------------------------------------------


async def demo_site(request: web.Request) -> web.StreamResponse:
    """A made-up customer website with the demo widget, so the widget can be tried from the demo; it
    exists only when the hub runs as `switchboard demo`."""
    if not request.app[keys.SETTINGS].demo:
        raise web.HTTPNotFound()
    async with request.app[keys.SESSIONS]() as db:
        widget = await webchat.find_widget_named(db, webchat.DEMO_WIDGET_NAME)
    context = {"widget_key": widget.public_key if widget else None, "hub": hub_url(request)}
    return await render("demo_site.html", request, context)


# --- Telegram bots ------------------------------------------------------------------------------------------


def webhook_url(request: web.Request, channel: Channel, account_id: int) -> str:
    base = request.app[keys.SETTINGS].public_url or hub_url(request)
    return f"{base.rstrip('/')}/webhooks/{channel.value}/{account_id}"


async def _telegram_me(request: web.Request, token: str) -> User:
    """getMe with the token typed in: proves the token before anything is stored."""
    try:
        client = TelegramClient(token, request.app[keys.SETTINGS].telegram_api_base)
    except InvalidToken:
        raise Invalid(N_("This is not a Telegram bot token."), field="token") from None
    try:
        return await client.get_me()
    except (PermanentJobError, TransientChannelError) as exc:
        raise Invalid(N_("Telegram refused the token: %(reason)s"), field="token", reason=str(exc)) from None
    finally:
        await client.close()


async def telegram_connect(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    try:
        name = forms.text(form, "name", max_len=120, required=True)
        token = forms.text(form, "token", max_len=200, required=True)
        me = await _telegram_me(request, token)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            account = await channel_accounts.create_account(
                db,
                actor,
                adapters.box,
                channel=Channel.TELEGRAM,
                name=name,
                secrets={"token": token},
                config={"username": me.username or "", "bot_id": me.id},
            )
            adapter = adapters.build(account)
            try:
                await adapter.connect(webhook_url(request, Channel.TELEGRAM, account.id))
            except (PermanentJobError, TransientChannelError) as exc:
                raise Invalid(
                    N_("Telegram did not accept the webhook: %(reason)s"), field="token", reason=str(exc)
                ) from None
            finally:
                await adapter.close()
    except DomainError as exc:
        values = {"telegram_name": str(form.get("name", ""))[:120]}
        return await channels_page(request, error=exc, values=values, form="telegram")
    await forms.flash(request, i18n.gettext("Telegram bot %(name)s connected.", name=name))
    raise web.HTTPFound("/admin/channels#telegram")


async def telegram_test(request: web.Request) -> web.StreamResponse:
    account_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    async with request.app[keys.SESSIONS]() as db:
        account = await channel_accounts.get_account(db, account_id)
    token = adapters.box.decrypt(account.secrets).get("token", "")
    try:
        me = await _telegram_me(request, token)
        outcome, message = (
            "ok",
            i18n.gettext("Telegram answers: the bot is @%(username)s.", username=me.username),
        )
    except Invalid as exc:
        outcome, message = "failed", i18n.translate_error(exc.message, exc.params)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await channel_accounts.record_test(db, actor, account_id, outcome)
    await forms.flash(request, message)
    raise web.HTTPFound("/admin/channels#telegram")


async def telegram_disconnect(request: web.Request) -> web.StreamResponse:
    """deleteWebhook, then deactivate — even when Telegram no longer accepts the token."""
    account_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    async with request.app[keys.SESSIONS]() as db:
        account = await channel_accounts.get_account(db, account_id)
    adapter = adapters.build(account)
    warning = ""
    try:
        await adapter.disconnect()
    except (PermanentJobError, TransientChannelError) as exc:
        warning = str(exc)
    finally:
        await adapter.close()
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await channel_accounts.set_active(db, actor, account_id, False)
    await adapters.forget(account_id)
    if warning:
        message = i18n.gettext("Bot disconnected; Telegram said: %(reason)s", reason=warning)
    else:
        message = i18n.gettext("Bot disconnected.")
    await forms.flash(request, message)
    raise web.HTTPFound("/admin/channels#telegram")
