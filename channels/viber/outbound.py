"""An outgoing message as the `send_message` bodies Viber takes, built with viberbot's message models.

Viber fetches media itself, from a public URL: an attachment without one cannot be sent. Pictures go as
`picture` (JPEG, PNG or GIF whose URL ends in that extension, at most 1 MB — iOS's limit), videos as
`video` (MP4 whose URL ends in `.mp4`, at most 26 MB), anything else as `file` (at most 50 MB, with its
size and name). A caption rides on a picture when it fits; otherwise the text goes first, on its own, and
text longer than Viber's 7,000 characters is sent in parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from viberbot.api.messages import (  # type: ignore[import-untyped]
    FileMessage,
    PictureMessage,
    TextMessage,
    VideoMessage,
)

from channels.model import Attachment, OutboundMessage
from channels.viber.media import extension, url_name
from switchboard.jobs import PermanentJobError

MIB = 1024 * 1024
TEXT_LIMIT = 7000
CAPTION_LIMIT = 512  # a picture's text: 768 in the current documentation, 512 in earlier versions
SENDER_NAME_LIMIT = 28
FILE_NAME_LIMIT = 256
PICTURE_MAX = 1 * MIB
VIDEO_MAX = 26 * MIB
FILE_MAX = 50 * MIB
_PICTURE_TYPES = {"image/jpeg": {".jpg", ".jpeg"}, "image/png": {".png"}, "image/gif": {".gif"}}


def sender(name: str) -> dict[str, str]:
    """Viber shows `sender.name` above every message and refuses more than 28 characters."""
    return {"name": name.strip()[:SENDER_NAME_LIMIT] or "Switchboard"}


def text_parts(body: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The text in parts of at most `limit` characters, cut at a line break or space when there is one."""
    parts: list[str] = []
    rest = body.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit + 1), rest.rfind(" ", 0, limit + 1))
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _is_picture(a: Attachment) -> bool:
    endings = _PICTURE_TYPES.get(a.content_type.lower(), set())
    small = a.size is None or a.size <= PICTURE_MAX
    return extension(url_name(a.url)) in endings and small


def _is_video(a: Attachment) -> bool:
    mp4 = a.content_type.lower() == "video/mp4" and extension(url_name(a.url)) == ".mp4"
    return mp4 and a.size is not None and a.size <= VIDEO_MAX


def _file_name(a: Attachment) -> str:
    name = (a.filename or url_name(a.url) or "file").replace("/", "_")
    if len(name) <= FILE_NAME_LIMIT:
        return name
    ext = extension(name)[:16]
    return name[: FILE_NAME_LIMIT - len(ext)] + ext


def _media(a: Attachment, caption: str) -> Any:
    """The viberbot model for one attachment."""
    if not a.url:
        raise PermanentJobError(
            "Viber fetches attachments from a public address: set the hub's public URL to send files"
        )
    if _is_picture(a):
        return PictureMessage(media=a.url, text=caption)
    if _is_video(a):
        return VideoMessage(media=a.url, size=a.size)
    if a.size is None:
        raise PermanentJobError(f"the size of {a.filename or 'the file'} is unknown: Viber needs it")
    if a.size > FILE_MAX:
        raise PermanentJobError(f"Viber takes files of at most {FILE_MAX // MIB} MB")
    return FileMessage(media=a.url, size=a.size, file_name=_file_name(a))


def _payload(model: Any, receiver: str, sender_name: str) -> dict[str, Any]:
    if not model.validate():
        raise PermanentJobError("the message lacks what Viber requires")
    data: dict[str, Any] = model.to_dict()
    data |= {"receiver": receiver, "sender": sender(sender_name)}
    return {key: value for key, value in data.items() if value is not None}


def payloads(message: OutboundMessage, sender_name: str) -> list[dict[str, Any]]:
    """Every `send_message` body for this message, in order; the first one's token is the message's id."""
    body = message.body.strip()
    attachments: Sequence[Attachment] = message.attachments
    if not body and not attachments:
        raise PermanentJobError("an empty message cannot be sent")
    caption_fits = bool(attachments) and _is_picture(attachments[0]) and len(body) <= CAPTION_LIMIT
    models: list[Any] = []
    if not caption_fits:
        models += [TextMessage(text=part) for part in text_parts(body)]
    for index, attachment in enumerate(attachments):
        models.append(_media(attachment, body if caption_fits and index == 0 else ""))
    return [_payload(model, message.recipient_id, sender_name) for model in models]
