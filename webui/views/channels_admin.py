"""Administration of channel accounts: for now the website chat widgets (list, create, edit, regenerate
the key, the embed snippet), and the public demo website that embeds the demo widget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channels import accounts as channel_accounts
from channels import webchat
from channels.accounts_model import ChannelAccount, new_webhook_secret
from channels.base import ChannelAdapter, TransientChannelError
from channels.model import Channel
from channels.provider_spec import AccountData, Provider
from channels.providers import PROVIDERS, provider_of
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
        rows = await channel_accounts.list_accounts(db)
    base = hub_url(request)
    form_values = dict(values or {}) if form == "widget" and values else dict(DEFAULTS)
    by_channel: dict[str, list[tuple[channel_accounts.AccountView, str, str]]] = {}
    for row in rows:
        if row.channel in {c.value for c in PROVIDERS}:
            by_channel.setdefault(row.channel, []).append(
                (
                    channel_accounts.view_of(row, box),
                    webhook_url(request, row.channel, row.id),
                    row.webhook_secret,
                )
            )
    context = {
        "widgets": [(w, webchat.embed_snippet(base, w)) for w in widgets],
        "branches": branches,
        "branch_names": {b.id: b.name for b in branches},
        "widget_languages": LANGUAGE_CHOICES,
        "values": form_values,
        "any_origin": _any_origin(form_values),
        "any_origin_value": ANY_ORIGIN,
        "providers": list(PROVIDERS.values()),
        "provider_accounts": by_channel,
        "provider_form": form,
        "provider_values": dict(values or {}) if form != "widget" else {},
        "provider_error": i18n.translate_error(error.message, error.params)
        if error and form != "widget"
        else None,
        "provider_error_field": error.field if error and form != "widget" else None,
        **_error_context(error if form == "widget" else None),
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


# --- provider accounts (Telegram, Viber, WhatsApp, SMS, Messenger, Instagram, e-mail) -------------------


def webhook_url(request: web.Request, channel: Channel | str, account_id: int) -> str:
    base = request.app[keys.SETTINGS].public_url or hub_url(request)
    return f"{base.rstrip('/')}/webhooks/{Channel(channel).value}/{account_id}"


def _provider(request: web.Request) -> Provider:
    provider = provider_of(request.match_info.get("channel", ""))
    if provider is None:
        raise web.HTTPNotFound()
    return provider


def _provider_fields(provider: Provider, form: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The typed values split into (config, secrets); `Invalid` names the first bad field."""
    config: dict[str, str] = {}
    secret_values: dict[str, str] = {}
    for spec in provider.fields:
        if spec.kind == "checkbox":
            value = "on" if form.get(spec.name) == "on" else ""
        else:
            value = forms.text(form, spec.name, max_len=5000 if spec.kind == "textarea" else 500)
            if not value and spec.default:
                value = spec.default
            if spec.required and not value:
                raise Invalid(N_("This field is required."), field=spec.name)
            if spec.kind == "select" and value and value not in {v for v, _ in spec.choices}:
                raise Invalid(N_("Choose one of the options."), field=spec.name)
        (secret_values if spec.secret else config)[spec.name] = value
    return config, secret_values


def _refusal(provider: Provider, exc: Exception) -> Invalid:
    return Invalid(
        N_("%(provider)s refused the connection: %(reason)s"),
        field=provider.fields[0].name if provider.fields else None,
        provider=provider.title,
        reason=str(exc),
    )


async def _check(adapter: ChannelAdapter, provider: Provider) -> dict[str, Any]:
    try:
        return await adapter.check()
    except (PermanentJobError, TransientChannelError) as exc:
        raise _refusal(provider, exc) from None


