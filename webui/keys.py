"""Typed application keys: the resources `build_app` puts on the aiohttp application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.accounts import Adapters
from channels.asterisk.ami import AmiConnection
from channels.secrets import SecretBox
from inbox.calls import CallLog
from inbox.delivery import Delivery
from inbox.service import Inbox
from router.engine import Router
from scripts_engine.service import ScriptsService
from switchboard.accounts import LoginPolicy
from switchboard.bus import EventBus
from switchboard.files import FileStore
from switchboard.jobs import JobRegistry, Worker
from switchboard.settings import Settings

if TYPE_CHECKING:
    from webui.routes_spec import RouteSpec

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", EventBus)
JOBS = web.AppKey("jobs", JobRegistry)
WORKER = web.AppKey("worker", Worker)
LOGIN_POLICY = web.AppKey("login_policy", LoginPolicy)
INBOX = web.AppKey("inbox", Inbox)
DELIVERY = web.AppKey("delivery", Delivery)
FILES = web.AppKey("files", FileStore)
CHANNEL_ADAPTERS = web.AppKey("channel_adapters", Adapters)
CHANNEL_SECRETS = web.AppKey("channel_secrets", SecretBox)
ROUTER = web.AppKey("router", Router)
ROUTE_SPECS = web.AppKey("route_specs", dict[str, "RouteSpec"])
# telephony: this process's AMI connection (None when `ami_host` is unset) for click-to-call and spy, and
# the call log its events feed (only in the process that holds the AMI leadership)
AMI = web.AppKey[AmiConnection | None]("ami")
CALL_LOG = web.AppKey("call_log", CallLog)
SCRIPTS = web.AppKey("scripts", ScriptsService)  # sales scripts: authoring, runs, analytics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
