"""The composition root: `build_app(settings)` wires storage, bus, jobs and the web edge together.

Every long-lived resource starts and stops in a `cleanup_ctx`, in dependency order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from channels.accounts import Adapters
from channels.asterisk.agi import AgiServer, start_agi_server
from channels.asterisk.ami import AmiConnection
from channels.asterisk.leader import AmiLeader
from channels.providers import PROVIDERS
from channels.secrets import SecretBox
from crm_core import imports, scoring
from inbox.calls import CallLog
from inbox.calls_routing import CallRouting
from inbox.delivery import Delivery
from inbox.media import MediaFetch
from inbox.routing import Routing
from inbox.service import Inbox
from router.engine import Router
from router.model import Decision, RouterSettings
from scripts_engine.service import ScriptsService
from switchboard import accounts, migrate
from switchboard.accounts import LoginPolicy
from switchboard.bus import create_bus
from switchboard.db import create_engine, create_sessionmaker, transaction
from switchboard.files import FileStore
from switchboard.jobs import JobRegistry, Worker
from switchboard.redact import redact_url
from switchboard.scripts_crm import CrmAdapter
from switchboard.settings import Settings
from webui import keys
from webui.errors import error_middleware
from webui.live import setup_live
from webui.metrics import metrics_middleware
from webui.routes import setup_routes
from webui.security import security_middleware
from webui.templating import setup_templates
from webui.views.widget import setup_webchat

log = logging.getLogger(__name__)
SESSION_COOKIE = "sb_session"
HOUSEKEEPING_SECONDS = 300.0


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        max_failures=settings.login_max_failures,
        lockout=dt.timedelta(minutes=settings.login_lockout_minutes),
        idle=dt.timedelta(minutes=settings.session_idle_minutes),
        max_age=dt.timedelta(hours=settings.session_max_hours),
    )


def router_settings(settings: Settings) -> RouterSettings:
    return RouterSettings(
        default_capacity=settings.routing_default_capacity,
        wrap_up_seconds=settings.routing_wrap_up_seconds,
        absence_grace_seconds=settings.routing_absence_grace_seconds,
        give_back=settings.routing_give_back,
        heartbeat_timeout_seconds=settings.routing_idle_away_seconds,
    )


def _cookie_storage(settings: Settings) -> EncryptedCookieStorage:
    fernet_key = hashlib.sha256(b"switchboard-session:" + settings.secret).digest()  # 32 raw bytes
    return EncryptedCookieStorage(
        fernet_key,
        cookie_name=SESSION_COOKIE,
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        max_age=None,  # the server-side session decides when a login ends
    )


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    if settings.auto_migrate:
        log.info("applying migrations to %s", redact_url(settings.database_url))
        await migrate.upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    app[keys.ENGINE] = engine
    app[keys.SESSIONS] = create_sessionmaker(engine)
    yield
    await engine.dispose()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    bus = create_bus(settings.bus, settings.redis_url)
    await bus.start()
    app[keys.BUS] = bus
    yield
    await bus.close()


async def _inbox(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    inbox = Inbox(app[keys.SESSIONS], app[keys.BUS], region=settings.default_region)
    delivery = Delivery(inbox)
    delivery.register(app[keys.JOBS])
    app[keys.INBOX], app[keys.DELIVERY] = inbox, delivery
    routing: list[Routing] = []

    async def on_decision(decision: Decision) -> None:
        for hook in routing:
            await hook.apply(decision)

    router = Router(app[keys.SESSIONS], settings=router_settings(settings), on_decision=on_decision)
    app[keys.ROUTER] = router
    ticker = None
    if settings.routing:
        routing.append(Routing(inbox, router))
        routing[0].register(app[keys.JOBS])
        inbox.router = router
        if settings.run_worker:
            ticker = asyncio.create_task(
                _route_ticks(router, settings.routing_tick_seconds), name="router-tick"
            )
    yield
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    await inbox.close()


async def _route_ticks(router: Router, every: float) -> None:
    """Offer timeouts, overflow, the end of after-call work and absences happen with time, not with a
    request: the router looks every few seconds (in each process that runs the worker)."""
    while True:
        try:
            await router.tick()
        except Exception:
            log.exception("routing tick failed; will try again")
        await asyncio.sleep(every)


async def _channels(app: web.Application) -> AsyncIterator[None]:
    """The live adapter of each connected channel account (one client session each) and their senders."""
    settings = app[keys.SETTINGS]
    adapters = Adapters(app[keys.SESSIONS], app[keys.CHANNEL_SECRETS], settings)
    app[keys.CHANNEL_ADAPTERS] = adapters
    for channel in PROVIDERS:
        app[keys.DELIVERY].add_sender(channel, adapters.sender(channel))
    media = MediaFetch(
        app[keys.INBOX], FileStore(settings.files_root, settings.media_max_bytes), adapters.fetch_media
    )
    media.register(app[keys.JOBS])
    poller = (
        asyncio.create_task(_poll_mailboxes(app, adapters), name="channel-poller")
        if settings.run_worker
        else None
    )
    yield
    if poller is not None:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
    await adapters.close()


async def _poll_mailboxes(app: web.Application, adapters: Adapters) -> None:
    """Channels without webhooks (e-mail) are polled by every process that runs the jobs worker; a message
    two processes fetch at once is stored once (its Message-ID is its unique external id)."""
    inbox = app[keys.INBOX]
    while True:
        try:
            for adapter in await adapters.active():
                if not adapter.polls:
                    continue
                try:
                    await adapter.poll(inbox.receive)
                except Exception as exc:
                    log.warning(
                        "polling %s account %s failed: %s", adapter.channel.value, adapter.account_id, exc
                    )
        except Exception:
            log.exception("channel polling failed; will try again")
        await asyncio.sleep(app[keys.SETTINGS].email_poll_seconds)


async def _telephony(app: web.Application) -> AsyncIterator[None]:
    """Asterisk. Every process answers FastAGI when `agi_enabled` ("who takes this call"), and every
    process keeps its own AMI connection when `ami_host` is set (click-to-call and spy are sent on it), but
    only one process at a time writes calls from the event stream: among those that run the worker, the
    one holding the AMI advisory lock. The others follow the stream on standby, so a takeover finishes the
    calls the old leader left open (call records are keyed by Linkedid: nothing is written twice)."""
    settings = app[keys.SETTINGS]
    inbox, router = app[keys.INBOX], app[keys.ROUTER]
    call_log = CallLog(
        inbox,
        router,
        app[keys.SESSIONS],
        app[keys.BUS],
        recordings_dir=settings.recordings_dir,
        standby=True,
    )
    app[keys.CALL_LOG] = call_log
    app[keys.AMI] = None
    connection: AmiConnection | None = None
    leading: asyncio.Task[None] | None = None
    agi: AgiServer | None = None
    if settings.ami_host:
        connection = AmiConnection.from_settings(settings, call_log.on_call_event)
        await connection.start()
        app[keys.AMI] = connection
        if settings.run_worker:
            leader = AmiLeader(settings.database_url, f"ami:{settings.ami_host}:{settings.ami_port}")
            leading = asyncio.create_task(leader.run(call_log.lead), name="ami-leader")
    if settings.agi_enabled:
        routing = CallRouting(inbox, router)
        agi = await start_agi_server(settings, routing.route_call, routing.release)
    yield
    if agi is not None:
        await agi.close()
    if leading is not None:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
    if connection is not None:
        await connection.stop()


async def _worker(app: web.Application) -> AsyncIterator[None]:
    worker = Worker.from_settings(app[keys.SETTINGS], app[keys.SESSIONS], app[keys.JOBS])
    app[keys.WORKER] = worker
    if app[keys.SETTINGS].run_worker:
        await worker.start()
    yield
    await worker.stop()


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        # The first round runs at start: it publishes inbox events that a crashed process stored but
        # never published. A database that is down must not stop the hub from starting.
        while True:
            try:
                republished = await app[keys.INBOX].publish_pending()
                if republished:
                    log.info("published %s inbox events left over from an earlier run", republished)
                async with transaction(app[keys.SESSIONS]) as db:
                    await accounts.purge_expired(db, app[keys.LOGIN_POLICY])
            except Exception:
                log.exception("housekeeping failed; will try again")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    task = asyncio.create_task(loop(), name="housekeeping")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            error_middleware,
            metrics_middleware,
            session_middleware(_cookie_storage(settings)),
            security_middleware,
        ],
        client_max_size=2 * 1024 * 1024,
    )
    app[keys.SETTINGS] = settings
    app[keys.LOGIN_POLICY] = login_policy(settings)
    app[keys.JOBS] = JobRegistry()
    scoring.register(app[keys.JOBS])  # rescoring the leads after a scoring rule changed
    imports.register(app[keys.JOBS], batch_rows=settings.import_batch_rows, region=settings.default_region)
    app[keys.CHANNEL_SECRETS] = SecretBox(settings.secret)
    app[keys.FILES] = FileStore(settings.files_root, settings.max_upload_bytes)
    app[keys.SCRIPTS] = ScriptsService(CrmAdapter(settings.default_region), region=settings.default_region)
    setup_templates(app)
    setup_routes(app)
    setup_live(app)
    app.cleanup_ctx.extend([_database, _bus, _inbox, _channels, _telephony, _worker, _housekeeping])
    setup_webchat(app, before=_worker)
    return app
