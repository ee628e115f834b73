"""The website chat widget as a channel: the widget's settings, who may talk through it, and the two
directions of a message.

The widget's key is public (it is in the site's HTML), so what protects a widget is the browser's `Origin`
header checked against the widget's allow-list, per-visitor rate limits and a size limit. A visitor is an
anonymous id the browser keeps in localStorage; a message carries a client-generated id, so a retried send
is stored once. Provider ids are namespaced by visitor (`<visitor>:<message>` in, `<visitor>:agent:<id>`
out) so that a visitor reads back only their own exchange, even when a phone number links them to an
existing contact.

"Is anyone there?" is answered by `agents_online()`: someone who can answer chats made a request with a
live web session in the last five minutes. It is a stand-in until the router tracks presence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage, MessageKind, OutboundMessage, Sent, VisitSource
from channels.webchat_model import ANY_ORIGIN, WebchatWidget, new_public_key
from switchboard import accounts, audit
from switchboard.accounts_model import Branch
from switchboard.audit import Actor
from switchboard.bus import EventBus
from switchboard.db import utcnow
from switchboard.errors import N_, Invalid, NotFound
from switchboard.jobs import PermanentJobError

CHANNEL = Channel.WEBCHAT
MAX_BODY = 2000
MAX_REQUEST_BYTES = 16 * 1024
LANGUAGES = ("ro", "en", "ru")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Ids the browser makes up (crypto.randomUUID()): no ':' (our separator), no '_' or '%' (LIKE wildcards).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class WebchatError(Exception):
    """A request the widget endpoints refuse; `status` is the HTTP answer, `reason` tells the developer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- the widget's settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetConfig:
    id: int
    public_key: str
    name: str
    allowed_origins: tuple[str, ...]
    colour: str
    greeting: str
    language: str
    position: str
    prechat: bool
    branch_id: int | None
    active: bool = True

    @property
    def account_id(self) -> str:
        """The channel account of its messages: the row id, so rotating the public key keeps every
        visitor's identity."""
        return str(self.id)

    def public_json(self, *, online: bool) -> dict[str, Any]:
        """What any page may read: looks and whether someone is there, nothing about the allow-list."""
        return {
            "colour": self.colour if _COLOUR.match(self.colour) else "#206bc4",
            "greeting": self.greeting,
            "language": self.language if self.language in LANGUAGES else "en",
            "position": "left" if self.position == "left" else "right",
            "prechat": self.prechat,
            "online": online,
        }


def widget_config(row: WebchatWidget) -> WidgetConfig:
    return WidgetConfig(
        id=row.id,
        public_key=row.public_key,
        name=row.name,
        allowed_origins=tuple(row.allowed_origins or ()),
        colour=row.colour,
        greeting=row.greeting,
        language=row.language,
        position=row.position,
        prechat=row.prechat,
        branch_id=row.branch_id,
        active=row.active,
    )


async def find_widget(session: AsyncSession, public_key: str) -> WidgetConfig | None:
    """The active widget with this key; an unknown, inactive or malformed key is simply not found."""
    if not public_key or len(public_key) > 64:
        return None
    row = await session.scalar(
        select(WebchatWidget).where(WebchatWidget.public_key == public_key, WebchatWidget.active.is_(True))
    )
    return widget_config(row) if row is not None else None


async def create_widget(
    session: AsyncSession,
    *,
    name: str,
    allowed_origins: str | list[str],
    colour: str = "#206bc4",
    greeting: str = "",
    language: str = "ro",
    position: str = "right",
    prechat: bool = False,
    branch_id: int | None = None,
    actor: Actor | None = None,
) -> WidgetConfig:
    """A new widget; origins are stored normalised so that the check is an exact comparison. Bad input
    raises `WidgetInvalid` (a `ValueError` and an `Invalid` naming the field); with an `actor` the
    creation is audited."""
    fields = await _checked_fields(
        session,
        name=name,
        allowed_origins=allowed_origins,
        colour=colour,
        greeting=greeting,
        language=language,
        position=position,
        prechat=prechat,
        branch_id=branch_id,
    )
    row = WebchatWidget(**fields)
    session.add(row)
    await session.flush()
    if actor is not None:
        await audit.record(
            session,
            actor,
            category=audit.Category.ADMIN,
            module=AUDIT_MODULE,
            action=audit.AuditAction.CREATE,
            record_type=AUDIT_RECORD,
            record_id=row.id,
            changes=audit.diff({}, _audited(row)),
        )
    return widget_config(row)


