"""What an agent may send in a conversation right now, and sending it: the channel's customer-service
window (WhatsApp templates, Meta message tags), an opt-out, the SMS segment count — and "retry" for a reply
that failed.

The approved WhatsApp templates live in the channel account's config (`channels/twilio`); the agent picks
one by name and fills its variables, and the hub sends the template's Content SID and stores the text the
customer will read.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.accounts_model import ChannelAccount
from channels.model import Channel, TemplateRef
from channels.twilio.segments import segments, transliterate
from channels.twilio.templates import WhatsAppTemplate, render, templates_from_config
from switchboard.errors import N_, Invalid
from webui import forms, keys
from webui.security import viewer_of

MAX_SEGMENT_TEXT = 10_000


async def account_templates(request: web.Request, channel: str, account_id: str) -> list[WhatsAppTemplate]:
    """The approved templates of a WhatsApp account (none for any other channel)."""
    if channel != Channel.WHATSAPP.value or not account_id.isdigit():
        return []
    async with request.app[keys.SESSIONS]() as db:
        account = await db.get(ChannelAccount, int(account_id))
    return templates_from_config(account.config.get("templates")) if account is not None else []


async def resolve_template(
    request: web.Request, channel: str, account_id: str, data: Any
) -> tuple[TemplateRef, str]:
    """The `template` of a send request as the TemplateRef the adapter sends and the text the conversation
    shows. WhatsApp: a template of the account, every variable filled. Messenger / Instagram: a message tag
    (the inbox checks which tags the window allows)."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise Invalid(N_("Choose a template."), field="template")
    name = data["name"].strip()
    raw = data.get("variables") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise Invalid(N_("Template variables must be text."), field="template")
    variables = {str(k): v.strip()[:500] for k, v in raw.items()}
    if channel != Channel.WHATSAPP.value:
        return TemplateRef(name.upper()), ""
    for template in await account_templates(request, channel, account_id):
        if template.name == name:
            text = render(template, variables)
            return TemplateRef(template.content_sid, {k: variables[k] for k in template.variables}), text
    raise Invalid(N_("This template does not exist on this WhatsApp number."), field="template")


async def reply_options_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/conversations/{id}/reply-options[?channel=&account_id=]`: where a reply goes and what
    may be sent there now."""
    conversation_id = forms.path_int(request, "id")
    channel = request.query.get("channel") or None
    account_id = request.query.get("account_id") or None
    inbox = request.app[keys.INBOX]
    target_channel, target_account, window, opted_out = await inbox.reply_window(
        viewer_of(request), conversation_id, channel, account_id
    )
    templates = await account_templates(request, target_channel, target_account)
    return web.json_response(
        {
            "channel": target_channel,
            "account_id": target_account,
            "window": window.verdict.value,
            "closes_at": window.closes_at.isoformat() if window.closes_at else None,
            "tags": list(window.tags),
            "templates": [
                {"name": t.name, "body": t.body, "variables": list(t.variables)} for t in templates
            ],
            "opted_out": opted_out,
        }
    )


async def message_retry_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/messages/{id}/retry`: send a failed reply again."""
    message = await request.app[keys.INBOX].retry(viewer_of(request), forms.path_int(request, "id"))
    return web.json_response({"message": message.as_json()})


async def sms_segments_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/sms/segments {"text": …}`: how many SMS the text costs, and as transliterated."""
    try:
        data = await request.json()
    except ValueError:
        raise Invalid(N_("The request body must be a JSON object."), field="text") from None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or len(text) > MAX_SEGMENT_TEXT:
        raise Invalid(N_("The message is too long."), field="text")
    now = segments(text)
    plain = transliterate(text)
    then = segments(plain)
    return web.json_response(
        {
            "encoding": now.encoding,
            "parts": now.parts,
            "transliterated": {"text": plain, "encoding": then.encoding, "parts": then.parts}
            if plain != text
            else None,
        }
    )
