"""The file store: attachments kept under one directory (`Settings.files_root`), named by random ids.

A file is streamed in chunks to a temporary file (its size limit enforced while it arrives), its type is
decided from its first bytes against an allow-list (the type a browser declares is only a hint), and it is
renamed into place only once it passed every check, so a half-written or refused file is never visible.
Markup (HTML, SVG, XML) and programs are refused: served from our origin they could run scripts as the
agent who opens them. Stored files are found by id only, so no caller-supplied name ever reaches a path.

All disk work runs in a thread (`asyncio.to_thread`): the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import unicodedata
import zipfile
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from switchboard.errors import N_, Invalid, NotFound, TooLarge

CHUNK = 64 * 1024
SNIFF_BYTES = 8 * 1024
MAX_FILENAME = 120
_TMP = ".incoming"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_-]{2}/[A-Za-z0-9_-]{16,64}$")

# What the store accepts (the type it records is the one sniffed, never the one declared).
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "application/pdf",
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/webm",
        "video/mp4",
        "video/webm",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "text/plain",
        "text/csv",
    }
)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/webm": ".webm",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    DOCX: ".docx",
    XLSX: ".xlsx",
    "text/plain": ".txt",
    "text/csv": ".csv",
}
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE / DOS
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both word sizes and byte orders, and fat binaries
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"#!",  # scripts
    b"\x00asm",  # WebAssembly
)
_MARKUP_SIGNS = (
    b"<!doctype",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<svg",
    b"<?xml",
    b"<iframe",
    b"<object",
    b"<embed",
    b"<meta",
    b"<img",
    b"<a ",
    b"<style",
    b"<link",
    b"<form",
    b"javascript:",
)

REFUSED_PROGRAM = N_("Programs and scripts cannot be uploaded.")
REFUSED_MARKUP = N_("Web pages, SVG and XML files cannot be uploaded: they could run scripts in the browser.")
REFUSED_TYPE = N_(
    "This kind of file is not accepted. Send a picture, PDF, audio or video clip, Word or Excel document "
    "or plain text."
)
REFUSED_MACROS = N_("Documents with macros cannot be uploaded.")
REFUSED_EMPTY = N_("The file is empty.")
TOO_LARGE = N_("The file is larger than %(limit)s MB.")

Source = bytes | AsyncIterable[bytes]


@dataclass(frozen=True)
class StoredFile:
    """A file in the store. `path` is relative to the store's root; `id` is what URLs carry."""

    id: str
    path: str
    content_type: str
    size: int
    sha256: str
    filename: str


def valid_id(file_id: str) -> bool:
    return bool(_ID_RE.fullmatch(file_id))


def sanitize_filename(name: str | None, content_type: str = "") -> str:
    """A display name safe in a header and on any disk: no directories, control or odd characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in ("C", "Z") or c == " ")
    name = re.sub(r"[<>:\"|?*;%]", "_", name)
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_FILENAME - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_FILENAME].rstrip(" .")
    return name or "file" + _EXTENSIONS.get(content_type, "")


def sniff(head: bytes, declared_type: str | None) -> str:
    """The content type of a file starting with `head`, or `Invalid` with the reason it is refused.
    A zip container comes back as `application/zip`: only its directory tells a document from an
    archive (see `_office_type`)."""
    declared = (declared_type or "").split(";", 1)[0].strip().lower()
    if not head:
        raise Invalid(REFUSED_EMPTY, field="file")
    if head.startswith(_EXECUTABLE_MAGIC):
        raise Invalid(REFUSED_PROGRAM, field="file")
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        audio = head[8:12] in (b"M4A ", b"M4B ") or declared.startswith("audio/")
        return "audio/mp4" if audio else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" not in head[:64]:
            raise Invalid(REFUSED_TYPE, field="file")
        return "audio/webm" if declared.startswith("audio/") else "video/webm"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return _text_type(head, declared)


def _text_type(head: bytes, declared: str) -> str:
    lowered = head.lower()
    stripped = lowered.lstrip(b"\xef\xbb\xbf \t\r\n\x0c")
    if stripped.startswith(b"<") or any(sign in lowered for sign in _MARKUP_SIGNS):
        raise Invalid(REFUSED_MARKUP, field="file")
    if b"\x00" in head:
        raise Invalid(REFUSED_TYPE, field="file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut in two by the end of the sample
            raise Invalid(REFUSED_TYPE, field="file") from exc
    if any(b < 0x20 and b not in b"\t\n\r\x0c" for b in head):
        raise Invalid(REFUSED_TYPE, field="file")
    return "text/csv" if declared == "text/csv" else "text/plain"


def _office_type(path: Path) -> str:
    """A zip that is a Word or Excel document (without macros); anything else in a zip is refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise Invalid(REFUSED_TYPE, field="file") from exc
    if "[Content_Types].xml" not in names:
        raise Invalid(REFUSED_TYPE, field="file")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise Invalid(REFUSED_MACROS, field="file")
    if any(n.startswith("word/") for n in names):
        return DOCX
    if any(n.startswith("xl/") for n in names):
        return XLSX
    raise Invalid(REFUSED_TYPE, field="file")


class FileStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @property
    def limit_mb(self) -> int:
        return max(1, self.max_bytes // (1024 * 1024))

    async def save(self, source: Source, declared_type: str | None, filename: str | None) -> StoredFile:
        """Store `source` (bytes, or an async iterable of chunks such as a multipart field). Raises
        `TooLarge` past the limit and `Invalid` for a type the store does not accept; either way nothing
        is left on disk."""
        file_id = secrets.token_urlsafe(24)
        relative = f"{file_id[:2]}/{file_id}"
        tmp_dir = self.root / _TMP
        tmp = tmp_dir / f"{file_id}.part"
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        handle: BinaryIO = await asyncio.to_thread(_create, tmp)
        try:
            size, digest, content_type = await self._receive(handle, source, declared_type)
            await asyncio.to_thread(handle.close)
            if content_type == "application/zip":
                content_type = await asyncio.to_thread(_office_type, tmp)
            final = self.root / relative
            await asyncio.to_thread(_move_into_place, tmp, final)
        except BaseException:
            await asyncio.to_thread(_discard, handle, tmp)
            raise
        return StoredFile(
            id=file_id,
            path=relative,
            content_type=content_type,
            size=size,
            sha256=digest,
            filename=sanitize_filename(filename, content_type),
        )

    async def _receive(
        self, handle: BinaryIO, source: Source, declared_type: str | None
    ) -> tuple[int, str, str]:
        hasher = hashlib.sha256()
        size = 0
        head = b""
        content_type: str | None = None
        async for chunk in _chunks(source):
            if not chunk:
                continue
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLarge(TOO_LARGE, field="file", limit=self.limit_mb)
            if content_type is None:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    content_type = sniff(head, declared_type)  # refuse before reading the rest
            hasher.update(chunk)
            await asyncio.to_thread(handle.write, chunk)
        if content_type is None:
            content_type = sniff(head, declared_type)
        await asyncio.to_thread(_flush, handle)
        return size, hasher.hexdigest(), content_type

    def locate(self, path: str) -> Path:
        """The file behind a stored `path` (as `save()` returned it): `NotFound` for anything else, so
        no `..`, absolute path or symlink trick can leave the root."""
        if not _PATH_RE.fullmatch(path) or path[:2] != path[3:5]:
            raise NotFound(N_("No such file."))
        return self.root / path

    async def open(self, path: str) -> BinaryIO:
        """An open binary file for a stored `path`; the caller closes it."""
        target = self.locate(path)
        try:
            return await asyncio.to_thread(target.open, "rb")
        except FileNotFoundError as exc:
            raise NotFound(N_("No such file.")) from exc

    async def exists(self, path: str) -> bool:
        try:
            target = self.locate(path)
        except NotFound:
            return False
        return await asyncio.to_thread(target.is_file)

    async def delete(self, path: str) -> None:
        target = self.locate(path)
        await asyncio.to_thread(target.unlink, missing_ok=True)


async def _chunks(source: Source) -> AsyncIterable[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
        return
    async for chunk in source:
        yield bytes(chunk)


def _create(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _move_into_place(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def _discard(handle: BinaryIO, tmp: Path) -> None:
    with contextlib.suppress(OSError):
        handle.close()
    tmp.unlink(missing_ok=True)


Reader = Callable[[], Awaitable[bytes]]


async def read_chunks(read: Reader) -> AsyncIterable[bytes]:
    """Adapt a `read_chunk()`-style coroutine (such as a multipart field's) to an async iterable."""
    while chunk := await read():
        yield chunk
