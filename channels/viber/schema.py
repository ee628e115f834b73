"""Viber's callbacks (REST bot API, "Callbacks") as pydantic models, one per `event`, so that a body Viber
would never send becomes `BadPayload` with the field at fault.

viberbot's `create_request` parses the same callbacks, but into untyped objects that raise bare
`Exception`s and drop documented fields (a received file's `file_size`), so it is not used for input.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from channels.base import BadPayload
from channels.schema import invalid


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Model):
    """The customer: `sender` of a message, `user` of subscribed / conversation_started."""

    id: str = Field(min_length=1)
    name: str | None = None
    avatar: str | None = None
    country: str | None = None
    language: str | None = None
    api_version: int | None = None


class Location(_Model):
    lat: float
    lon: float


class SharedContact(_Model):
    name: str | None = None
    phone_number: str | None = None
    avatar: str | None = None


class Message(_Model):
    type: str
    text: str | None = None
    media: str | None = None
    thumbnail: str | None = None
    location: Location | None = None
    contact: SharedContact | None = None
    tracking_data: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    duration: float | None = None
    sticker_id: int | None = None


class _Callback(_Model):
    timestamp: int  # milliseconds since the epoch
    chat_hostname: str | None = None


class WebhookCheck(_Callback):
    """Sent once by `set_webhook` to prove the address answers."""

    event: Literal["webhook"]
    message_token: int | None = None


class MessageCallback(_Callback):
    event: Literal["message"]
    message_token: int
    sender: User
    message: Message
    silent: bool | None = None


class Subscribed(_Callback):
    event: Literal["subscribed"]
    user: User
    message_token: int | None = None


class Unsubscribed(_Callback):
    event: Literal["unsubscribed"]
    user_id: str = Field(min_length=1)
    message_token: int | None = None


class ConversationStarted(_Callback):
    event: Literal["conversation_started"]
    message_token: int
    user: User
    type: str | None = None
    context: str | None = None
    subscribed: bool | None = None


class Receipt(_Callback):
    """delivered / seen / failed: what became of one of our messages (`message_token`)."""

    event: Literal["delivered", "seen", "failed"]
    message_token: int
    user_id: str | None = None
    desc: str | None = None


Callback = WebhookCheck | MessageCallback | Subscribed | Unsubscribed | ConversationStarted | Receipt
EVENTS = frozenset(
    {
        "webhook",
        "message",
        "subscribed",
        "unsubscribed",
        "conversation_started",
        "delivered",
        "seen",
        "failed",
    }
)
_CALLBACK: TypeAdapter[Callback] = TypeAdapter(Annotated[Callback, Field(discriminator="event")])


def parse_callback(payload: Any) -> Callback | None:
    """The callback, or None for an event this hub does not know (Viber may add some: they are not an
    error, and a 400 would only make Viber send them again)."""
    if not isinstance(payload, dict):
        raise BadPayload("a Viber callback is a JSON object")
    event = payload.get("event")
    if not isinstance(event, str):
        raise BadPayload("not a Viber callback: event: a text is required")
    if event not in EVENTS:
        return None
    try:
        return _CALLBACK.validate_python(payload)
    except ValidationError as exc:
        raise invalid(exc, f"Viber {event} callback", skip=1) from None