# --- administering widgets ------------------------------------------------------------------------------

AUDIT_MODULE = "channels"
AUDIT_RECORD = "webchat_widget"
MAX_ORIGINS = 50
DEMO_WIDGET_NAME = "Demo site"


class WidgetInvalid(Invalid, ValueError):
    """A widget setting that cannot be stored; `field` names the form field, the message is a msgid."""


def parse_origins(lines: str | list[str]) -> list[str]:
    """The allow-list as typed (one origin per line, or a list): normalised, blank lines and repeats
    dropped; `*` (any site) is kept as it is."""
    raw = lines.splitlines() if isinstance(lines, str) else lines
    origins: list[str] = []
    for line in raw:
        origin = line.strip()
        if not origin:
            continue
        normal = ANY_ORIGIN if origin == ANY_ORIGIN else normalise_origin(origin)
        if normal is None:
            raise WidgetInvalid(
                N_("Not a website address: %(origin)s. Write scheme://host[:port], e.g. https://example.md."),
                field="allowed_origins",
                origin=origin[:100],
            )
        if normal not in origins:
            origins.append(normal)
    if len(origins) > MAX_ORIGINS:
        raise WidgetInvalid(N_("At most %(n)s allowed origins."), field="allowed_origins", n=MAX_ORIGINS)
    return origins


async def _checked_fields(
    session: AsyncSession,
    *,
    name: str,
    allowed_origins: str | list[str],
    colour: str,
    greeting: str,
    language: str,
    position: str,
    prechat: bool,
    branch_id: int | None,
) -> dict[str, Any]:
    name, greeting = name.strip(), greeting.strip()
    if not name:
        raise WidgetInvalid(N_("Give the widget a name."), field="name")
    if len(name) > 120:
        raise WidgetInvalid(N_("At most %(n)s characters."), field="name", n=120)
    if len(greeting) > 300:
        raise WidgetInvalid(N_("At most %(n)s characters."), field="greeting", n=300)
    if not _COLOUR.match(colour):
        raise WidgetInvalid(N_("Choose a colour such as #206bc4."), field="colour")
    if language not in LANGUAGES:
        raise WidgetInvalid(N_("Unknown language."), field="language")
    if position not in ("left", "right"):
        raise WidgetInvalid(N_("Choose left or right."), field="position")
    if branch_id is not None and await session.get(Branch, branch_id) is None:
        raise WidgetInvalid(N_("No such branch."), field="branch_id")
    return {
        "name": name,
        "allowed_origins": parse_origins(allowed_origins),
        "colour": colour.lower(),
        "greeting": greeting,
        "language": language,
        "position": position,
        "prechat": prechat,
        "branch_id": branch_id,
    }


def _audited(row: WebchatWidget) -> dict[str, Any]:
    """What the audit log shows of a widget; the key is public, but only its end is needed to tell two
    apart."""
    return {
        "name": row.name,
        "allowed_origins": " ".join(row.allowed_origins or ()),
        "colour": row.colour,
        "greeting": row.greeting,
        "language": row.language,
        "position": row.position,
        "prechat": row.prechat,
        "branch_id": row.branch_id,
        "active": row.active,
    }


async def _row(session: AsyncSession, widget_id: int) -> WebchatWidget:
    row = await session.get(WebchatWidget, widget_id)
    if row is None:
        raise NotFound(N_("No such widget."))
    return row


async def list_widgets(session: AsyncSession) -> list[WidgetConfig]:
    """Every widget, active or not, by name."""
    rows = await session.scalars(select(WebchatWidget).order_by(WebchatWidget.name, WebchatWidget.id))
    return [widget_config(row) for row in rows]


async def get_widget(session: AsyncSession, widget_id: int) -> WidgetConfig:
    """A widget by id, active or not; `NotFound` otherwise."""
    return widget_config(await _row(session, widget_id))


async def find_widget_named(
    session: AsyncSession, name: str, *, active_only: bool = True
) -> WidgetConfig | None:
    """The oldest (active) widget with this exact name: the demo looks its widget up so."""
    query = select(WebchatWidget).where(WebchatWidget.name == name)
    if active_only:
        query = query.where(WebchatWidget.active.is_(True))
    row = await session.scalar(query.order_by(WebchatWidget.id).limit(1))
    return widget_config(row) if row is not None else None


async def update_widget(
    session: AsyncSession,
    actor: Actor,
    widget_id: int,
    *,
    name: str,
    allowed_origins: str | list[str],
    colour: str,
    greeting: str,
    language: str,
    position: str,
    prechat: bool,
    branch_id: int | None,
    active: bool,
) -> WidgetConfig:
    """Change every setting of a widget (its key stays), audited with the fields that changed."""
    row = await _row(session, widget_id)
    fields = await _checked_fields(
        session,
        name=name,
        allowed_origins=allowed_origins,
        colour=colour,
        greeting=greeting,
        language=language,
        position=position,
        prechat=prechat,
        branch_id=branch_id,
    )
    before = _audited(row)
    for key, value in fields.items():
        setattr(row, key, value)
    row.active = active
    await session.flush()
    changes = audit.diff(before, _audited(row))
    if changes:
        await audit.record(
            session,
            actor,
            category=audit.Category.ADMIN,
            module=AUDIT_MODULE,
            action=audit.AuditAction.UPDATE,
            record_type=AUDIT_RECORD,
            record_id=row.id,
            changes=changes,
        )
    return widget_config(row)


async def regenerate_key(session: AsyncSession, actor: Actor, widget_id: int) -> WidgetConfig:
    """A new public key for the widget: the old snippet stops working at once. The row (and so the
    channel account id of its conversations) stays, so returning visitors keep their identity."""
    row = await _row(session, widget_id)
    old = row.public_key
    row.public_key = new_public_key()
    await session.flush()
    await audit.record(
        session,
        actor,
        category=audit.Category.ADMIN,
        module=AUDIT_MODULE,
        action=audit.AuditAction.UPDATE,
        record_type=AUDIT_RECORD,
        record_id=row.id,
        changes={"public_key": [f"…{old[-4:]}", f"…{row.public_key[-4:]}"]},
        detail="public key regenerated",
    )
    return widget_config(row)


def demo_origins(port: int) -> list[str]:
    """The demo widget's allow-list: the demo hub's own address (the demo site is served by the hub)."""
    return [f"http://{host}:{port}" for host in ("127.0.0.1", "localhost")]


def embed_snippet(base_url: str, widget: WidgetConfig) -> str:
    """The tag a site pastes into its pages; `base_url` is the hub's address as browsers reach it."""
    return f'<script src="{base_url.rstrip("/")}/widget.js" data-key="{widget.public_key}" async></script>'


# --- who may talk through it ----------------------------------------------------------------------------


