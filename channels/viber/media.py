"""What kind of file a Viber media message carries, from its file name or the last segment of its URL.

Viber's bot API has no voice message type: a voice note reaches a bot as a `file` (or, from some clients,
a `video`) message whose file is audio — `.m4a` (AAC) from the phone apps. Its type is told by the file's
extension, so a voice note is stored as audio whatever message type carried it. Python's built-in table
(not the machine's `/etc/mime.types`, which differs between hosts) is completed with the audio formats
phones record in.
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import unquote, urlsplit

_TYPES = mimetypes.MimeTypes()  # the built-in table only: the same answer on every machine
_EXTRA = {
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".amr": "audio/amr",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".wav": "audio/wav",
    ".3ga": "audio/3gpp",
    ".3gp": "video/3gpp",
    ".mov": "video/quicktime",
    ".heic": "image/heic",
    ".webp": "image/webp",
}


def url_name(url: str | None) -> str:
    """The last path segment of a URL (`…/media/abc.jpg?Expires=…` → `abc.jpg`)."""
    if not url:
        return ""
    return posixpath.basename(unquote(urlsplit(url).path))


def extension(name: str) -> str:
    return posixpath.splitext(name.lower())[1]


def content_type_of(name: str) -> str | None:
    ext = extension(name)
    if not ext:
        return None
    return _EXTRA.get(ext) or _TYPES.guess_type("f" + ext, strict=False)[0]


def guess(file_name: str | None, url: str | None, default: str) -> tuple[str, str]:
    """(content type, file name) of a received file: the file name Viber gave, else the URL's."""
    name = file_name or url_name(url)
    return content_type_of(name) or content_type_of(url_name(url)) or default, name