async def account_connect(request: web.Request) -> web.StreamResponse:
    """Check the credentials with the provider before anything is stored, store them encrypted, then
    register the webhook; any refusal rolls the whole thing back and shows the provider's reason."""
    provider = _provider(request)
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    try:
        name = forms.text(form, "name", max_len=120, required=True)
        config, secret_values = _provider_fields(provider, form)
        prepared: dict[str, Any] = provider.prepare(config) if provider.prepare else dict(config)
        probe = AccountData(0, provider.channel, name, prepared, secret_values, new_webhook_secret())
        try:
            adapter = adapters.build_data(probe)
        except ValueError as exc:
            raise Invalid(
                N_("These credentials are not valid: %(reason)s"),
                field=provider.fields[0].name,
                reason=str(exc),
            ) from None
        try:
            prepared.update(await _check(adapter, provider))
        finally:
            await adapter.close()
        async with request.app[keys.SESSIONS]() as db, db.begin():
            account = await channel_accounts.create_account(
                db,
                actor,
                adapters.box,
                channel=provider.channel,
                name=name,
                secrets=secret_values,
                config=prepared,
            )
            account.config = {**prepared, "webhook_url": webhook_url(request, provider.channel, account.id)}
        # Committed before the webhook is registered: Viber calls the new address before answering.
        await _register_webhook(request, provider, account)
    except DomainError as exc:
        values = {
            k: str(v)[:500] for k, v in form.items() if isinstance(v, str) and not _is_secret(provider, k)
        }
        return await channels_page(request, error=exc, values=values, form=provider.channel.value)
    await forms.flash(request, i18n.gettext("%(name)s connected.", name=name))
    raise web.HTTPFound(f"/admin/channels#{provider.channel.value}")


async def _register_webhook(request: web.Request, provider: Provider, account: ChannelAccount) -> None:
    """connect() at the provider; on refusal the account that never worked is removed again."""
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    adapter = adapters.build(account)
    try:
        await adapter.connect(str(account.config["webhook_url"]))
    except (PermanentJobError, TransientChannelError) as exc:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            await channel_accounts.delete_account(
                db, current_user(request).actor(client_ip(request)), account.id
            )
        raise _refusal(provider, exc) from None
    finally:
        await adapter.close()


def _is_secret(provider: Provider, name: str) -> bool:
    return name == "_csrf" or any(f.name == name and f.secret for f in provider.fields)


async def account_test(request: web.Request) -> web.StreamResponse:
    account_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    async with request.app[keys.SESSIONS]() as db:
        account = await channel_accounts.get_account(db, account_id)
    provider = provider_of(account.channel)
    if provider is None:
        raise web.HTTPNotFound()
    try:
        adapter = adapters.build(account)
    except ValueError as exc:
        outcome, message = "failed", str(exc)
    else:
        try:
            details = await _check(adapter, provider)
            shown = ", ".join(
                str(v) for k, v in details.items() if v not in ("", None) and k != "webhook_url"
            )
            outcome = "ok"
            message = i18n.gettext(
                "%(provider)s answers: %(details)s", provider=provider.title, details=shown
            )
        except Invalid as exc:
            outcome, message = "failed", i18n.translate_error(exc.message, exc.params)
        finally:
            await adapter.close()
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await channel_accounts.record_test(db, actor, account_id, outcome)
    await forms.flash(request, message)
    raise web.HTTPFound(f"/admin/channels#{account.channel}")


async def account_disconnect(request: web.Request) -> web.StreamResponse:
    """Remove the webhook at the provider, then deactivate — even when the provider no longer accepts
    the credentials (the account must stop either way)."""
    account_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    adapters = request.app[keys.CHANNEL_ADAPTERS]
    async with request.app[keys.SESSIONS]() as db:
        account = await channel_accounts.get_account(db, account_id)
    warning = ""
    try:
        adapter = adapters.build(account)
    except ValueError as exc:
        warning = str(exc)
    else:
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
        message = i18n.gettext("Disconnected; the provider said: %(reason)s", reason=warning)
    else:
        message = i18n.gettext("Disconnected.")
    await forms.flash(request, message)
    raise web.HTTPFound(f"/admin/channels#{account.channel}")