def normalise_origin(value: str | None) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None for anything else (including
    the `null` origin of sandboxed frames and file:// pages)."""
    if not value or len(value) > 300:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_origin(widget: WidgetConfig, origin: str | None) -> str:
    """The caller's origin if the widget allows it; otherwise a 403. No Origin header is refused too:
    browsers always send one across sites, so its absence means a script, not a visitor's page."""
    normal = normalise_origin(origin)
    if normal is None:
        raise WebchatError(403, "this widget answers only browsers on its allowed sites (no valid Origin)")
    if ANY_ORIGIN not in widget.allowed_origins and normal not in widget.allowed_origins:
        raise WebchatError(403, f"origin {normal} is not allowed for this widget")
    assert origin is not None
    return origin


class RateLimiter:
    """Token buckets in this process's memory: `capacity` requests at once, refilled at
    capacity / `per_seconds` a second. Several hub processes each allow the full rate, which is fine for
    what this guards against (a stuck loop or a noisy visitor), not for billing."""

    def __init__(
        self,
        capacity: int,
        per_seconds: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (they are the same as no bucket); if every visitor is
        active at once, forget the oldest half rather than grow without bound."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for key in by_age[: len(by_age) // 2]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class OnlineStatus:
    """`agents_online() > 0`, remembered for a few seconds: every widget on every page asks."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ttl: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.clock = clock
        self._value: bool | None = None
        self._at = 0.0

    async def online(self) -> bool:
        now = self.clock()
        if self._value is None or now - self._at > self.ttl:
            async with self.sessions() as session:
                self._value = await accounts.agents_online(session) > 0
            self._at = now
        return self._value

    def forget(self) -> None:
        self._value = None


# --- a visitor's message in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitorPost:
    visitor_id: str
    message_id: str
    body: str
    name: str | None = None
    phone: str | None = None
    language: str | None = None
    source: VisitSource | None = None


def client_id(data: Mapping[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise WebchatError(422, f"{field} must be 8-64 letters, digits or dashes (a UUID)")
    return value


def _text(data: Mapping[str, Any], field: str, limit: int, *, truncate: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebchatError(422, f"{field} must be text")
    value = value.strip()
    if len(value) > limit:
        if not truncate:
            raise WebchatError(422, f"{field} is longer than {limit} characters")
        value = value[:limit]
    return value or None


def _source(data: Mapping[str, Any]) -> VisitSource | None:
    utm = data.get("utm") or {}
    if not isinstance(utm, Mapping):
        raise WebchatError(422, "utm must be an object")
    fields = {
        name: _text(utm, name, 200, truncate=True)
        or _text(utm, name.removeprefix("utm_"), 200, truncate=True)
        for name in UTM_FIELDS
    }
    source = VisitSource(
        page_url=_text(data, "page_url", 2000, truncate=True),
        referrer=_text(data, "referrer", 2000, truncate=True),
        **fields,
    )
    return source if source != VisitSource() else None


def parse_visitor_post(data: object) -> VisitorPost:
    """Validate what the widget sends; the body limit answers 413 so the widget can say "too long"."""
    if not isinstance(data, Mapping):
        raise WebchatError(400, "expected a JSON object")
    body = data.get("body")
    if not isinstance(body, str):
        raise WebchatError(422, "body must be text")
    body = body.strip()
    if not body:
        raise WebchatError(422, "body is empty")
    if len(body) > MAX_BODY:
        raise WebchatError(413, f"the message is longer than {MAX_BODY} characters")
    language = data.get("language")
    return VisitorPost(
        visitor_id=client_id(data, "visitor_id"),
        message_id=client_id(data, "message_id"),
        body=body,
        name=_text(data, "name", 200),
        phone=_text(data, "phone", 40),
        language=language if language in LANGUAGES else None,
        source=_source(data),
    )


def inbound_external_id(visitor_id: str, message_id: str) -> str:
    return f"{visitor_id}:{message_id}"


def visitor_prefix(visitor_id: str) -> str:
    """Every provider id of one visitor's exchange starts with this."""
    return f"{visitor_id}:"


def to_inbound(widget: WidgetConfig, post: VisitorPost) -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL,
        account_id=widget.account_id,
        external_id=inbound_external_id(post.visitor_id, post.message_id),
        sender_id=post.visitor_id,
        body=post.body,
        sender_name=post.name,
        sender_phone=post.phone,
        sent_at=utcnow(),
        source=post.source,
        language=post.language or widget.language,
    )


def client_message_id(external_id: str | None) -> str | None:
    """The browser's own id of a message it sent (None for the agent's replies), for de-duplication."""
    if not external_id:
        return None
    _, _, rest = external_id.partition(":")
    return rest if rest and ":" not in rest else None


# --- the agent's reply out ---------------------------------------------------------------------------------


def visitor_topic(account_id: str, visitor_id: str) -> str:
    """The bus topic a visitor's socket listens on, in whichever hub process holds it."""
    return f"webchat.out.{account_id}.{visitor_id}"


def outbound_external_id(visitor_id: str, message_id: int) -> str:
    return f"{visitor_id}:agent:{message_id}"


Sender = Callable[[OutboundMessage], Awaitable[Sent]]


def make_sender(bus: EventBus) -> Sender:
    """The Delivery sender for WEBCHAT. Pushing is best-effort (the visitor may have closed the tab);
    the returned id makes the reply readable by polling and by the history on the next page load."""

    async def send(message: OutboundMessage) -> Sent:
        if message.kind is MessageKind.NOTE:  # Delivery never hands us one; a note must never leave
            raise PermanentJobError("a private note is never sent to a visitor")
        if not _CLIENT_ID.match(message.recipient_id):
            raise PermanentJobError(f"not a web chat visitor id: {message.recipient_id!r}")
        await bus.publish(
            visitor_topic(message.account_id, message.recipient_id),
            {
                "type": "message",
                "message": {
                    "id": message.message_id,
                    "direction": "out",
                    "kind": message.kind.value,
                    "body": message.body,
                    "created_at": utcnow().isoformat(),
                    "client_id": None,
                },
            },
        )
        return Sent(outbound_external_id(message.recipient_id, message.message_id))

    return send


async def publish_typing(bus: EventBus, account_id: str, visitor_id: str, *, typing: bool = True) -> None:
    """For the agent workspace: show "typing…" in the visitor's widget."""
    await bus.publish(visitor_topic(account_id, visitor_id), {"type": "typing", "typing": typing})
