"""Attachments over HTTP: uploading a file into a conversation and serving stored files back.

Uploads are read with `request.multipart()`, streamed part by part into the file store, so the store's
own limit (`max_upload_mb`) applies instead of the app's `client_max_size`; send the CSRF token in the
`X-CSRF-Token` header (a `_csrf` form field would make the security middleware read the whole form).
A file is served only to someone who may read the message carrying it; anyone else gets the same 404 as
for a file that does not exist.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, hdrs, web

from channels import media_links
from inbox.service import MAX_BODY
from switchboard.errors import N_, Invalid
from switchboard.files import ALLOWED_TYPES, StoredFile, read_chunks
from webui import forms, keys
from webui.security import viewer_of

MAX_FIELD_BYTES = MAX_BODY * 4  # a caption of MAX_BODY characters, each up to four UTF-8 bytes
_INLINE_MAJOR = ("image/", "audio/", "video/")
_TRUE = ("1", "true", "on", "yes")


async def upload_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/attachments`, multipart: `file` (required), `body` (a caption),
    `note` (`true` keeps it as a private note), `channel` / `account_id` (another identity of the
    customer, as for a reply). Answers 201 with the message, as sending a reply does."""
    conversation_id = forms.path_int(request, "id")
    if request.content_type != "multipart/form-data":
        raise Invalid(N_("Send the file as multipart/form-data."), field="file")
    store = request.app[keys.FILES]
    stored: StoredFile | None = None
    try:
        body, note = "", False
        channel: str | None = None
        account_id: str | None = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise Invalid(N_("Send the file as multipart/form-data."), field="file")
            if part.name == "file":
                if stored is not None:
                    raise Invalid(N_("Send one file at a time."), field="file")
                stored = await store.save(
                    read_chunks(part.read_chunk), part.headers.get(hdrs.CONTENT_TYPE), _filename(part)
                )
            elif part.name == "body":
                body = await _field_text(part)
            elif part.name == "note":
                note = (await _field_text(part)).strip().lower() in _TRUE
            elif part.name == "channel":
                channel = (await _field_text(part)).strip() or None
            elif part.name == "account_id":
                account_id = (await _field_text(part)).strip() or None
            else:
                await _field_text(part)  # `_csrf` and the like: read (bounded) and ignored
        if stored is None:
            raise Invalid(N_("Choose a file to send."), field="file")
        message = await request.app[keys.INBOX].attach(
            viewer_of(request), conversation_id, stored, body, note, channel=channel, account_id=account_id
        )
    except BaseException:
        if stored is not None:
            await store.delete(stored.path)  # never keep a file no message points at
        raise
    return web.json_response({"message": message.as_json()}, status=201)


def _filename(part: BodyPartReader) -> str | None:
    """The part's file name: browsers send it as UTF-8 with `"` and line breaks %-escaped, other clients
    (aiohttp's among them) %-escape all of it; the store sanitises whatever this gives."""
    return unquote(part.filename) if part.filename else None


async def _field_text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise Invalid(N_("The message is too long."), field=part.name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(N_("This field must be text."), field=part.name) from exc


async def file_get(request: web.Request) -> web.StreamResponse:
    """`GET /files/{file_id}`: the stored file, with the type the store recorded (never guessed again by
    the browser), inline for pictures, PDF, audio and video, as a download otherwise."""
    file_id = request.match_info.get("file_id", "")
    attachment = await request.app[keys.INBOX].attachment_for(viewer_of(request), file_id)
    stored_path = attachment.get("stored_path") if attachment else None
    if attachment is None or not isinstance(stored_path, str):
        raise web.HTTPNotFound()
    return await _serve(
        request, stored_path, str(attachment.get("content_type") or ""), str(attachment.get("filename") or "")
    )


async def media_link(request: web.Request) -> web.StreamResponse:
    """`GET /media/{token}/{filename}`: a file an agent sent, for the provider that fetches it by URL
    (Twilio, Viber, Meta). Public, but only through a signed, expiring token (`channels.media_links`)."""
    linked = media_links.verify(request.app[keys.SETTINGS].secret, request.match_info.get("token", ""))
    if linked is None:
        raise web.HTTPNotFound()
    return await _serve(request, linked.stored_path, linked.content_type, linked.filename)


async def _serve(
    request: web.Request, stored_path: str, content_type: str, filename: str
) -> web.StreamResponse:
    store = request.app[keys.FILES]
    if not await store.exists(stored_path):
        raise web.HTTPNotFound()
    if content_type not in ALLOWED_TYPES:
        content_type = "application/octet-stream"
    inline = content_type.startswith(_INLINE_MAJOR) or content_type == "application/pdf"
    headers = {
        hdrs.CONTENT_TYPE: content_type + ("; charset=utf-8" if content_type.startswith("text/") else ""),
        hdrs.CONTENT_DISPOSITION: content_disposition(
            "inline" if inline else "attachment", filename or "file"
        ),
        "X-Content-Type-Options": "nosniff",
        hdrs.CACHE_CONTROL: "private",
    }
    return web.FileResponse(store.locate(stored_path), headers=headers)


def download(body: bytes | str, content_type: str, filename: str) -> web.Response:
    """A generated text file (CSV, YAML) the browser saves under `filename`."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    headers = {hdrs.CONTENT_DISPOSITION: content_disposition("attachment", filename)}
    return web.Response(body=data, content_type=content_type, charset="utf-8", headers=headers)


def content_disposition(kind: str, filename: str) -> str:
    """`inline` / `attachment` with an ASCII fallback name and the real one as RFC 5987 `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
