"""Provider webhooks as the providers send them, signed as they sign them, each with fresh ids so that
every request is a new message (the benchmark measures ingest, not the duplicate check).

One builder per payload shape: a Telegram update (JSON + secret-token header), a Twilio WhatsApp message
(form + X-Twilio-Signature over URL and fields), a Viber callback (JSON + HMAC of the body) and a Meta
Messenger event (JSON + X-Hub-Signature-256).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

TELEGRAM_TOKEN = "7000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"
TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "bench-twilio-auth-token-0123456789"
META_PAGE = "104816512345678"
META_APP_SECRET = "bench-meta-app-secret"

_counter = itertools.count(1)


@dataclass(frozen=True)
class Hook:
    body: bytes
    headers: dict[str, str]


Builder = Callable[[str, str], Hook]  # (webhook url, text) -> a signed request


def telegram(url: str, text: str, *, secret: str) -> Hook:
    n = next(_counter)
    chat = 10_000_000 + n  # a new customer each time: the costlier path (contact, lead, conversation)
    update = {
        "update_id": n,
        "message": {
            "message_id": n,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Ion"},
            "from": {"id": chat, "is_bot": False, "first_name": "Ion", "language_code": "ro"},
            "text": text,
        },
    }
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    return Hook(json.dumps(update).encode(), headers)


def twilio_whatsapp(url: str, text: str, *, phone: str) -> Hook:
    n = next(_counter)
    sender = f"+3736{n:07d}"
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": TWILIO_SID,
        "From": f"whatsapp:{sender}",
        "To": f"whatsapp:{phone}",
        "Body": text,
        "NumMedia": "0",
        "ProfileName": "Ion",
        "WaId": sender.removeprefix("+"),
    }
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return Hook(urlencode(form).encode(), headers)


def viber(url: str, text: str) -> Hook:
    n = next(_counter)
    event = {
        "event": "message",
        "timestamp": int(time.time() * 1000),
        "message_token": 5_000_000_000_000_000_000 + n,
        "sender": {
            "id": f"bench{n:012d}==",
            "name": "Ion",
            "language": "ro",
            "country": "MD",
            "api_version": 10,
        },
        "message": {"type": "text", "text": text},
    }
    body = json.dumps(event).encode()
    signature = hmac.new(VIBER_TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return Hook(body, {"Content-Type": "application/json", "X-Viber-Content-Signature": signature})


def meta_messenger(url: str, text: str) -> Hook:
    n = next(_counter)
    now = int(time.time() * 1000)
    event = {
        "object": "page",
        "entry": [
            {
                "id": META_PAGE,
                "time": now,
                "messaging": [
                    {
                        "sender": {"id": f"{7_000_000_000_000_000 + n}"},
                        "recipient": {"id": META_PAGE},
                        "timestamp": now,
                        "message": {"mid": f"m_{uuid.uuid4().hex}", "text": text},
                    }
                ],
            }
        ],
    }
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(META_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return Hook(body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})
