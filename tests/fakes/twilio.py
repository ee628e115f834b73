"""A fake Twilio REST API: the SDK's `Client` talks to it through `client.api.base_url = fake.base_url`.

It serves, under `/2010-04-01/Accounts/{AccountSid}`:
- `POST /Messages.json` (form: To, From, Body, MediaUrl…, ContentSid, ContentVariables, StatusCallback):
  201 with the documented Message JSON (sid "SM…", status "queued", num_segments…), after Twilio's own
  checks (21604 no 'To', 21602 / 21619 nothing to send, 21211 invalid 'To', 21617 body over 1600);
- `GET .json` (the account), `GET /IncomingPhoneNumbers.json?PhoneNumber=` (a page),
  `POST /IncomingPhoneNumbers/{PN}.json` (SmsUrl, SmsMethod);
- `GET /Messages/{MM}/Media/{ME}`: a 307 to the CDN (`/cdn/{ME}` on another origin, `localhost`), which
  serves the bytes without credentials — as Twilio's media URLs do.

It checks HTTP basic auth (Account SID + auth token), records every call, answers errors with Twilio's
JSON (`{"code", "message", "more_info", "status"}`) and fails on demand:
`fail("messages", 500, times=2)`, `fail("messages", 400, code=21211)`, `hang("messages", seconds=5)`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from channels.twilio.segments import segments
from tests.fakes._server import Failures, Server

ACCOUNT_SID = "AC" + "3f" * 16
AUTH_TOKEN = "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
FRIENDLY_NAME = "Credit Expres MD"
API = "/2010-04-01/Accounts/{sid}"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21619: "A text message body or media urls must be specified.",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}
_STATUS_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 502: 20500, 503: 20500}


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def sign(url: str, params: Any, token: str = AUTH_TOKEN) -> str:
    """`X-Twilio-Signature` as Twilio computes it for a webhook to `url` with these form parameters."""
    return str(RequestValidator(token).compute_signature(url, params))


@dataclass
class Call:
    endpoint: str  # messages, account, numbers.list, numbers.update, media, cdn
    method: str
    path: str
    user: str  # the basic-auth user (the Account SID), "" when none came
    form: dict[str, str]  # the last value of each parameter
    pairs: list[tuple[str, str]]  # every value, in order (several MediaUrl)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


@dataclass
class _Failure:
    status: int
    code: int
    message: str


@dataclass
class Number:
    sid: str
    phone_number: str
    sms_url: str = ""
    sms_method: str = "POST"


@dataclass
class _Media:
    content: bytes
    content_type: str


@dataclass
class FakeTwilio:
    accounts: dict[str, str] = field(default_factory=lambda: {ACCOUNT_SID: AUTH_TOKEN})
    numbers: dict[str, list[Number]] = field(default_factory=dict)  # account SID -> its phone numbers
    account_status: str = "active"
    calls: list[Call] = field(default_factory=list)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # message SID -> the created Message JSON
    _failures: Failures[_Failure] = field(default_factory=Failures)
    _media: dict[str, _Media] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: Server = field(default_factory=Server)
    base_url: str = ""
    port: int = 0

    # --- set-up ------------------------------------------------------------------------------------

    def fail(
        self, endpoint: str, status: int, *, code: int | None = None, message: str = "", times: int = 1
    ) -> None:
        code = code or _STATUS_CODES.get(status, status)
        text = message or _MESSAGES.get(code, "Error").replace("{to} ", "")
        self._failures.add(endpoint, _Failure(status, code, text), times=times)

    def hang(self, endpoint: str, seconds: float, *, times: int = 1) -> None:
        self._failures.hang(endpoint, seconds, times=times)

    def add_number(self, phone: str, account_sid: str = ACCOUNT_SID, sms_url: str = "") -> Number:
        number = Number(sid("PN"), phone, sms_url)
        self.numbers.setdefault(account_sid, []).append(number)
        return number

    def add_media(self, content: bytes, content_type: str, account_sid: str = ACCOUNT_SID) -> str:
        """A file of an incoming message; returns its MediaUrl as Twilio's webhook gives it."""
        media_sid = sid("ME")
        self._media[media_sid] = _Media(content, content_type)
        return f"{self.base_url}{API.format(sid=account_sid)}/Messages/{sid('MM')}/Media/{media_sid}"

    def calls_of(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def status_callback(
        self, message_sid: str, status: str, *, error_code: int | None = None, error_message: str = ""
    ) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback when its status changes."""
        message = self.sent[message_sid]
        form = {
            "SmsSid": message_sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message["to"],
            "MessageSid": message_sid,
            "AccountSid": message["account_sid"],
            "From": message["from"],
            "ApiVersion": "2010-04-01",
        }
        if message["to"].startswith("whatsapp:"):
            form |= {
                "ChannelPrefix": "whatsapp",
                "ChannelInstallSid": "XE" + "0" * 32,
                "ChannelToAddress": message["to"].removeprefix("whatsapp:")[:-4] + "XXXX",
                "StructuredMessage": "false",
            }
            if status in ("delivered", "read"):
                form["EventType"] = status.upper()
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
            if error_message:
                form["ErrorMessage"] = error_message
        return form

    # --- the server ---------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        root = "/2010-04-01/Accounts/{account}"
        app.router.add_post(root + "/Messages.json", self._messages)
        app.router.add_get(root + ".json", self._account)
        app.router.add_get(root + "/IncomingPhoneNumbers.json", self._numbers)
        app.router.add_post(root + "/IncomingPhoneNumbers/{number}.json", self._number_update)
        app.router.add_get(root + "/Messages/{message}/Media/{media}", self._media_redirect)
        app.router.add_get("/cdn/{media}", self._cdn)
        self.base_url = await self._server.start(app)
        self.port = self._server.port
        return self.base_url

    async def close(self) -> None:
        await self._server.close()

    async def _record(self, endpoint: str, request: web.Request) -> tuple[Call, web.Response | None]:
        """Record the call; the error answer when the credentials are wrong or a failure is queued."""
        pairs: list[tuple[str, str]] = []
        if request.method == "POST":
            pairs = [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
        else:
            pairs = list(request.query.items())
        user, password = _basic_auth(request)
        call = Call(endpoint, request.method, request.path, user, dict(pairs), pairs)
        self.calls.append(call)
        if endpoint != "cdn":
            account = request.match_info["account"]
            if user != account or self.accounts.get(account) != password:
                return call, _error(401, 20003, _MESSAGES[20003])
        failure = await self._failures.next(endpoint)
        if failure is not None:
            return call, _error(failure.status, failure.code, failure.message)
        return call, None

    async def _messages(self, request: web.Request) -> web.Response:
        call, refused = await self._record("messages", request)
        if refused is not None:
            return refused
        form, account = call.form, request.match_info["account"]
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        media = call.all("MediaUrl")
        if not to:
            return _error(400, 21604, _MESSAGES[21604])
        if not sender:
            return _error(400, 21602, "A 'From' phone number is required.")
        if not (body or media or form.get("ContentSid")):
            return _error(400, 21619, _MESSAGES[21619])
        if not _E164.fullmatch(to.removeprefix("whatsapp:")):
            return _error(400, 21211, _MESSAGES[21211].format(to=to))
        if len(body) > 1600:
            return _error(400, 21617, _MESSAGES[21617])
        message_sid = ("MM" if media else "SM") + f"{next(self._ids):032x}"
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        message = {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": None,
            "num_media": str(len(media)),
            "num_segments": str(max(segments(body).parts, 1)),
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "queued",
            "subresource_uris": {"media": f"{API.format(sid=account)}/Messages/{message_sid}/Media.json"},
            "to": to,
            "uri": f"{API.format(sid=account)}/Messages/{message_sid}.json",
        }
        self.sent[message_sid] = message
        return web.json_response(message, status=201)

    async def _account(self, request: web.Request) -> web.Response:
        _, refused = await self._record("account", request)
        if refused is not None:
            return refused
        account = request.match_info["account"]
        return web.json_response(
            {
                "auth_token": "[Redacted]",
                "date_created": "Wed, 04 Aug 2021 09:00:00 +0000",
                "date_updated": "Wed, 04 Aug 2021 09:00:00 +0000",
                "friendly_name": FRIENDLY_NAME,
                "owner_account_sid": account,
                "sid": account,
                "status": self.account_status,
                "subresource_uris": {},
                "type": "Full",
                "uri": f"{API.format(sid=account)}.json",
            }
        )

    def _number_json(self, account: str, number: Number) -> dict[str, Any]:
        return {
            "account_sid": account,
            "sid": number.sid,
            "phone_number": number.phone_number,
            "friendly_name": number.phone_number,
            "sms_url": number.sms_url,
            "sms_method": number.sms_method,
            "capabilities": {"sms": True, "mms": False, "voice": True, "fax": False},
            "status": "in-use",
            "uri": f"{API.format(sid=account)}/IncomingPhoneNumbers/{number.sid}.json",
        }

    async def _numbers(self, request: web.Request) -> web.Response:
        call, refused = await self._record("numbers.list", request)
        if refused is not None:
            return refused
        account = request.match_info["account"]
        wanted = call.form.get("PhoneNumber")
        found = [n for n in self.numbers.get(account, []) if wanted in (None, n.phone_number)]
        uri = f"{API.format(sid=account)}/IncomingPhoneNumbers.json?PageSize=50&Page=0"
        return web.json_response(
            {
                "end": max(len(found) - 1, 0),
                "first_page_uri": uri,
                "incoming_phone_numbers": [self._number_json(account, n) for n in found],
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def _number_update(self, request: web.Request) -> web.Response:
        call, refused = await self._record("numbers.update", request)
        if refused is not None:
            return refused
        account = request.match_info["account"]
        for number in self.numbers.get(account, []):
            if number.sid == request.match_info["number"]:
                number.sms_url = call.form.get("SmsUrl", number.sms_url)
                number.sms_method = call.form.get("SmsMethod", number.sms_method)
                return web.json_response(self._number_json(account, number))
        return _error(404, 20404, _MESSAGES[20404])

    async def _media_redirect(self, request: web.Request) -> web.Response:
        _, refused = await self._record("media", request)
        if refused is not None:
            return refused
        media = request.match_info["media"]
        if media not in self._media:
            return _error(404, 20404, _MESSAGES[20404])
        raise web.HTTPTemporaryRedirect(f"http://localhost:{self.port}/cdn/{media}")

    async def _cdn(self, request: web.Request) -> web.Response:
        await self._record("cdn", request)
        media = self._media.get(request.match_info["media"])
        if media is None:
            raise web.HTTPNotFound()
        return web.Response(body=media.content, content_type=media.content_type)


def _basic_auth(request: web.Request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )
